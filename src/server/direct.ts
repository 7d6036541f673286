/**
 * How a server adapter that owns the socket (edge-sse/node) takes a stream's bytes directly: no
 * reader promise per chunk, and, through the handler's own entry point, no Request, Response or
 * web stream kept alive per connection.
 */
import type { Incoming } from './incoming.js';

export interface DirectSink {
  /** Writes a chunk; false once the consumer's buffer is full (call `drained()` when it empties). */
  write(chunk: Uint8Array): boolean;
  /** Bytes written but not yet sent. */
  readonly bufferedBytes: number;
  end(): void;
  /** Drops the connection (a client that stopped reading). */
  destroy(): void;
}

/** What the adapter tells an attached stream. */
export interface SinkAttachment {
  /** The sink's buffer emptied. */
  drained(): void;
  /** The client went away. */
  cancel(): void;
}

/** What an edge-sse Response body offers an adapter that owns the socket. */
export interface DirectSource {
  /** Undefined if the body is already being read or has ended: the adapter then reads it as usual. */
  attachSink(sink: DirectSink): SinkAttachment | undefined;
}

const DIRECT_SOURCES = Symbol.for('edge-sse.direct-sources');

/**
 * Body streams → their sources. A WeakMap rather than a property on the stream: on Node 20 every
 * ReadableStream has a hidden class of its own, and a property added to one costs it another
 * (~90 B per stream, against ~20 B for the entry). Kept on globalThis under a registered symbol,
 * so the ESM and CJS builds loaded side by side share it.
 */
function directSources(): WeakMap<object, DirectSource> {
  const holder = globalThis as { [DIRECT_SOURCES]?: WeakMap<object, DirectSource> };
  return (holder[DIRECT_SOURCES] ??= new WeakMap());
}

export function offerDirectSink(body: ReadableStream<Uint8Array>, source: DirectSource): void {
  directSources().set(body, source);
}

/** The source behind `body`, if it is an edge-sse Response body. */
export function directSourceOf(body: ReadableStream<Uint8Array>): DirectSource | undefined {
  return directSources().get(body);
}

/**
 * `handler[SERVE_DIRECT](incoming, openStream)` on an edge-sse stream handler: answers with a
 * Response (errors, preflight), or calls `openStream` with the event stream's headers once the
 * stream is accepted and attaches to the sink it returns.
 */
export const SERVE_DIRECT = Symbol.for('edge-sse.serve-direct');
export type ServeDirect = (
  incoming: Incoming,
  openStream: (headers: Record<string, string>) => DirectSink,
) => Promise<Response | SinkAttachment>;
