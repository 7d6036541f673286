/**
 * Keeps an object's upstream reader while its listeners come and go: a stream the object opens
 * to itself, on a handler that shares the listeners' readers, drained and never shown to anyone.
 * While it is open the channel keeps its reader; releasing it lets the reader go (when no
 * listener is left), which is how the object lingers after its last listener and then lets go.
 */
export class Keeper {
  private holding: Promise<void> | undefined;
  private reader: ReadableStreamDefaultReader<Uint8Array> | undefined;
  /** The keeper being opened or held; a release makes a keeper still opening stale. */
  private current: object | undefined;

  /** `stillWanted` is asked when the keeper's own stream ends (its deadline): open it again? */
  constructor(
    private handler: (request: Request) => Promise<Response>,
    private url: string,
    private stillWanted: () => boolean,
  ) {}

  /** Resolves once the keeper listens (so the reader it started is there for the next stream to join). */
  hold(): Promise<void> {
    if (!this.holding) {
      const keeper = (this.current = {});
      this.holding = this.open(keeper);
    }
    return this.holding;
  }

  release(): void {
    const reader = this.reader;
    this.reader = undefined;
    this.holding = undefined;
    this.current = undefined;
    reader?.cancel().catch(() => undefined);
  }

  private async open(keeper: object): Promise<void> {
    let response: Response;
    try {
      response = await this.handler(new Request(this.url));
    } catch {
      // The listener's own stream reports what failed.
      if (this.current === keeper) this.holding = undefined;
      return;
    }
    if (this.current !== keeper || !response.body) {
      // Released while opening: let the stream go at once, or it would hold the reader for an hour.
      response.body?.cancel().catch(() => undefined);
      if (this.current === keeper) this.holding = undefined;
      return;
    }
    const reader = response.body.getReader();
    this.reader = reader;
    void this.drain(reader, keeper);
  }

  private async drain(reader: ReadableStreamDefaultReader<Uint8Array>, keeper: object): Promise<void> {
    try {
      while (!(await reader.read()).done);
    } catch {
      // Cancelled, or the stream broke off.
    }
    if (this.current !== keeper) return;
    this.reader = undefined;
    this.holding = undefined;
    this.current = undefined;
    if (this.stillWanted()) void this.hold();
  }
}
