/**
 * An object's upstream reader outlives a dropped subscription: when the backend's feed gives up
 * on a channel it already followed, this follows it again from the last position it delivered
 * (so nothing published meanwhile is lost) instead of ending every listener's stream. Only after
 * `giveUpMs` of failing are the listeners told, and their streams end with a retry hint.
 */
import type { BackendError } from '../common/errors.js';
import type { Backend, FeedListener, FeedOptions, LiveFeed, StoredEvent } from '../backends/contract.js';

export interface ResilienceTiming {
  /** How long to keep following again before the channel's listeners are told. */
  giveUpMs: number;
}

/** The first retry waits this long, each next one twice as long, up to MAX_DELAY_MS. */
const FIRST_DELAY_MS = 250;
const MAX_DELAY_MS = 2000;
/** A channel followed again that stays up this long is healthy again. */
const STABLE_MS = 2000;

/** `base` whose live feed retries; everything else is `base`'s own. */
export function resilientBackend(base: Backend, timing: ResilienceTiming): Backend {
  return Object.create(base, {
    shareable: { value: true },
    createFeed: {
      value: (listener: FeedListener, call?: FeedOptions) => new ResilientFeed((inner) => base.createFeed(inner, call), listener, timing),
    },
  }) as Backend;
}

interface Followed {
  /** The last id delivered (or where the feed started); undefined until the feed reported its start. */
  position: string | undefined;
  failingSince?: number;
  attempts: number;
  timer?: ReturnType<typeof setTimeout>;
}

export class ResilientFeed implements LiveFeed {
  private inner: LiveFeed;
  private followed = new Map<string, Followed>();

  constructor(
    create: (listener: FeedListener) => LiveFeed,
    private listener: FeedListener,
    private timing: ResilienceTiming,
  ) {
    this.inner = create({
      onFollowing: (channel, position) => this.started(channel, position),
      onEvents: (channel, events) => this.delivered(channel, events),
      onError: (channel, error) => this.failed(channel, error),
    });
  }

  follow(channel: string, from: string | 'head'): void {
    clearTimeout(this.followed.get(channel)?.timer);
    this.followed.set(channel, { position: undefined, attempts: 0 });
    this.inner.follow(channel, from);
  }

  unfollow(channel: string): void {
    clearTimeout(this.followed.get(channel)?.timer);
    this.followed.delete(channel);
    this.inner.unfollow(channel);
  }

  close(): void {
    for (const state of this.followed.values()) clearTimeout(state.timer);
    this.followed.clear();
    this.inner.close();
  }

  /** The first start is its listener's; following again after a drop starts where it stood, as it knows. */
  private started(channel: string, position: string): void {
    const state = this.followed.get(channel);
    if (!state || state.position !== undefined) return;
    state.position = position;
    this.listener.onFollowing(channel, position);
  }

  private delivered(channel: string, events: StoredEvent[]): void {
    const state = this.followed.get(channel);
    if (state) state.position = (events.at(-1) as StoredEvent).id;
    this.listener.onEvents(channel, events);
  }

  private failed(channel: string, error: BackendError): void {
    const state = this.followed.get(channel);
    if (!state) return;
    clearTimeout(state.timer);
    const now = Date.now();
    state.failingSince ??= now;
    const retryable = state.position !== undefined && error.code !== 'REQUEST_BUDGET';
    if (!retryable || now - state.failingSince >= this.timing.giveUpMs) {
      this.followed.delete(channel);
      return this.listener.onError(channel, error);
    }
    const delay = Math.min(FIRST_DELAY_MS * 2 ** state.attempts++, MAX_DELAY_MS);
    state.timer = setTimeout(() => this.followAgain(channel, state), delay);
  }

  private followAgain(channel: string, state: Followed): void {
    if (this.followed.get(channel) !== state) return;
    this.inner.follow(channel, state.position as string);
    state.timer = setTimeout(() => {
      state.failingSince = undefined;
      state.attempts = 0;
      state.timer = undefined;
    }, STABLE_MS);
  }
}
