/**
 * Keeps an object's upstream reader while its listeners come and go: a stream the object opens
 * to itself, on a handler that shares the listeners' readers, drained and never shown to anyone.
 * While it is open the channel keeps its reader; releasing it lets the reader go (when no
 * listener is left), which is how the object lingers after its last listener and then lets go.
 */
import type { StreamHandler } from '../handler.js';

export class Keeper {
  private holding: Promise<void> | undefined;
  private reader: ReadableStreamDefaultReader<Uint8Array> | undefined;

  /** `stillWanted` is asked when the keeper's own stream ends (its deadline): open it again? */
  constructor(
    private handler: StreamHandler,
    private url: string,
    private stillWanted: () => boolean,
  ) {}

  /** Resolves once the keeper listens (so the reader it started is there for the next stream to join). */
  hold(): Promise<void> {
    this.holding ??= this.open();
    return this.holding;
  }

  release(): void {
    const reader = this.reader;
    this.reader = undefined;
    this.holding = undefined;
    reader?.cancel().catch(() => undefined);
  }

  private async open(): Promise<void> {
    try {
      const response = await this.handler(new Request(this.url));
      if (!response.body) return void (this.holding = undefined);
      const reader = response.body.getReader();
      this.reader = reader;
      void this.drain(reader);
    } catch {
      // The listener's own stream reports what failed.
      this.holding = undefined;
    }
  }

  private async drain(reader: ReadableStreamDefaultReader<Uint8Array>): Promise<void> {
    try {
      while (!(await reader.read()).done);
    } catch {
      // Cancelled, or the stream broke off.
    }
    if (this.reader !== reader) return;
    this.reader = undefined;
    this.holding = undefined;
    if (this.stillWanted()) void this.hold();
  }
}
