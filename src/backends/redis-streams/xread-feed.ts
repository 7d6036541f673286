import type { BackendError } from '../../common/errors.js';
import { deliverRead } from '../id-order.js';
import type { HeadFirst } from '../head-first.js';
import { decodeXread } from './commands/xread.js';
import type { KeySpace } from './keys.js';
import type { RedisReply } from './transport.js';
import { type FeedListener, type LiveFeed, READ_BATCH } from '../contract.js';

/** One XREAD's reply, and the positions it read after. */
export interface XreadRound {
  asked: ReadonlyMap<string, string>;
  reply: RedisReply;
}

/**
 * How an XREAD feed waits for news: a sleep before each non-blocking XREAD (backoff-wait.ts, for
 * HTTP Redis, which has no blocking reads), or an `XREAD BLOCK` on a connection of its own
 * (redis/blocking-wait.ts). `followed` is always the feed's own map of positions, as it stands.
 */
export interface XreadWait {
  /**
   * Waits, then reads READ_BATCH events per channel at most, after the positions `followed`
   * holds as the read leaves (a channel followed while waiting is in it). Undefined when called off.
   */
  read(followed: ReadonlyMap<string, string>): Promise<XreadRound | undefined>;
  /** A channel was followed: the next read should have it soon. */
  following(followed: ReadonlyMap<string, string>): void;
  /** Nothing is followed any more: the wait, or the read, under way may end. */
  idle(followed: ReadonlyMap<string, string>): void;
  /** After a round was delivered: whether it had news, and whether some channel may have more at once. */
  delivered(news: boolean, more: boolean): void;
  /** `error`, which ended the feed's reads, as its listeners are told it. */
  failure(error: unknown): BackendError;
  /** No request, timer or connection outlives this call. */
  close(): void;
}

/**
 * Follows every channel with ONE XREAD over all of them at a time, however many channels and
 * connections; once it has delivered a read's events, it waits as `wait` does and reads again.
 */
export class XreadFeed implements LiveFeed {
  private positions = new Map<string, string>();
  private running = false;
  private closed = false;

  constructor(
    private keys: KeySpace,
    private wait: XreadWait,
    private starts: HeadFirst,
    private listener: FeedListener,
  ) {}

  follow(channel: string, from: string | 'head'): void {
    this.starts.start(channel, from, (position) => {
      this.positions.set(channel, position);
      this.wait.following(this.positions);
      if (!this.running) void this.run();
    });
  }

  unfollow(channel: string): void {
    this.starts.cancel(channel);
    if (this.positions.delete(channel) && this.positions.size === 0) this.wait.idle(this.positions);
  }

  close(): void {
    this.closed = true;
    this.starts.clear();
    this.positions.clear();
    this.wait.close();
  }

  private async run(): Promise<void> {
    this.running = true;
    let failure: { error: unknown } | undefined;
    try {
      while (!this.closed && this.positions.size > 0) {
        const round = await this.wait.read(this.positions);
        if (!round || this.closed) continue;
        const more = deliverRead(decodeXread(this.keys, round.reply), round.asked, READ_BATCH, this.positions, this.listener);
        this.wait.delivered(round.reply !== null, more);
      }
    } catch (error) {
      failure = { error };
    }
    // Before the listeners are told: one that follows again at once starts a new loop.
    this.running = false;
    if (failure && !this.closed) this.fail(failure.error);
  }

  private fail(error: unknown): void {
    const failure = this.wait.failure(error);
    const channels = [...this.positions.keys()];
    this.positions.clear();
    for (const channel of channels) this.listener.onError(channel, failure);
  }
}
