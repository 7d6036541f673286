/**
 * What the stream handler reads from a request. A server adapter that owns the socket
 * (edge-sse/node) passes its own, so an idle connection holds no web Request.
 */
export interface Incoming {
  readonly method: string;
  /** Absolute. */
  readonly url: string;
  header(name: string): string | null;
  /** The web Request, for `authorize` and hooks; adapters make it on first use. */
  toRequest(): Request;
}

export function incomingFrom(request: Request): Incoming {
  return {
    method: request.method,
    url: request.url,
    header: (name) => request.headers.get(name),
    toRequest: () => request,
  };
}
