/**
 * edge-sse/redis — events in Redis Streams over TCP (ioredis), for long-running Node servers.
 * Same keys and ids as edge-sse/upstash, so both can serve the same channels at once.
 *
 * Connections: one for commands and one for blocking reads, per backend — whatever the number
 * of channels and clients. The blocking connection runs one `XREAD BLOCK` over every active channel.
 */
import { Redis, type RedisOptions } from 'ioredis';
import { BackendError } from '../errors.js';
import { compareIds } from '../ids.js';
import { resolveEnv } from '../env.js';
import { wholeNumber } from '../options.js';
import {
  DEFAULT_PREFIX,
  KeySpace,
  type RedisCommand,
  type RedisReply,
  type RedisTransport,
  backendFailure,
  fromXread,
  streamsBackend,
  xreadCommand,
} from './redis-streams.js';
import type { Backend, CallOptions, FeedListener, LiveFeed, StoredEvent } from './types.js';

export interface RedisBackendOptions {
  /** `redis://…` / `rediss://…`; defaults to REDIS_URL, then redis://127.0.0.1:6379. */
  url?: string;
  /** Extra ioredis options for the connections edge-sse opens. */
  redisOptions?: RedisOptions;
  /** Key prefix of every channel's stream (default `sse:`). */
  prefix?: string;
  /** How long one blocking read waits before it is renewed (default 30000). */
  blockMs?: number;
  env?: Record<string, string | undefined>;
}

const READ_BATCH = 100;

export function redisBackend(options: RedisBackendOptions = {}): Backend {
  const env = resolveEnv(options.env);
  const url = options.url ?? env.REDIS_URL ?? 'redis://127.0.0.1:6379';
  const keys = new KeySpace(options.prefix ?? DEFAULT_PREFIX);
  const blockMs = wholeNumber('blockMs', options.blockMs, 30_000, 10);
  const commands = connect(url, options.redisOptions);
  const transport = new IORedisTransport(commands, url);
  const feeds = new Set<BlockingFeed>();
  return streamsBackend({
    name: 'redis',
    transport,
    keys,
    shareable: true,
    createFeed(listener, call) {
      const feed = new BlockingFeed(commands, transport, keys, listener, blockMs, () => feeds.delete(feed), call);
      feeds.add(feed);
      return feed;
    },
    requests: () => transport.requests,
    subscriptions: () => [...feeds].filter((feed) => feed.isReading).length,
    async close() {
      for (const feed of feeds) feed.close();
      commands.disconnect();
    },
  });
}

/**
 * Commands fail at once while Redis is away (no offline queue) instead of hanging a request;
 * the connection reconnects by itself.
 */
function connect(url: string, extra: RedisOptions = {}): Redis {
  const client = new Redis(url, {
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    retryStrategy: (attempt) => Math.min(attempt * 200, 2000),
    // ioredis 6 speaks RESP3 by default and reshapes stream replies; RESP2 keeps Redis's own shapes.
    protocol: 2,
    ...extra,
  } as RedisOptions);
  client.on('error', () => {
    // Failures surface on the commands that hit them; without a listener ioredis logs each retry.
  });
  return client;
}

class IORedisTransport implements RedisTransport {
  requests = 0;

  constructor(
    private client: Redis,
    private url: string,
  ) {}

  async pipeline(commands: RedisCommand[], options: CallOptions = {}): Promise<(RedisReply | Error)[]> {
    options.onRequest?.();
    this.requests++;
    let results: [Error | null, unknown][] | null;
    try {
      await whenReady(this.client);
      results = await this.client.pipeline(commands.map(([name, ...args]) => [String(name).toLowerCase(), ...args])).exec();
    } catch (error) {
      throw unreachable(this.url, error);
    }
    if (!results) throw unreachable(this.url, new Error('the pipeline was discarded'));
    return results.map(([error, reply]) => toReply(error, reply, this.url));
  }
}

const READY_TIMEOUT_MS = 2000;

/** Commands are not queued while disconnected, so wait (briefly) for the connection first. */
async function whenReady(client: Redis): Promise<void> {
  if (client.status === 'ready') return;
  if (client.status === 'wait') void client.connect().catch(() => undefined);
  if (client.status === 'end') throw new Error('the connection was closed');
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => done(new Error(`no connection within ${READY_TIMEOUT_MS} ms`)), READY_TIMEOUT_MS);
    const onReady = () => done();
    function done(error?: Error) {
      clearTimeout(timer);
      client.off('ready', onReady);
      if (error) reject(error);
      else resolve();
    }
    client.once('ready', onReady);
  });
}

function toReply(error: Error | null, reply: unknown, url: string): RedisReply | Error {
  if (!error) return reply as RedisReply;
  if (/Connection is closed|Stream isn't writeable|ECONNREFUSED|ETIMEDOUT/i.test(error.message)) throw unreachable(url, error);
  return error;
}

function unreachable(url: string, cause: unknown): BackendError {
  const where = url.replace(/\/\/[^@/]*@/, '//');
  return new BackendError('BACKEND_UNAVAILABLE', `Redis is unreachable at ${where}: ${(cause as Error).message}`, { cause });
}

/**
 * One `XREAD BLOCK` over every followed channel on a dedicated connection. Following a new
 * channel interrupts the read with `CLIENT UNBLOCK` so it is re-issued with the new set.
 */
class BlockingFeed implements LiveFeed {
  private positions = new Map<string, string>();
  private connection: Redis | undefined;
  private connectionId: number | undefined;
  private reading: Map<string, string> | undefined;
  private running = false;
  private closed = false;

  /** Whether a blocking read is waiting on Redis now. */
  get isReading(): boolean {
    return this.reading !== undefined;
  }

  constructor(
    private commands: Redis,
    private transport: IORedisTransport,
    private keys: KeySpace,
    private listener: FeedListener,
    private blockMs: number,
    private onClose: () => void,
    private call: CallOptions = {},
  ) {}

  follow(channel: string, after: string): void {
    this.positions.set(channel, after);
    if (!this.running) void this.run();
    else void this.interrupt();
  }

  unfollow(channel: string): void {
    this.positions.delete(channel);
    if (this.positions.size === 0) void this.interrupt();
  }

  close(): void {
    this.closed = true;
    this.positions.clear();
    this.connection?.disconnect();
    this.connection = undefined;
    this.onClose();
  }

  private async run(): Promise<void> {
    this.running = true;
    try {
      while (!this.closed && this.positions.size > 0) {
        const asked = new Map(this.positions);
        const connection = await this.blockingConnection();
        this.reading = asked;
        const [name, ...args] = xreadCommand(this.keys, asked, READ_BATCH, this.blockMs);
        this.call.onRequest?.();
        const reply = await connection.call(String(name), ...args);
        this.reading = undefined;
        this.transport.requests++;
        this.deliver(fromXread(this.keys, reply as RedisReply));
      }
    } catch (error) {
      if (!this.closed) this.fail(error);
    } finally {
      this.reading = undefined;
      this.running = false;
    }
  }

  private deliver(byChannel: Map<string, StoredEvent[]>): void {
    for (const [channel, events] of byChannel) {
      const position = this.positions.get(channel);
      if (position === undefined) continue;
      const fresh = events.filter((event) => compareIds(event.id, position) > 0);
      if (fresh.length === 0) continue;
      this.positions.set(channel, (fresh.at(-1) as StoredEvent).id);
      this.listener.onEvents(channel, fresh);
    }
  }

  private async blockingConnection(): Promise<Redis> {
    if (this.connection && this.connection.status === 'ready' && this.connectionId !== undefined) return this.connection;
    this.connection?.disconnect();
    const connection = (this.connection = this.commands.duplicate({ lazyConnect: true, retryStrategy: () => null }));
    connection.on('error', () => undefined);
    await connection.connect();
    this.connectionId = Number(await connection.call('CLIENT', 'ID'));
    return connection;
  }

  /**
   * Wakes the blocked read so it restarts with the current channels. The UNBLOCK may overtake the
   * XREAD on its way to Redis; then it finds nothing to unblock and is tried again shortly.
   */
  private async interrupt(): Promise<void> {
    for (let attempt = 0; attempt < 50 && this.reading && this.isStale(this.reading); attempt++) {
      const id = this.connectionId;
      const unblocked = id === undefined ? 0 : await this.commands.call('CLIENT', 'UNBLOCK', id).catch(() => 0);
      this.transport.requests++;
      if (Number(unblocked) === 1) return;
      await new Promise((resolve) => setTimeout(resolve, 2 * (attempt + 1)));
    }
  }

  /** Whether the read in flight misses a followed channel, or has nobody left to read for. */
  private isStale(reading: Map<string, string>): boolean {
    if (this.positions.size === 0) return true;
    for (const channel of this.positions.keys()) if (!reading.has(channel)) return true;
    return false;
  }

  private fail(error: unknown): void {
    const failure = error instanceof BackendError ? error : backendFailure(error as Error);
    const unavailable =
      failure.code === 'BACKEND_ERROR' && /closed|ECONNREFUSED|ECONNRESET/i.test(failure.message)
        ? new BackendError('BACKEND_UNAVAILABLE', `Redis went away: ${failure.message}`, { cause: error })
        : failure;
    const channels = [...this.positions.keys()];
    this.positions.clear();
    this.connection?.disconnect();
    this.connection = undefined;
    for (const channel of channels) this.listener.onError(channel, unavailable);
  }
}

export type { Backend } from './types.js';
