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

/** The error classes an instance belongs to, under a key shared by every copy of edge-sse loaded. */
const KINDS = Symbol.for('edge-sse.error-kinds');

/**
 * Every error edge-sse throws on purpose; the message says what to fix.
 *
 * `instanceof` goes by kind, not by class identity: an app that loads both the ESM and the CJS
 * build (an `import` here, a dependency's `require` there) has two copies of each class, and
 * `error instanceof ValidationError` must hold across them.
 */
export class EdgeSSEError extends Error {
  static readonly kind: string = 'EdgeSSEError';
  override name = 'EdgeSSEError';
  declare readonly [KINDS]: readonly string[];

  constructor(
    readonly code: EdgeSSEErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    Object.defineProperty(this, KINDS, { value: kindsOf(new.target) });
  }

  static override [Symbol.hasInstance](value: unknown): boolean {
    // A subclass that names no kind of its own (an app's) is checked the usual way.
    if (!Object.hasOwn(this, 'kind')) return Function.prototype[Symbol.hasInstance].call(this, value);
    const kinds = (value as { [KINDS]?: unknown } | null | undefined)?.[KINDS];
    return Array.isArray(kinds) && kinds.includes(this.kind);
  }
}

function kindsOf(target: Function): string[] {
  const kinds: string[] = [];
  for (let at: unknown = target; typeof at === 'function' && at !== Function.prototype; at = Object.getPrototypeOf(at)) {
    if (Object.hasOwn(at, 'kind')) kinds.push((at as unknown as { kind: string }).kind);
  }
  return kinds;
}

/** Input from a caller or the network was refused; nothing was published or read. */
export class ValidationError extends EdgeSSEError {
  static override readonly kind: string = 'ValidationError';
  override name = 'ValidationError';
}

/**
 * The backend (Redis) failed, could not be reached, did not answer in time (`BACKEND_TIMEOUT`),
 * or is not configured (`BACKEND_MISCONFIGURED`: fix the server's settings; retrying cannot help).
 */
export class BackendError extends EdgeSSEError {
  static override readonly kind: string = 'BackendError';
  override name = 'BackendError';
}

/**
 * `what` did not answer within `ms`. A write that timed out may still be applied later (the store
 * got it, its answer did not come back), so a publish says how to retry it safely.
 */
export function backendTimeout(what: string, ms: number, wasPublish: boolean): BackendError {
  const retry = wasPublish ? ': the events may still have been stored; retry with the same idempotencyKey to store them once' : '';
  return new BackendError('BACKEND_TIMEOUT', `${what} did not answer within ${ms} ms (option timeoutMs)${retry}`);
}

export function invalidOption(message: string): ValidationError {
  return new ValidationError('INVALID_OPTION', message);
}
