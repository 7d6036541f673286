/**
 * The seam between the stream handler and a server adapter that owns the socket (edge-sse/node).
 * Such an adapter can serve an event stream without web objects: it gives the handler an
 * `Incoming` and a `SocketSink`, and an open stream then holds no Request, Response, ReadableStream
 * or AbortController, its frames written straight to the socket without a reader promise per chunk.
 *
 * Two ways in, both ending with the adapter holding an `AttachedStream`:
 * - `handler.serveSocket(incoming, openSink)`, given the stream handler itself (the direct path);
 * - `attachToBody(body, sink)`, given a Response a fetch-style router passed on (the wrapped path).
 *
 * From then on the adapter is the one that hears the socket: it calls `drained()` when its buffer
 * empties and `clientLeft()` once when the client goes away. Nothing else tells the stream, on
 * this path, that the client left.
 *
 * Both builds (ESM and CJS) may be loaded in one process, each with its own copy of this module:
 * what crosses between them is plain objects and method names, never a class or a module-level
 * value, except the one registry below, kept on globalThis for that reason.
 */

/** What the stream handler reads from a request; an adapter that owns the socket passes its own. */
export interface Incoming {
  readonly method: string;
  /** Absolute. */
  readonly url: string;
  header(name: string): string | null;
  /** The web Request, for `authorize` and hooks; an adapter makes it on first use. */
  toRequest(): Request;
}

/** Where an attached stream writes: the adapter's side of the socket. */
export interface SocketSink {
  /** Writes a chunk; false once the buffer is full (the adapter calls `drained()` when it empties). */
  write(chunk: Uint8Array): boolean;
  /** Bytes written but not yet sent. */
  readonly bufferedBytes: number;
  end(): void;
  /** Drops the connection (a client that stopped reading). */
  destroy(): void;
}

/** What the adapter tells the stream writing to its sink. */
export interface AttachedStream {
  /** The sink's buffer emptied. */
  drained(): void;
  /** The client went away: the stream closes and releases what it holds. Call it once. */
  clientLeft(): void;
}

/**
 * `handler.serveSocket(incoming, openSink)`: answers with a Response (a refusal, a preflight, an
 * error), or, once the stream is accepted, calls `openSink` with the event stream's headers and
 * writes to the sink it returns. A throwing `openSink` releases the stream and rejects.
 */
export type ServeSocket = (
  incoming: Incoming,
  openSink: (headers: Record<string, string>) => SocketSink,
) => Promise<Response | AttachedStream>;

/** An edge-sse Response body, seen from the adapter: it takes a sink unless it is already read or ended. */
export interface BodySource {
  attachSink(sink: SocketSink): AttachedStream | undefined;
}

const BODY_SOURCES = Symbol.for('edge-sse.body-sources');

/**
 * Bodies → their sources. A WeakMap rather than a property on the body: on Node 20 every
 * ReadableStream has a hidden class of its own, and a property added to one costs it another
 * (~90 B per stream, against ~20 B for the entry). On globalThis under a registered symbol, so
 * that a body made by one build is found by the other build's adapter.
 */
function bodySources(): WeakMap<object, BodySource> {
  const holder = globalThis as { [BODY_SOURCES]?: WeakMap<object, BodySource> };
  return (holder[BODY_SOURCES] ??= new WeakMap());
}

export function registerBody(body: ReadableStream<Uint8Array>, source: BodySource): void {
  bodySources().set(body, source);
}

/** The wrapped path: writes an edge-sse body to `sink` instead; undefined for any other body (pipe it). */
export function attachToBody(body: ReadableStream<Uint8Array>, sink: SocketSink): AttachedStream | undefined {
  return bodySources().get(body)?.attachSink(sink);
}
