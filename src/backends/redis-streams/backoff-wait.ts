import { BackendError } from '../../common/errors.js';
import { backendFailure } from './commands/command.js';
import { xread } from './commands/xread.js';
import type { KeySpace } from './keys.js';
import type { RedisTransport } from './transport.js';
import type { XreadRound, XreadWait } from './xread-feed.js';
import { type FeedOptions, READ_BATCH } from '../contract.js';

export interface PollTiming {
  /** The interval right after news. */
  minIntervalMs: number;
  /** The interval it backs off to (doubling) while nothing happens. */
  maxIntervalMs: number;
}

/**
 * Polls: one non-blocking XREAD at a time, soon after news (or a channel followed), then less
 * and less often while nothing happens, down to one per `maxIntervalMs`. For HTTP Redis, which
 * has no blocking reads.
 */
export class BackoffWait implements XreadWait {
  private interval: number;
  /** How long the next read waits. */
  private delay = 0;
  private sleep: { timer: ReturnType<typeof setTimeout>; end: () => void } | undefined;
  private inFlight: AbortController | undefined;

  constructor(
    private transport: RedisTransport,
    private keys: KeySpace,
    private timing: PollTiming,
    private call: FeedOptions = {},
  ) {
    this.interval = timing.minIntervalMs;
  }

  async read(followed: ReadonlyMap<string, string>): Promise<XreadRound | undefined> {
    await this.pause();
    if (followed.size === 0) return undefined;
    const asked = new Map(followed);
    const aborter = (this.inFlight = new AbortController());
    try {
      const [reply] = await this.transport.pipeline([xread(this.keys, asked, READ_BATCH).args], {
        signal: aborter.signal,
        onRequest: this.call.onRequest,
      });
      if (aborter.signal.aborted) return this.calledOff();
      if (reply instanceof Error) throw backendFailure(reply);
      return { asked, reply: reply ?? null };
    } catch (error) {
      if (aborter.signal.aborted) return this.calledOff();
      throw error;
    } finally {
      if (this.inFlight === aborter) this.inFlight = undefined;
    }
  }

  /** Polls at once (unless a poll is under way: the next one has the channel), then fast. */
  following(): void {
    this.interval = this.timing.minIntervalMs;
    if (this.inFlight) return;
    this.delay = 0;
    if (this.sleep) this.wakeIn(0);
  }

  idle(): void {
    this.stop();
  }

  delivered(news: boolean, more: boolean): void {
    this.interval = more ? 0 : this.nextInterval(news);
    this.delay = this.interval;
  }

  failure(error: unknown): BackendError {
    return error instanceof BackendError ? error : new BackendError('BACKEND_ERROR', 'Polling Redis failed', { cause: error });
  }

  close(): void {
    this.stop();
  }

  private pause(): Promise<void> {
    return new Promise((resolve) => {
      const end = () => {
        this.sleep = undefined;
        resolve();
      };
      this.sleep = { timer: setTimeout(end, this.delay), end };
    });
  }

  private wakeIn(milliseconds: number): void {
    const sleep = this.sleep as { timer: ReturnType<typeof setTimeout>; end: () => void };
    clearTimeout(sleep.timer);
    sleep.timer = setTimeout(sleep.end, milliseconds);
  }

  /** Ends the sleep and the poll under way: nobody is left to poll for. */
  private stop(): void {
    if (this.sleep) {
      clearTimeout(this.sleep.timer);
      this.sleep.end();
    }
    this.inFlight?.abort();
  }

  /** A poll called off left no channel behind; whichever is followed next is polled at once. */
  private calledOff(): undefined {
    this.delay = 0;
    return undefined;
  }

  private nextInterval(hadNews: boolean): number {
    if (hadNews) return this.timing.minIntervalMs;
    return Math.min(Math.max(this.interval, this.timing.minIntervalMs) * 2, this.timing.maxIntervalMs);
  }
}
