/**
 * The answers edge-sse makes over HTTP: an event stream's headers, and JSON, errors included
 * (`{ "error": message }`). The bridge answers in Upstash's own format instead (src/bridge/http.ts).
 */

/** Every edge-sse event stream answers with these (CORS headers aside). */
export const EVENT_STREAM_HEADERS: Readonly<Record<string, string>> = {
  'Content-Type': 'text/event-stream; charset=utf-8',
  'Cache-Control': 'no-cache, no-transform',
  // nginx would otherwise buffer the stream.
  'X-Accel-Buffering': 'no',
};

export function jsonResponse(status: number, body: unknown, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { 'Content-Type': 'application/json; charset=utf-8', ...headers },
  });
}

/** A refusal or failure a caller can read: `{ "error": message }`. */
export function errorResponse(status: number, message: string, headers: Record<string, string> = {}): Response {
  return jsonResponse(status, { error: message }, headers);
}
