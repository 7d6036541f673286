import type { Incoming } from './socket-adapter.js';

/** A web Request as the stream handler reads it (every path but an adapter's own, see socket-adapter.ts). */
export function incomingFrom(request: Request): Incoming {
  return {
    method: request.method,
    url: request.url,
    header: (name) => request.headers.get(name),
    toRequest: () => request,
  };
}
