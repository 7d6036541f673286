/**
 * The contract every backend meets. A backend knows Redis (or memory) and nothing about HTTP or
 * SSE; the handler and hub know nothing about Redis. Positions are stream ids (`ms-seq`, see ids.ts).
 *
 * Redis layout (shared by the Upstash and TCP backends, so both can serve the same channels):
 * each channel is a stream at `<prefix>{<channel>}` (braces: a Redis Cluster hash tag; see KeySpace);
 * each entry has the fields `type`, `data` and, for JSON data, `json` = `1`. Its stream id is the
 * event id. edge-sse's own keys start with `<prefix>#` (no prefix or channel name holds `#`): `#id`,
 * the app id that signs wake-ups and names their pub/sub channels (see redis-streams/app-id.ts and wake-up.ts), and
 * `#idem:<key>` for idempotency keys (on a cluster `<prefix>{<channel>}#idem:<key>`, in a channel's slot).
 */
import type { BackendError } from '../common/errors.js';

/**
 * Events one read asks for per channel, wherever edge-sse reads: catching up after a cursor (the
 * stream handler, resumable streams) and every live feed.
 */
export const READ_BATCH = 100;

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
  /** Abandons the call: a stream that closed, a caller's timeout. */
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
  /**
   * Where the feed follows `channel` from, once per `follow` and before its first events: every
   * event after `position` follows, and none before it. For an id, that id; for `'head'`, the
   * channel's head as of when the feed listens (`0-0` for a channel that holds nothing).
   */
  onFollowing(channel: string, position: string): void;
  onEvents(channel: string, events: StoredEvent[]): void;
  /** The feed could not go on (or could not start) for this channel; it has stopped following it. */
  onError(channel: string, error: BackendError): void;
}

/**
 * Follows channels and reports every later event, each exactly once, in order. How it waits for
 * news is the backend's business: in-process notification, `XREAD BLOCK`, a pub/sub wake-up, or
 * polling.
 */
export interface LiveFeed {
  /**
   * Follows `channel` from `from`: after an id, or from the head (`'head'`) — which a feed that
   * listens through a subscription finds once subscribed, so that nothing published in between
   * needs a read of its own; any other feed reads it first. Reports where it started
   * (`onFollowing`). Following a channel again starts it again from `from`.
   */
  follow(channel: string, from: string | 'head'): void;
  /** Nothing more is reported for `channel`, not even a start under way. */
  unfollow(channel: string): void;
  /** Stops everything: no request, timer or subscription outlives this call. */
  close(): void;
}

/** What a feed's requests are metered by (a stream's `maxRequests` budget); `close()` ends a feed, not a signal. */
export type FeedOptions = Pick<CallOptions, 'onRequest'>;

export interface BackendStats {
  /** Requests (or round trips) made to the store since the backend was created. */
  requests: number;
  /** Pub/sub subscriptions or blocking connections open now. */
  subscriptions?: number;
}

export interface Backend {
  /** `memory`, `upstash`, `redis`, `redis-cluster`: which one the environment picked, for logs and the demo. */
  readonly name: string;
  /**
   * Whether one process may share a feed between connections: the one place this is decided (the
   * stream handler and resumable streams share readers exactly when it is true, unless the app
   * turns sharing off). False where a platform forbids using one request's I/O in another
   * (`upstashBackend` on Cloudflare Workers): each connection then reads for itself.
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
  /** Reads after each cursor, in one round trip; results in request order. To catch up after a cursor. */
  read(requests: readonly ReadRequest[], limit: number, options?: CallOptions): Promise<ChannelRead[]>;
  /**
   * The head of each channel and its newest `count` events (0 for just the head), in one round
   * trip. For `replay`, resumable streams, and feeds that read the head to follow from it.
   */
  tail(channels: readonly string[], count: number, options?: CallOptions): Promise<ChannelTail[]>;
  /** The live reader a hub shares between connections; `options` apply to every request it makes. */
  createFeed(listener: FeedListener, options?: FeedOptions): LiveFeed;
  /** For the stream handler's `stats()`. */
  stats(): BackendStats;
  /** Releases connections; the backend is unusable afterwards. */
  close(): Promise<void>;
}
