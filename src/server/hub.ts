import { BackendError } from '../common/errors.js';
import type { Backend, CallOptions, LiveFeed, StoredEvent } from '../backends/contract.js';

/** A connection's view of the hub: live events per channel, or the end of the feed. */
export interface HubListener {
  onEvents(channel: string, events: StoredEvent[]): void;
  onError(error: BackendError): void;
}

interface ChannelState {
  listeners: Set<HubListener>;
  /** The last id the feed delivered; live listeners get everything after it. */
  position: string;
  /** Settles once the feed follows the channel; until then `position` is not known. */
  ready: Promise<void>;
  /** Settles `ready` when the feed finds the head itself (`followFromHead`). */
  headFound?: { resolve(): void; reject(error: unknown): void };
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
    private call: CallOptions = {},
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
      state.headFound?.reject(new BackendError('BACKEND_ERROR', 'No one listens any more'));
      this.feed?.unfollow(channel);
    }
  }

  /** Stops every reader; listeners are not told (their connections are ending anyway). */
  close(): void {
    for (const state of this.channels.values()) state.headFound?.reject(new BackendError('BACKEND_ERROR', 'The hub closed'));
    this.channels.clear();
    this.feed?.close();
    this.feed = undefined;
  }

  stats(): { channels: number; listeners: number } {
    let listeners = 0;
    for (const state of this.channels.values()) listeners += state.listeners.size;
    return { channels: this.channels.size, listeners };
  }

  /**
   * Finds each channel's head in one round trip, then follows it from there; or, where the feed
   * can, lets it listen first and find the head then (it would otherwise read once more, to cover
   * what was published while it started listening).
   */
  private start(channels: readonly string[]): void {
    const feed = this.liveFeed();
    if (feed.followFromHead) {
      for (const channel of channels) this.startAtHead(channel, feed);
      return;
    }
    const heads = this.backend.tail(channels, 0, this.call);
    channels.forEach((channel, index) => {
      const state: ChannelState = { listeners: new Set(), position: '', ready: Promise.resolve() };
      state.ready = heads.then((tails) => {
        state.position = (tails[index] as { head: string }).head;
        if (this.channels.get(channel) === state) this.liveFeed().follow(channel, state.position);
      });
      state.ready.catch(() => {
        if (this.channels.get(channel) === state) this.channels.delete(channel);
      });
      this.channels.set(channel, state);
    });
  }

  private startAtHead(channel: string, feed: LiveFeed): void {
    const state: ChannelState = { listeners: new Set(), position: '', ready: Promise.resolve() };
    state.ready = new Promise((resolve, reject) => (state.headFound = { resolve, reject }));
    state.ready.catch(() => {}); // join reports it
    this.channels.set(channel, state);
    feed.followFromHead!(channel);
  }

  private liveFeed(): LiveFeed {
    this.feed ??= this.backend.createFeed(
      {
        onEvents: (channel, events) => this.deliver(channel, events),
        onError: (channel, error) => this.fail(channel, error),
        onHead: (channel, head) => this.headFound(channel, head),
      },
      this.call,
    );
    return this.feed;
  }

  private headFound(channel: string, head: string): void {
    const state = this.channels.get(channel);
    if (!state?.headFound) return;
    state.position = head;
    state.headFound.resolve();
    state.headFound = undefined;
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
    if (state.headFound) return state.headFound.reject(error); // its listeners are still joining
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
