/**
 * What the publish endpoint answers. QStash retries every status but 2xx and 489 with
 * `Upstash-NonRetryable-Error: true`, which sends the message straight to its dead letter queue.
 */
import { errorResponse, jsonResponse } from '../common/responses.js';

/** `duplicate`: QStash delivered this message before, and that delivery published it. */
export const published = (id: string, duplicate: boolean) => jsonResponse(200, duplicate ? { id, duplicate: true } : { id });

/** Retried: a deployment with the wrong keys or URL heals once it is fixed, within QStash's retries. */
export const unauthorized = (reason: string) =>
  errorResponse(401, `Invalid QStash signature: ${reason}`, { 'WWW-Authenticate': 'Upstash-Signature' });

export const methodNotAllowed = (method: string) =>
  errorResponse(405, `Method ${method} is not allowed: QStash delivers with POST`, { Allow: 'POST' });

/** The message can never be published, so retrying it is pointless. */
export const rejected = (reason: string) => errorResponse(489, reason, { 'Upstash-NonRetryable-Error': 'true' });

/** Refused before the signature is checked, and read no further. */
export const tooLarge = (limit: number) =>
  errorResponse(413, `The body is over ${limit} bytes, more than any valid message takes (option maxBodyBytes)`);

/** Retried: the backend may be back by the next attempt. */
export const unavailable = (reason: string) => errorResponse(503, reason);
