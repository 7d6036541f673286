/**
 * What the publish endpoint answers. QStash retries every status but 2xx and 489 with
 * `Upstash-NonRetryable-Error: true`, which sends the message straight to its dead letter queue.
 */
const JSON_TYPE = { 'Content-Type': 'application/json; charset=utf-8' };

function json(status: number, body: unknown, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(body), { status, headers: { ...JSON_TYPE, ...headers } });
}

/** `duplicate`: QStash delivered this message before, and that delivery published it. */
export const published = (id: string, duplicate: boolean) => json(200, duplicate ? { id, duplicate: true } : { id });

/** Retried: a deployment with the wrong keys or URL heals once it is fixed, within QStash's retries. */
export const unauthorized = (reason: string) =>
  json(401, { error: `Invalid QStash signature: ${reason}` }, { 'WWW-Authenticate': 'Upstash-Signature' });

export const methodNotAllowed = (method: string) =>
  json(405, { error: `Method ${method} is not allowed: QStash delivers with POST` }, { Allow: 'POST' });

/** The message can never be published, so retrying it is pointless. */
export const rejected = (reason: string) =>
  json(489, { error: reason }, { 'Upstash-NonRetryable-Error': 'true' });

/** Refused before the signature is checked, and read no further. */
export const tooLarge = (limit: number) =>
  json(413, { error: `The body is over ${limit} bytes, more than any valid message takes (option maxBodyBytes)` });

/** Retried: the backend may be back by the next attempt. */
export const unavailable = (reason: string) => json(503, { error: reason });
