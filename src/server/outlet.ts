/**
 * The client's end of a session. Its bytes go into a pull-based ReadableStream (the Response
 * body), made on first use, or into a sink that a server adapter owning the socket attaches (see
 * socket-adapter.ts). Until a reader pulls or a sink attaches, chunks wait in the outlet's own
 * queue, so it always knows how much its client has not taken yet.
 *
 * It is also the one place that hears the client leave, from whichever end it has: the request's
 * signal (until a sink attaches), the body's cancel, or the sink's adapter. The session is told
 * once, by the first of them, and not at all if it closed the outlet first.
 */
import { type AttachedStream, type BodySource, type SocketSink, registerBody } from './socket-adapter.js';

export class Outlet implements UnderlyingDefaultSource<Uint8Array>, AttachedStream, BodySource {
  private readable: ReadableStream<Uint8Array> | undefined;
  private controller: ReadableStreamDefaultController<Uint8Array> | undefined;
  private queue: Uint8Array[] = [];
  private queued = 0;
  /** A reader is waiting and the queue was empty: the next chunk goes straight to it. */
  private readerWaiting = false;
  private sink: SocketSink | undefined;
  /** The request's, while it is how the client's leaving is heard. */
  private signal: AbortSignal | undefined;
  private closing = false;
  private closed = false;
  private onWritable: (() => void) | undefined;

  constructor(private onClientLeft: () => void) {}

  /**
   * The Response body. Nothing is pulled ahead (high-water mark 0): a chunk leaves the queue when a
   * reader asks. The outlet is the underlying source itself (closures would cost ~1 KiB per
   * connection), and the stream is a plain ReadableStream: Node gives every instance of a subclass
   * its own hidden classes, ~0.7 KiB more per connection and ~0.2 µs more per chunk read (bench/README.md).
   */
  get body(): ReadableStream<Uint8Array> {
    if (!this.readable) {
      this.readable = new ReadableStream(this, { highWaterMark: 0 });
      registerBody(this.readable, this);
    }
    return this.readable;
  }

  /** An adapter that owns the socket takes the bytes instead, unless the body is already read or ended. */
  attachSink(sink: SocketSink): AttachedStream | undefined {
    return this.readable?.locked || this.closed ? undefined : this.attach(sink);
  }

  /**
   * The client left when `signal` aborts: a web Request's, which can tell before the body is read.
   * Followed until the outlet closes or a sink attaches (its adapter tells from then on).
   */
  follow(signal: AbortSignal | undefined): void {
    if (!signal || this.closed) return;
    if (signal.aborted) return this.handleEvent();
    this.signal = signal;
    signal.addEventListener('abort', this);
  }

  /**
   * The signal's listener (the outlet itself rather than a closure per stream). The body may still
   * have a reader: the session closes the outlet as it always does, what is queued goes, then the end.
   */
  handleEvent(): void {
    this.unfollow();
    if (!this.closed && !this.closing) this.onClientLeft();
  }

  /** Underlying source: called once by the stream. */
  start(controller: ReadableStreamDefaultController<Uint8Array>): void {
    this.controller = controller;
    if (this.closed) controller.close();
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
      this.controller!.enqueue(chunk);
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
    if (this.sink || this.readerWaiting || (this.controller && this.queue.length === 0)) this.finish();
  }

  /** Drops what is queued and breaks the stream off: for a client that stopped reading. */
  abort(reason: string): void {
    if (this.closed) return;
    this.markClosed();
    this.dropQueue();
    if (this.sink) this.sink.destroy();
    else this.controller?.error(new Error(reason));
    this.notifyWritable();
  }

  /** Sends the bytes to `sink` (those queued first) instead of to the body. */
  attach(sink: SocketSink): AttachedStream {
    this.sink = sink;
    this.unfollow();
    // Nothing reads the body from now on: let it and its controller go (~2 KiB per stream).
    this.readable = undefined;
    this.controller = undefined;
    for (const chunk of this.queue) sink.write(chunk);
    this.dropQueue();
    if (this.closed) sink.end();
    else if (this.closing) this.finish();
    return this;
  }

  /** The sink's buffer emptied. */
  drained(): void {
    this.notifyWritable();
  }

  /** The client went away and takes nothing more: the reader cancelled, or the sink's adapter says so. */
  clientLeft(): void {
    if (this.closed) return;
    this.markClosed();
    this.dropQueue();
    this.notifyWritable();
    // Closing, the session has ended already: it hears of the client only while it is open.
    if (!this.closing) this.onClientLeft();
  }

  /** Underlying source: the reader cancelled the body. */
  cancel(): void {
    this.clientLeft();
  }

  /**
   * What was written since the last read goes out as one chunk: each chunk costs the reader a
   * read, a pull and their promises, far more than copying a few frames (bench/README.md, paths).
   */
  private handOver(): void {
    if (this.closed) return;
    if (this.queue.length === 0) {
      this.readerWaiting = true;
    } else {
      this.controller!.enqueue(this.queue.length === 1 ? this.queue[0]! : concat(this.queue, this.queued));
      this.dropQueue();
    }
    if (this.closing) this.finish();
    this.notifyWritable();
  }

  private finish(): void {
    this.markClosed();
    if (this.sink) this.sink.end();
    else {
      try {
        this.controller?.close();
      } catch {
        // Already cancelled by the reader.
      }
    }
    this.notifyWritable();
  }

  private markClosed(): void {
    this.closed = true;
    this.unfollow();
  }

  private unfollow(): void {
    this.signal?.removeEventListener('abort', this);
    this.signal = undefined;
  }

  private dropQueue(): void {
    this.queue = [];
    this.queued = 0;
  }

  private notifyWritable(): void {
    const resume = this.onWritable;
    this.onWritable = undefined;
    resume?.();
  }
}

function concat(chunks: readonly Uint8Array[], byteLength: number): Uint8Array {
  const joined = new Uint8Array(byteLength);
  let offset = 0;
  for (const chunk of chunks) {
    joined.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return joined;
}
