/** An error that already knows its HTTP status; its message is safe to show to the caller. */
export class BridgeError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
    this.name = 'BridgeError';
  }
}

/** A reply error from Redis (e.g. WRONGTYPE): the caller's fault, shown as is. */
export function isRedisReplyError(error: unknown): error is Error {
  return error instanceof Error && error.name === 'ReplyError';
}
