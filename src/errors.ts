/** What went wrong, as a stable string callers can branch on. */
export type EdgeSSEErrorCode =
  | 'INVALID_EVENT_TYPE'
  | 'INVALID_CHANNEL'
  | 'INVALID_DATA'
  | 'EVENT_TOO_LARGE'
  | 'INVALID_CURSOR'
  | 'INVALID_FRAME'
  | 'INVALID_OPTION'
  | 'INVALID_TOKEN'
  | 'BACKEND_UNAVAILABLE'
  | 'BACKEND_ERROR'
  | 'BACKEND_TIMEOUT'
  | 'BACKEND_MISCONFIGURED'
  | 'REQUEST_BUDGET';

/** Every error edge-sse throws on purpose; the message says what to fix. */
export class EdgeSSEError extends Error {
  override name = 'EdgeSSEError';
  constructor(
    readonly code: EdgeSSEErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** Input from a caller or the network was refused; nothing was published or read. */
export class ValidationError extends EdgeSSEError {
  override name = 'ValidationError';
}

/**
 * The backend (Redis) failed, could not be reached, did not answer in time (`BACKEND_TIMEOUT`),
 * or is not configured (`BACKEND_MISCONFIGURED`: fix the server's settings; retrying cannot help).
 */
export class BackendError extends EdgeSSEError {
  override name = 'BackendError';
}

/**
 * `what` did not answer within `ms`. A write that timed out may still be applied later (the store
 * got it, its answer did not come back), so a publish says how to retry it safely.
 */
export function backendTimeout(what: string, ms: number, wasPublish: boolean): BackendError {
  const retry = wasPublish
    ? ': the events may still have been stored; retry with the same idempotencyKey to store them once'
    : '';
  return new BackendError('BACKEND_TIMEOUT', `${what} did not answer within ${ms} ms (option timeoutMs)${retry}`);
}

export function invalidOption(message: string): ValidationError {
  return new ValidationError('INVALID_OPTION', message);
}
