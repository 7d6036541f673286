import { BackendError } from '../../common/errors.js';
import { deliverRead } from '../id-order.js';
import { type KeySpace, type RedisTransport, backendFailure, fromXread, xreadCommand } from './backend.js';
import type { FeedListener, FeedOptions, LiveFeed, StoredEvent } from '../contract.js';
import type { HeadFirst } from '../head-first.js';

export interface PollTiming {
  /** The interval right after news. */
  minIntervalMs: number;
  /** The interval it backs off to (doubling) while nothing happens. */
  maxIntervalMs: number;
  batch: number;
}

/**
 * Follows every channel with ONE non-blocking XREAD per poll, however many channels and
 * connections: polls fast right after news, then backs off to `maxIntervalMs` while idle.
 * For HTTP Redis, which has no blocking reads.
 */
export class PollFeed implements LiveFeed {
  private positions = new Map<string, string>();
  private interval: number;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private inFlight: AbortController | undefined;
  private closed = false;

  constructor(
    private transport: RedisTransport,
    private keys: KeySpace,
    private listener: FeedListener,
    private timing: PollTiming,
    private starts: HeadFirst,
    private call: FeedOptions = {},
  ) {
    this.interval = timing.minIntervalMs;
  }

  follow(channel: string, from: string | 'head'): void {
    this.starts.start(channel, from, (position) => {
      this.positions.set(channel, position);
      this.interval = this.timing.minIntervalMs;
      if (!this.inFlight) this.schedule(0);
    });
  }

  unfollow(channel: string): void {
    this.starts.cancel(channel);
    this.positions.delete(channel);
    if (this.positions.size > 0) return;
    clearTimeout(this.timer);
    this.timer = undefined;
    this.inFlight?.abort();
  }

  close(): void {
    this.closed = true;
    this.starts.clear();
    this.positions.clear();
    clearTimeout(this.timer);
    this.inFlight?.abort();
  }

  private schedule(delay: number): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => void this.poll(), delay);
  }

  private async poll(): Promise<void> {
    this.timer = undefined;
    if (this.closed || this.positions.size === 0) return;
    const asked = new Map(this.positions);
    const aborter = (this.inFlight = new AbortController());
    try {
      const [reply] = await this.transport.pipeline([xreadCommand(this.keys, asked, this.timing.batch)], {
        signal: aborter.signal,
        onRequest: this.call.onRequest,
      });
      if (aborter.signal.aborted) return;
      if (reply instanceof Error) throw backendFailure(reply);
      const full = this.deliver(fromXread(this.keys, reply ?? null), asked);
      this.interval = full ? 0 : this.nextInterval(reply !== null);
    } catch (error) {
      if (aborter.signal.aborted) return;
      return this.fail(error);
    } finally {
      if (this.inFlight === aborter) this.inFlight = undefined;
    }
    if (!this.closed && this.positions.size > 0) this.schedule(this.interval);
  }

  /** Delivers what is still wanted; true when some channel may have more right away. */
  private deliver(byChannel: Map<string, StoredEvent[]>, asked: Map<string, string>): boolean {
    return deliverRead(byChannel, asked, this.timing.batch, this.positions, this.listener);
  }

  private nextInterval(hadNews: boolean): number {
    if (hadNews) return this.timing.minIntervalMs;
    return Math.min(Math.max(this.interval, this.timing.minIntervalMs) * 2, this.timing.maxIntervalMs);
  }

  private fail(error: unknown): void {
    const failure =
      error instanceof BackendError ? error : new BackendError('BACKEND_ERROR', 'Polling Redis failed', { cause: error });
    const channels = [...this.positions.keys()];
    this.positions.clear();
    for (const channel of channels) this.listener.onError(channel, failure);
  }
}
