import { type EventSourceMessage, createParser } from 'eventsource-parser';

// Where the contract suite (test/contract/backend-contract.ts) takes them from.
export { sleep, waitUntil } from './wait.js';

export interface ReceivedEvent {
  id: string | undefined;
  event: string;
  data: string;
}

/**
 * Reads an SSE response body with eventsource-parser (a parser nobody here wrote) and lets a
 * test wait for events, comments, retry hints and the end of the stream.
 */
export class SSEReader {
  readonly events: ReceivedEvent[] = [];
  readonly comments: string[] = [];
  readonly retries: number[] = [];
  raw = '';
  ended = false;
  private waiters = new Set<() => void>();
  private reader: ReadableStreamDefaultReader<Uint8Array>;

  constructor(readonly response: Response) {
    if (!response.body) throw new Error(`response ${response.status} has no body`);
    this.reader = response.body.getReader();
    void this.pump();
  }

  /** Events other than edge-sse's own control events. */
  get messages(): ReceivedEvent[] {
    return this.events.filter((event) => !event.event.startsWith('sse:'));
  }

  get lastId(): string | undefined {
    return this.events.at(-1)?.id;
  }

  async waitFor(condition: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
    if (condition()) return;
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters.delete(check);
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}; got ${JSON.stringify(this.events)}`));
      }, timeoutMs);
      const check = () => {
        if (!condition()) return;
        clearTimeout(timer);
        this.waiters.delete(check);
        resolve();
      };
      this.waiters.add(check);
    });
  }

  waitForMessages(count: number, timeoutMs?: number): Promise<void> {
    return this.waitFor(() => this.messages.length >= count, `${count} messages`, timeoutMs);
  }

  /** Until the `sse:ready` event of a fresh connection. */
  waitForReady(timeoutMs?: number): Promise<void> {
    return this.waitFor(() => this.events.some((event) => event.event === 'sse:ready'), 'sse:ready', timeoutMs);
  }

  waitForEnd(timeoutMs?: number): Promise<void> {
    return this.waitFor(() => this.ended, 'the end of the stream', timeoutMs);
  }

  async cancel(): Promise<void> {
    await this.reader.cancel().catch(() => undefined);
  }

  private async pump(): Promise<void> {
    const decoder = new TextDecoder();
    const parser = createParser({
      onEvent: (message: EventSourceMessage) => this.events.push({ id: message.id, event: message.event ?? 'message', data: message.data }),
      onComment: (comment) => this.comments.push(comment),
      onRetry: (retry) => this.retries.push(retry),
    });
    try {
      for (;;) {
        const { value, done } = await this.reader.read();
        if (done) break;
        const text = decoder.decode(value, { stream: true });
        this.raw += text;
        parser.feed(text);
        this.notify();
      }
    } catch {
      // Cancelled.
    }
    this.ended = true;
    this.notify();
  }

  private notify(): void {
    for (const waiter of [...this.waiters]) waiter();
  }
}

export function streamRequest(query = '', headers: Record<string, string> = {}, signal?: AbortSignal): Request {
  return new Request(`http://localhost/stream${query}`, { headers, signal });
}
