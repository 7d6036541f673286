/**
 * A ReadableStream fed by pushes, whose queue is bounded: a reader that leaves it growing past
 * `maxQueued` (characters) is cut off with an error rather than holding the memory. Pushes after
 * the reader cancelled or was cut off are dropped; the pusher need not care.
 */
export class BoundedOutput<T> {
  private controller!: ReadableStreamDefaultController<T>;
  private open = true;
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
        cancel: () => {
          this.open = false;
          onCancel();
        },
      },
      { highWaterMark: 0, size },
    );
  }

  get isOpen(): boolean {
    return this.open;
  }

  push(chunk: T): void {
    if (!this.open) return;
    this.controller.enqueue(chunk);
    const queued = -(this.controller.desiredSize ?? 0);
    if (queued > this.maxQueued) {
      this.fail(new Error(`The reader left ${queued} characters unread (limit ${this.maxQueued}): resume the stream to read on`));
    }
  }

  close(): void {
    if (!this.open) return;
    this.open = false;
    this.controller.close();
  }

  fail(error: unknown): void {
    if (!this.open) return;
    this.open = false;
    this.controller.error(error);
  }
}
