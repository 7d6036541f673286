import { BackendError } from '../errors.js';
import { compareIds } from '../ids.js';
import {
  type KeySpace,
  type RedisReply,
  backendFailure,
  headOf,
  newestCommand,
  readAfterCommand,
  toStoredEvents,
} from './redis-streams.js';
import { parseWakeUp } from './publish-script.js';
import type { CallOptions, FeedListener, LiveFeed, StoredEvent } from './types.js';
import type { UpstashRest } from './upstash-rest.js';

/**
 * Follows each channel with one long-lived pub/sub subscription (`POST /subscribe/…`, an SSE
 * stream) and reads the stream only when woken: an idle channel costs no request at all.
 */
export class SubscribeFeed implements LiveFeed {
  private watches = new Map<string, ChannelWatch>();

  constructor(
    private rest: UpstashRest,
    private keys: KeySpace,
    private listener: FeedListener,
    private batch: number,
    private call: CallOptions = {},
  ) {}

  follow(channel: string, after: string): void {
    this.watch(channel, after);
  }

  /** Subscribes, then reads the head once the subscription is confirmed: two requests in all. */
  followFromHead(channel: string): void {
    this.watch(channel, undefined);
  }

  private watch(channel: string, after: string | undefined): void {
    this.watches.get(channel)?.stop();
    const watch = new ChannelWatch(channel, after, this.rest, this.keys, this.batch, this.call, {
      onHead: (head) => this.listener.onHead?.(channel, head),
      onEvents: (events) => this.listener.onEvents(channel, events),
      onError: (error) => {
        this.watches.delete(channel);
        this.listener.onError(channel, error);
      },
    });
    this.watches.set(channel, watch);
    void watch.run();
  }

  unfollow(channel: string): void {
    this.watches.get(channel)?.stop();
    this.watches.delete(channel);
  }

  close(): void {
    for (const watch of this.watches.values()) watch.stop();
    this.watches.clear();
  }
}

const QUICK_END_MS = 1000;
const QUICK_ENDS_ALLOWED = 3;

class ChannelWatch {
  private aborter = new AbortController();
  private reading = false;
  private wokenWhileReading = false;
  private quickEnds = 0;

  /** `position` undefined: the head is read once the first subscription is confirmed. */
  constructor(
    private channel: string,
    private position: string | undefined,
    private rest: UpstashRest,
    private keys: KeySpace,
    private batch: number,
    private call: CallOptions,
    private report: {
      onHead(head: string): void;
      onEvents(events: StoredEvent[]): void;
      onError(error: BackendError): void;
    },
  ) {}

  stop(): void {
    this.aborter.abort();
  }

  /** Subscribes, catches up once confirmed, and resubscribes when the server ends the stream. */
  async run(): Promise<void> {
    while (!this.aborter.signal.aborted) {
      const started = Date.now();
      try {
        await this.listen();
      } catch (error) {
        return this.fail(error);
      }
      this.quickEnds = Date.now() - started < QUICK_END_MS ? this.quickEnds + 1 : 0;
      if (this.quickEnds > QUICK_ENDS_ALLOWED) {
        return this.fail(new BackendError('BACKEND_UNAVAILABLE', `The subscription to ${this.channel} keeps ending`));
      }
    }
  }

  private async listen(): Promise<void> {
    const body = await this.rest.subscribe(this.keys.notify(this.channel), this.options());
    const decoder = new TextDecoder();
    const reader = body.getReader();
    let buffered = '';
    this.rest.openSubscriptions++;
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return;
        buffered += decoder.decode(value, { stream: true });
        const lines = buffered.split('\n');
        buffered = lines.pop() ?? '';
        for (const line of lines) this.onLine(line);
      }
    } finally {
      this.rest.openSubscriptions--;
      reader.cancel().catch(() => undefined);
    }
  }

  /**
   * The confirmation means "read now": the head, for a watch that starts there, or else anything
   * published before the subscription took hold. A message that carries the events following this
   * reader's position is delivered as is; any other wake-up reads the stream.
   */
  private onLine(line: string): void {
    if (line.startsWith('data: subscribe,')) return void this.readNews();
    if (!line.startsWith('data: message,')) return;
    const payload = line.slice(line.indexOf(',', 'data: message,'.length) + 1);
    const wakeUp = parseWakeUp(payload);
    if (!this.reading && wakeUp?.events && wakeUp.prev === this.position) {
      this.position = (wakeUp.events.at(-1) as StoredEvent).id;
      this.report.onEvents(wakeUp.events);
    } else {
      void this.readNews();
    }
  }

  /** Reads after the position until nothing is left; wake-ups during a read cause one more read. */
  private async readNews(): Promise<void> {
    if (this.reading) {
      this.wokenWhileReading = true;
      return;
    }
    this.reading = true;
    try {
      let more = true;
      if (this.position === undefined) {
        this.wokenWhileReading = false;
        await this.readHead();
        more = this.wokenWhileReading;
      }
      while (more && this.position !== undefined && !this.aborter.signal.aborted) {
        this.wokenWhileReading = false;
        const after = this.position;
        const [reply] = await this.rest.pipeline([readAfterCommand(this.keys, this.channel, after, this.batch)], this.options());
        if (this.aborter.signal.aborted) return;
        if (reply instanceof Error) throw backendFailure(reply);
        const events = toStoredEvents(reply as RedisReply).filter((event) => compareIds(event.id, after) > 0);
        if (events.length > 0) {
          this.position = (events.at(-1) as StoredEvent).id;
          this.report.onEvents(events);
        }
        more = events.length >= this.batch || this.wokenWhileReading;
      }
    } catch (error) {
      this.fail(error);
    } finally {
      this.reading = false;
    }
  }

  private async readHead(): Promise<void> {
    const [reply] = await this.rest.pipeline([newestCommand(this.keys, this.channel, 1)], this.options());
    if (this.aborter.signal.aborted) return;
    if (reply instanceof Error) throw backendFailure(reply);
    this.position = headOf(toStoredEvents(reply as RedisReply));
    this.report.onHead(this.position);
  }

  private options(): CallOptions {
    return { signal: this.aborter.signal, onRequest: this.call.onRequest };
  }

  private fail(error: unknown): void {
    if (this.aborter.signal.aborted) return;
    this.aborter.abort();
    this.report.onError(
      error instanceof BackendError ? error : new BackendError('BACKEND_ERROR', `Following ${this.channel} failed`, { cause: error }),
    );
  }
}
