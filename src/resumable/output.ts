/**
 * A ReadableStream fed by pushes, whose queue is bounded: a reader that leaves it growing past
 * `maxQueued` (characters) is cut off with an error rather than holding the memory. Pushes after
 * the reader cancelled or was cut off are dropped; the pusher need not care. Closing or failing
 * comes after the chunks already queued.
 */
export class BoundedOutput<T> {
  private controller!: ReadableStreamDefaultController<T>;
  private open = true;
  private failure: { error: unknown } | undefined;
  readonly stream: ReadableStream<T>;

  constructor(
    private readonly maxQueued: number,
    size: (chunk: T) => number,
    onCancel: () => void = () => undefined,
  ) {
    this.stream = new ReadableStream<T>(
      {
        start: (controller) => {
          this.controller = controller;
        },
        // A failure waits behind what is queued: the reader gets every chunk before the error.
        pull: () => {
          if (this.failure) this.controller.error(this.failure.error);
        },
        cancel: () => {
          this.open = false;
          onCancel();
        },
      },
      { highWaterMark: 0, size },
    );
  }

  push(chunk: T): void {
    if (!this.open) return;
    this.controller.enqueue(chunk);
    const queued = -(this.controller.desiredSize ?? 0);
    if (queued > this.maxQueued) {
      this.cutOff(new Error(`The reader left ${queued} characters unread (limit ${this.maxQueued}): resume the stream to read on`));
    }
  }

  close(): void {
    if (!this.open) return;
    this.open = false;
    this.controller.close();
  }

  /** Ends with `error` once the reader has taken what is queued. */
  fail(error: unknown): void {
    if (!this.open) return;
    this.open = false;
    if ((this.controller.desiredSize ?? 0) >= 0) this.controller.error(error);
    else this.failure = { error };
  }

  private cutOff(error: unknown): void {
    this.open = false;
    this.controller.error(error);
  }
}
