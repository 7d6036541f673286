/**
 * Where a stream's bytes go. By default into a pull-based ReadableStream (the Response body);
 * a server adapter that owns the socket (edge-sse/node) may instead attach a sink and take the
 * bytes directly, skipping a reader promise per chunk and per connection.
 *
 * Until a reader pulls or a sink attaches, chunks wait in the outlet's own queue, so it always
 * knows how much its client has not taken yet.
 */

/** `stream[DIRECT_SINK](sink)` hands the stream's bytes to `sink`; undefined if it cannot (already read). */
export const DIRECT_SINK = Symbol.for('edge-sse.direct-sink');

export interface DirectSink {
  /** Writes a chunk; false once the consumer's buffer is full (call `drained()` when it empties). */
  write(chunk: Uint8Array): boolean;
  /** Bytes written but not yet sent. */
  readonly bufferedBytes: number;
  end(): void;
  /** Drops the connection (a client that stopped reading). */
  destroy(): void;
}

export interface SinkAttachment {
  /** The sink's buffer emptied. */
  drained(): void;
  /** The client went away. */
  cancel(): void;
}

export type AttachDirectSink = (sink: DirectSink) => SinkAttachment | undefined;

/** The body stream; the direct-sink hook lives on the prototype, costing nothing per stream. */
class OutletStream extends ReadableStream<Uint8Array> {
  constructor(private readonly outlet: Outlet) {
    // The outlet is the underlying source itself: closures here would cost ~1 KiB per connection.
    super(outlet, { highWaterMark: 0 });
  }

  [DIRECT_SINK](sink: DirectSink): SinkAttachment | undefined {
    return this.outlet.attach(sink);
  }
}

export class Outlet implements UnderlyingDefaultSource<Uint8Array> {
  readonly stream: ReadableStream<Uint8Array>;
  private controller!: ReadableStreamDefaultController<Uint8Array>;
  private queue: Uint8Array[] = [];
  private queued = 0;
  /** A reader is waiting and the queue was empty: the next chunk goes straight to it. */
  private readerWaiting = false;
  private sink: DirectSink | undefined;
  private closing = false;
  private closed = false;
  private onWritable: (() => void) | undefined;

  /** Nothing is pulled ahead (high-water mark 0): a chunk leaves the queue when a reader asks. */
  constructor(private onCancel: () => void) {
    this.stream = new OutletStream(this);
  }

  /** Underlying source: called once by the stream. */
  start(controller: ReadableStreamDefaultController<Uint8Array>): void {
    this.controller = controller;
  }

  /** Underlying source: a reader asks for the next chunk. */
  pull(): void {
    this.handOver();
  }

  /** Bytes the client has not taken yet. */
  get queuedBytes(): number {
    return this.sink ? this.sink.bufferedBytes : this.queued;
  }

  /** False once the outlet is closed (the chunk is dropped). */
  write(chunk: Uint8Array): boolean {
    if (this.closed || this.closing) return false;
    if (this.sink) {
      this.sink.write(chunk);
    } else if (this.readerWaiting) {
      this.readerWaiting = false;
      this.controller.enqueue(chunk);
    } else {
      this.queue.push(chunk);
      this.queued += chunk.byteLength;
    }
    return true;
  }

  /** Resolves once the client has taken all but `lowWaterBytes` (or the outlet closed). */
  whenWritable(lowWaterBytes: number): Promise<void> {
    if (this.closed || this.queuedBytes <= lowWaterBytes) return Promise.resolve();
    return new Promise((resolve) => {
      this.onWritable = resolve;
    });
  }

  /** Ends the stream once what is queued has been taken. */
  close(): void {
    if (this.closed || this.closing) return;
    this.closing = true;
    if (this.sink) this.finish();
    else if (this.readerWaiting || this.queue.length === 0) this.finish();
  }

  /** Drops what is queued and breaks the stream off: for a client that stopped reading. */
  abort(reason: string): void {
    if (this.closed) return;
    this.closed = true;
    this.queue = [];
    this.queued = 0;
    if (this.sink) this.sink.destroy();
    else this.controller.error(new Error(reason));
    this.notifyWritable();
  }

  private handOver(): void {
    if (this.closed) return;
    if (this.queue.length === 0) {
      this.readerWaiting = true;
    } else {
      for (const chunk of this.queue) this.controller.enqueue(chunk);
      this.queue = [];
      this.queued = 0;
    }
    if (this.closing) this.finish();
    this.notifyWritable();
  }

  attach(sink: DirectSink): SinkAttachment | undefined {
    if (this.stream.locked || this.closed) return undefined;
    this.sink = sink;
    for (const chunk of this.queue) sink.write(chunk);
    this.queue = [];
    this.queued = 0;
    if (this.closing) this.finish();
    return { drained: () => this.notifyWritable(), cancel: () => this.cancel() };
  }

  private finish(): void {
    this.closed = true;
    if (this.sink) this.sink.end();
    else {
      try {
        this.controller.close();
      } catch {
        // Already cancelled by the reader.
      }
    }
    this.notifyWritable();
  }

  /** Underlying source: the reader cancelled (the client went away). */
  cancel(): void {
    if (this.closed) return;
    this.closed = true;
    this.queue = [];
    this.queued = 0;
    this.notifyWritable();
    this.onCancel();
  }

  private notifyWritable(): void {
    const resume = this.onWritable;
    this.onWritable = undefined;
    resume?.();
  }
}
