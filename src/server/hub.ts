import { BackendError } from '../common/errors.js';
import type { Backend, FeedOptions, LiveFeed, StoredEvent } from '../backends/contract.js';

/** A connection's view of the hub: live events per channel, or the end of the feed. */
export interface HubListener {
  onEvents(channel: string, events: StoredEvent[]): void;
  onError(error: BackendError): void;
}

interface ChannelState {
  listeners: Set<HubListener>;
  /** The last id the feed delivered; live listeners get everything after it. */
  position: string;
  /** Settles once the feed reports where it follows the channel from; until then `position` is not known. */
  ready: Promise<void>;
  /** Settles `ready`; set until it has. */
  starting?: { resolve(): void; reject(error: unknown): void };
}

/**
 * Shares one live feed per backend between connections: one reader per active channel, whatever
 * the number of listeners. A channel's reader starts with its first listener and stops with its last.
 */
export class Hub {
  private channels = new Map<string, ChannelState>();
  private feed: LiveFeed | undefined;

  /** `call` applies to every request the hub makes (a stream's own hub passes its request budget). */
  constructor(
    private backend: Backend,
    private call: FeedOptions = {},
  ) {}

  /**
   * Registers `listener` on every channel and resolves to each channel's live position: the
   * listener will get every event after it, once the promise has resolved.
   */
  async join(channels: readonly string[], listener: HubListener): Promise<string[]> {
    const starting = channels.filter((channel) => !this.channels.has(channel));
    if (starting.length > 0) this.start(starting);
    const states = channels.map((channel) => this.channels.get(channel) as ChannelState);
    for (const state of states) state.listeners.add(listener);
    try {
      await Promise.all(states.map((state) => state.ready));
    } catch (error) {
      this.leave(channels, listener);
      throw error;
    }
    return states.map((state) => state.position);
  }

  leave(channels: readonly string[], listener: HubListener): void {
    for (const channel of channels) {
      const state = this.channels.get(channel);
      if (!state?.listeners.delete(listener) || state.listeners.size > 0) continue;
      this.channels.delete(channel);
      state.starting?.reject(new BackendError('BACKEND_ERROR', 'No one listens any more'));
      this.feed?.unfollow(channel);
    }
  }

  /** Stops every reader; listeners are not told (their connections are ending anyway). */
  close(): void {
    for (const state of this.channels.values()) state.starting?.reject(new BackendError('BACKEND_ERROR', 'The hub closed'));
    this.channels.clear();
    this.feed?.close();
    this.feed = undefined;
  }

  stats(): { channels: number; listeners: number } {
    let listeners = 0;
    for (const state of this.channels.values()) listeners += state.listeners.size;
    return { channels: this.channels.size, listeners };
  }

  /** Follows each channel from its head, which the feed reports (`onFollowing`). */
  private start(channels: readonly string[]): void {
    const feed = this.liveFeed();
    for (const channel of channels) {
      const state: ChannelState = { listeners: new Set(), position: '', ready: Promise.resolve() };
      state.ready = new Promise((resolve, reject) => (state.starting = { resolve, reject }));
      state.ready.catch(() => {}); // join reports it
      this.channels.set(channel, state);
      feed.follow(channel, 'head');
    }
  }

  private liveFeed(): LiveFeed {
    this.feed ??= this.backend.createFeed(
      {
        onFollowing: (channel, position) => this.started(channel, position),
        onEvents: (channel, events) => this.deliver(channel, events),
        onError: (channel, error) => this.fail(channel, error),
      },
      this.call,
    );
    return this.feed;
  }

  private started(channel: string, position: string): void {
    const state = this.channels.get(channel);
    if (!state?.starting) return;
    state.position = position;
    state.starting.resolve();
    state.starting = undefined;
  }

  private deliver(channel: string, events: StoredEvent[]): void {
    const state = this.channels.get(channel);
    if (!state) return;
    state.position = (events.at(-1) as StoredEvent).id;
    for (const listener of state.listeners) listener.onEvents(channel, events);
  }

  private fail(channel: string, error: BackendError): void {
    const state = this.channels.get(channel);
    if (!state) return;
    this.channels.delete(channel);
    if (state.starting) return state.starting.reject(error); // its listeners are still joining
    for (const listener of state.listeners) listener.onError(error);
  }
}

const sharedHubs = new WeakMap<Backend, Hub>();

/** The hub every stream handler (and resumable stream) of this process shares on `backend`. */
export function sharedHub(backend: Backend): Hub {
  let hub = sharedHubs.get(backend);
  if (!hub) sharedHubs.set(backend, (hub = new Hub(backend)));
  return hub;
}
