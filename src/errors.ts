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

/** The backend (Redis) failed or could not be reached. */
export class BackendError extends EdgeSSEError {
  override name = 'BackendError';
}

export function invalidOption(message: string): ValidationError {
  return new ValidationError('INVALID_OPTION', message);
}
