import { ZERO_ID, compareIds } from '../../wire/ids.js';
import { deliverRead } from '../id-order.js';
import { HeadFirst } from '../head-first.js';
import { ExpiryQueue } from './expiry.js';
import type {
  AppendOptions,
  Backend,
  BackendStats,
  CallOptions,
  ChannelRead,
  ChannelTail,
  FeedListener,
  FeedOptions,
  LiveFeed,
  NewEvent,
  ReadRequest,
  Retention,
  StoredEvent,
} from '../contract.js';

/** One channel's retained events, oldest first, with what Redis would know about its stream. */
class ChannelLog {
  events: StoredEvent[] = [];
  /** The first id this log ever minted (trimming does not move it). */
  firstId = ZERO_ID;
  lastId = ZERO_ID;
  maxDeletedId = ZERO_ID;
  expiresAt = Infinity;

  /** Mints ids the way Redis does: `<ms>-<seq>`, never going backwards even if the clock does. */
  nextId(now: number): string {
    const [lastMs, lastSeq] = this.lastId.split('-').map(Number) as [number, number];
    return now > lastMs ? `${now}-0` : `${lastMs}-${lastSeq + 1}`;
  }

  append(event: NewEvent, retention: Retention, now: number): string {
    const id = this.nextId(now);
    this.events.push({ id, type: event.type, data: event.data, json: event.json });
    if (this.lastId === ZERO_ID) this.firstId = id;
    this.lastId = id;
    this.expiresAt = now + retention.ttlSeconds * 1000;
    const excess = this.events.length - retention.maxLength;
    if (excess > 0) this.maxDeletedId = (this.events.splice(0, excess).at(-1) as StoredEvent).id;
    return id;
  }

  /** Index of the first event with an id after `id` (binary search). */
  indexAfter(id: string): number {
    let low = 0;
    let high = this.events.length;
    while (low < high) {
      const middle = (low + high) >>> 1;
      if (compareIds((this.events[middle] as StoredEvent).id, id) <= 0) low = middle + 1;
      else high = middle;
    }
    return low;
  }

  read(after: string, limit: number): ChannelRead {
    const start = this.indexAfter(after);
    const read: ChannelRead = { events: this.events.slice(start, start + limit), head: this.lastId };
    if (this.lostAfter(after)) read.gap = { firstId: this.events[0]?.id ?? null };
    return read;
  }

  /** The rules of the Redis backends (gapAfter in redis-streams/gap.ts), with the first id known exactly. */
  private lostAfter(after: string): boolean {
    if (compareIds(after, this.lastId) > 0) return true; // issued by a log that expired or a process that restarted
    if (compareIds(this.maxDeletedId, after) > 0) return true; // trimmed
    return after !== ZERO_ID && compareIds(after, this.firstId) < 0; // issued by an earlier log of this name
  }
}

export interface MemoryBackendOptions {
  /** Source of milliseconds for ids and TTLs (tests). Defaults to `Date.now`. */
  now?: () => number;
}

export interface MemoryBackend extends Backend {
  /** Also the channels held now: expired ones are freed as the backend is used. */
  stats(): BackendStats & { channels: number };
}

/**
 * Keeps events in this process: the embedded default for the demo, tests and single-process apps.
 * Behaves like the Redis backends (same ids, retention and gaps), but nothing survives a restart
 * and other processes see nothing.
 */
export function memoryBackend(options: MemoryBackendOptions = {}): MemoryBackend {
  const now = options.now ?? Date.now;
  const logs = new Map<string, ChannelLog>();
  const expiries = new ExpiryQueue<ChannelLog>(
    (channel) => logs.get(channel),
    (channel) => logs.delete(channel),
  );
  const feeds = new Set<MemoryFeed>();
  const publishes = new Publishes();
  let requests = 0;

  function existingLog(channel: string): ChannelLog | undefined {
    const log = logs.get(channel);
    if (log && log.expiresAt <= now()) {
      logs.delete(channel);
      return undefined;
    }
    return log;
  }

  function logFor(channel: string): ChannelLog {
    let log = existingLog(channel);
    if (!log) {
      logs.set(channel, (log = new ChannelLog()));
      expiries.watch(channel, log, now());
    }
    return log;
  }

  function countRequest(call: CallOptions | undefined): void {
    call?.onRequest?.();
    requests++;
    expiries.sweep(now()); // frees expired channels as the backend is used: no timer
  }

  /** A burst's fan-out takes several turns of the event loop: the publisher waits for it, as for Redis. */
  async function fannedOut(): Promise<void> {
    for (const feed of feeds) await feed.caughtUp();
  }

  async function tail(channels: readonly string[], count: number, call?: CallOptions): Promise<ChannelTail[]> {
    countRequest(call);
    return channels.map((channel) => {
      const log = existingLog(channel);
      if (!log) return { head: ZERO_ID, events: [] };
      return { head: log.lastId, events: count > 0 ? log.events.slice(-count) : [] };
    });
  }

  const store = {
    read: (channel: string, after: string, limit: number): ChannelRead => existingLog(channel)?.read(after, limit) ?? emptyRead(after),
  };

  return {
    name: 'memory',
    shareable: true,
    async append(events: readonly NewEvent[], retention: Retention, call?: AppendOptions) {
      countRequest(call);
      const idempotency = call?.idempotency;
      const repeated = idempotency && publishes.idsFor(idempotency.key, now());
      if (repeated) {
        idempotency.onRepeat?.();
        return [...repeated];
      }
      const previous = new Map(events.map((event) => [event.channel, existingLog(event.channel)?.lastId ?? ZERO_ID]));
      const ids = events.map((event) => logFor(event.channel).append(event, retention, now()));
      call?.onPrevious?.(previous);
      if (idempotency) publishes.remember(idempotency.key, [...ids], now() + idempotency.ttlSeconds * 1000, now());
      const channels = new Set(events.map((event) => event.channel));
      for (const feed of feeds) for (const channel of channels) feed.notify(channel);
      await fannedOut();
      return ids;
    },
    async read(readRequests: readonly ReadRequest[], limit: number, call?: CallOptions) {
      countRequest(call);
      return readRequests.map(({ channel, after }) => store.read(channel, after, limit));
    },
    tail,
    createFeed(listener: FeedListener, call: FeedOptions = {}): LiveFeed {
      const feed = new MemoryFeed(listener, store.read, new HeadFirst(tail, listener, call), () => feeds.delete(feed));
      feeds.add(feed);
      return feed;
    },
    stats: () => ({ requests, subscriptions: 0, channels: logs.size }),
    async close() {
      for (const feed of feeds) feed.close();
      logs.clear();
      expiries.clear();
    },
  };
}

/** A channel that holds nothing: any position but 0-0 was issued by a log that is gone. */
function emptyRead(after: string): ChannelRead {
  return after === ZERO_ID ? { events: [], head: ZERO_ID } : { events: [], head: ZERO_ID, gap: { firstId: null } };
}

/** The ids of each idempotent publish, by key, until the key expires; expired ones are swept as new ones arrive. */
class Publishes {
  private byKey = new Map<string, { ids: readonly string[]; expiresAt: number }>();
  /** Sweeping when the map has doubled keeps the cost per publish constant however many keys live. */
  private sweepAt = 1000;

  idsFor(key: string, now: number): readonly string[] | undefined {
    const publish = this.byKey.get(key);
    return publish && publish.expiresAt > now ? publish.ids : undefined;
  }

  remember(key: string, ids: readonly string[], expiresAt: number, now: number): void {
    if (this.byKey.size >= this.sweepAt) {
      this.sweep(now);
      this.sweepAt = Math.max(1000, 2 * this.byKey.size);
    }
    this.byKey.set(key, { ids, expiresAt });
  }

  private sweep(now: number): void {
    for (const [key, { expiresAt }] of this.byKey) if (expiresAt <= now) this.byKey.delete(key);
  }
}

const FEED_BATCH = 1000;
/**
 * About this much event data goes out per turn of the event loop; then the feed lets it run, so
 * sockets drain before more is written. Well below the default maxQueuedBytes (1 MiB): a burst
 * must not look like a client that stopped reading.
 */
const TURN_BYTES = 256 * 1024;

/**
 * Delivers in a microtask after each append, from each channel's last delivered position, in id
 * order across channels. A burst goes out TURN_BYTES at a time, a turn of the event loop apart.
 */
class MemoryFeed implements LiveFeed {
  private positions = new Map<string, string>();
  /** Channels that may have events not delivered yet. */
  private news = new Set<string>();
  private queued = false;
  /** Set while the feed lets the event loop run in the middle of a burst. */
  private pause: ReturnType<typeof setTimeout> | undefined;
  private spent = 0;
  private waiters: (() => void)[] = [];

  constructor(
    private listener: FeedListener,
    private read: (channel: string, after: string, limit: number) => ChannelRead,
    private starts: HeadFirst,
    private onClose: () => void,
  ) {}

  follow(channel: string, from: string | 'head'): void {
    this.starts.start(channel, from, (position) => {
      this.positions.set(channel, position);
      this.notify(channel);
    });
  }

  unfollow(channel: string): void {
    this.starts.cancel(channel);
    this.positions.delete(channel);
    this.news.delete(channel);
  }

  notify(channel: string): void {
    if (!this.positions.has(channel)) return;
    this.news.add(channel);
    if (this.queued || this.pause) return;
    this.queued = true;
    queueMicrotask(() => {
      this.queued = false;
      if (!this.pause) this.flush(); // else the paused burst's next turn delivers it
    });
  }

  /** Undefined unless a burst is going out; then settles once all of it has. */
  caughtUp(): Promise<void> | undefined {
    if (!this.pause) return undefined;
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  close(): void {
    this.starts.clear();
    this.positions.clear();
    this.news.clear();
    clearTimeout(this.pause);
    this.pause = undefined;
    this.release();
    this.onClose();
  }

  private flush(): void {
    while (this.news.size > 0) {
      if (this.spent >= TURN_BYTES) return this.letEventLoopRun();
      this.deliverSome();
    }
    this.release();
  }

  private letEventLoopRun(): void {
    this.pause = setTimeout(() => {
      this.pause = undefined;
      this.spent = 0;
      this.flush();
    }, 0);
  }

  /** One read of every channel with news, delivered in id order until the turn's bytes are spent. */
  private deliverSome(): void {
    const asked = new Map<string, string>();
    const byChannel = new Map<string, StoredEvent[]>();
    for (const channel of this.news) {
      const position = this.positions.get(channel);
      if (position === undefined) continue;
      asked.set(channel, position);
      byChannel.set(channel, this.read(channel, position, FEED_BATCH).events);
    }
    this.news.clear();
    deliverRead(byChannel, asked, FEED_BATCH, this.positions, this.listener, (events) => this.withinTurn(events));
    for (const [channel, events] of byChannel) {
      const position = this.positions.get(channel);
      const last = events.at(-1);
      const undelivered = position !== undefined && last !== undefined && compareIds(position, last.id) < 0;
      if (undelivered || events.length === FEED_BATCH) this.news.add(channel);
    }
  }

  /** The first events that fit in what is left of this turn (none once it is spent), counted as spent. */
  private withinTurn(events: StoredEvent[]): StoredEvent[] {
    let count = 0;
    while (count < events.length && this.spent < TURN_BYTES) {
      const event = events[count++] as StoredEvent;
      this.spent += event.data.length + event.type.length + event.id.length;
    }
    return count === events.length ? events : events.slice(0, count);
  }

  private release(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const resolve of waiters) resolve();
  }
}
