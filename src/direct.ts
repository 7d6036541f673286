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

/**
 * `body[DIRECT_SINK]?.attachSink(sink)` on an edge-sse Response body; undefined if it is already
 * being read. A registered symbol, so the ESM and CJS builds loaded side by side find each other.
 */
export const DIRECT_SINK = Symbol.for('edge-sse.direct-sink');
export interface DirectSource {
  attachSink(sink: DirectSink): SinkAttachment | undefined;
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
