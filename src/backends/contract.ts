/**
 * The contract every backend meets. A backend knows Redis (or memory) and nothing about HTTP or
 * SSE; the handler and hub know nothing about Redis. Positions are stream ids (`ms-seq`, see ids.ts).
 *
 * Redis layout (shared by the Upstash and TCP backends, so both can serve the same channels):
 * each channel is a stream at `<prefix>{<channel>}` (braces: a Redis Cluster hash tag; see KeySpace);
 * each entry has the fields `type`, `data` and, for JSON data, `json` = `1`. Its stream id is the
 * event id. edge-sse's own keys start with `<prefix>#` (no prefix or channel name holds `#`): `#id`,
 * the app id that signs wake-ups and names their pub/sub channels (see publish-script.ts), and
 * `#idem:<key>` for idempotency keys (on a cluster `<prefix>{<channel>}#idem:<key>`, in a channel's slot).
 */
import type { BackendError } from '../common/errors.js';

export interface NewEvent {
  channel: string;
  type: string;
  /** The payload as it goes on the wire: a string, or JSON text when `json` is set. */
  data: string;
  json: boolean;
}

export interface StoredEvent {
  id: string;
  type: string;
  data: string;
  json: boolean;
}

export interface Retention {
  /** Events kept per channel (approximately, for Redis: `MAXLEN ~`). */
  maxLength: number;
  /** A channel with no new event for this long is deleted. */
  ttlSeconds: number;
}

export interface ReadRequest {
  channel: string;
  /** Read events with ids strictly after this one. */
  after: string;
}

export interface ChannelRead {
  /** Events after the cursor, oldest first, at most `limit`. */
  events: StoredEvent[];
  /** The newest id the channel holds (`0-0` when it holds none). */
  head: string;
  /** Present when events after the cursor were trimmed away: the oldest id still kept, if any. */
  gap?: { firstId: string | null };
}

export interface ChannelTail {
  /** The newest id the channel holds (`0-0` when it holds none). */
  head: string;
  /** The newest `count` events, oldest first. */
  events: StoredEvent[];
}

export interface CallOptions {
  signal?: AbortSignal;
  /**
   * Called before each request to the store; throwing refuses the request (a stream's
   * `maxRequests` budget does this with a REQUEST_BUDGET error).
   */
  onRequest?: () => void;
}

/** Makes an append happen once per key: a retry of a publish that may have been stored. */
export interface Idempotency {
  /** Names the publish; edge-sse keeps it under its own key space (`<prefix>#idem:<key>` on Redis). */
  key: string;
  /** How long the key is remembered after the publish that used it. */
  ttlSeconds: number;
  /** Called when the key had been used: nothing was written, and the ids are that publish's. */
  onRepeat?: () => void;
}

export interface AppendOptions extends CallOptions {
  idempotency?: Idempotency;
  /**
   * Called once the events are stored (not for a repeated idempotency key) with each channel's
   * newest id before them (`0-0` for none): a writer that knows its own last id sees from it
   * whether anyone else appended in between, at no extra cost.
   */
  onPrevious?: (previous: ReadonlyMap<string, string>) => void;
}

/** Receives what a live feed reads, in order per channel. */
export interface FeedListener {
  onEvents(channel: string, events: StoredEvent[]): void;
  /** The feed could not go on for this channel; it has stopped following it. */
  onError(channel: string, error: BackendError): void;
  /** From `followFromHead`: the channel's head when the feed started listening; events after it follow. */
  onHead?(channel: string, head: string): void;
}

/**
 * Follows channels from a position and reports every later event, each exactly once, in order.
 * How it waits for news is the backend's business: in-process notification, `XREAD BLOCK`,
 * a pub/sub wake-up, or polling.
 */
export interface LiveFeed {
  follow(channel: string, after: string): void;
  /**
   * Follows from the head as of when the feed is listening, and reports that head (`onHead`).
   * For feeds whose listening takes a round trip of its own (a pub/sub subscription): finding the
   * head once listening, rather than before, needs no read to cover the time in between.
   */
  followFromHead?(channel: string): void;
  unfollow(channel: string): void;
  /** Stops everything: no request, timer or subscription outlives this call. */
  close(): void;
}

export interface BackendStats {
  /** Requests (or round trips) made to the store since the backend was created. */
  requests: number;
  /** Pub/sub subscriptions or blocking connections open now. */
  subscriptions?: number;
  /** Channels the store holds now, where it knows (the memory backend). */
  channels?: number;
}

export interface Backend {
  /** `memory`, `upstash`, `redis`, `redis-cluster`: for logs and the demo. */
  readonly name: string;
  /**
   * Whether one process may share a feed between connections. False where a platform forbids
   * using one request's I/O in another (Cloudflare Workers): each connection then reads for itself.
   */
  readonly shareable: boolean;
  /**
   * Appends events in one round trip, applying `retention`; resolves to their ids in order. All
   * or nothing: when any channel cannot take its events, none is stored and nobody is woken.
   * With `idempotency`, checking the key, appending and remembering the key are one atomic step:
   * a key already remembered resolves to the ids stored under it (as many as that publish had)
   * and writes nothing. Calls made before earlier ones resolved are stored in call order.
   */
  append(events: readonly NewEvent[], retention: Retention, options?: AppendOptions): Promise<string[]>;
  /** Reads after each cursor, in one round trip; results in request order. */
  read(requests: readonly ReadRequest[], limit: number, options?: CallOptions): Promise<ChannelRead[]>;
  /** The head of each channel and its newest `count` events (0 for just the head), in one round trip. */
  tail(channels: readonly string[], count: number, options?: CallOptions): Promise<ChannelTail[]>;
  /** `options` apply to every request the feed makes (its signal and request meter). */
  createFeed(listener: FeedListener, options?: CallOptions): LiveFeed;
  stats(): BackendStats;
  /** Releases connections; the backend is unusable afterwards. */
  close(): Promise<void>;
}
