/**
 * edge-sse/redis — events in Redis Streams over TCP (ioredis), for long-running Node servers.
 * Same keys and ids as edge-sse/upstash, so both can serve the same channels at once.
 *
 * Connections: one for commands and one for blocking reads, per backend — whatever the number
 * of channels and clients. The blocking connection runs one `XREAD BLOCK` over every active channel.
 * On a Redis Cluster (`cluster`, or REDIS_CLUSTER_NODES): see cluster/index.ts.
 */
import { Cluster, type ClusterOptions, Redis, type RedisOptions } from 'ioredis';
import { BackendError, backendTimeout } from '../../common/errors.js';
import { describeCommands, within } from '../deadline.js';
import { HeadFirst } from '../head-first.js';
import { BlockingWait } from './blocking-wait.js';
import { resolveEnv } from '../../common/env.js';
import { wholeNumber } from '../../common/options.js';
import { type ClusterConnections, clusterBackend } from './cluster/index.js';
import { type Seed, clusterSeeds } from './cluster/seeds.js';
import { streamsBackend } from '../redis-streams/backend.js';
import { DEFAULT_PREFIX, KeySpace } from '../redis-streams/keys.js';
import type { RedisCommand, RedisReply, RedisTransport } from '../redis-streams/transport.js';
import { XreadFeed } from '../redis-streams/xread-feed.js';
import { READY_TIMEOUT_MS, RESP2, connectRedis, quiet, redactUrl, whenReady } from './connect.js';
import type { Backend, CallOptions, LiveFeed } from '../contract.js';

export interface RedisBackendOptions {
  /** `redis://…` / `rediss://…`; defaults to REDIS_URL, then redis://127.0.0.1:6379. */
  url?: string;
  /**
   * Seed nodes of a Redis Cluster, each `redis://host:port` (or `rediss://`, with the same user and
   * password on all): a few suffice, the others are found. Defaults to REDIS_CLUSTER_NODES (the
   * same, separated by commas or spaces) when `url` is not given. Not together with `url`.
   */
  cluster?: readonly string[];
  /** Extra ioredis Cluster options, with `cluster` (`redisOptions` apply to each node's connections). */
  clusterOptions?: ClusterOptions;
  /** Extra ioredis options for the connections edge-sse opens. */
  redisOptions?: RedisOptions;
  /** Key prefix of every channel's stream (default `sse:`). */
  prefix?: string;
  /**
   * How long one blocking read waits before it is renewed (default 30000). On a cluster, how often
   * a reader subscribes again and reads every channel, in case a wake-up was lost.
   */
  blockMs?: number;
  /**
   * Longest wait for one command, in ms (default 10000); a blocking read gets `blockMs` more.
   * Past it the call fails with a BackendError `BACKEND_TIMEOUT` (a blocking read's connection
   * is dropped, and made again for the next one).
   */
  timeoutMs?: number;
  env?: Record<string, string | undefined>;
}

export { PartialPublishError, type PartFailure } from './cluster/append.js';

/** A day: any longer is no bound (and timers cannot wait past ~24.8 days). */
const MAX_TIMEOUT_MS = 86_400_000;

export function redisBackend(options: RedisBackendOptions = {}): Backend {
  const env = resolveEnv(options.env);
  const keys = new KeySpace(options.prefix ?? DEFAULT_PREFIX);
  const blockMs = wholeNumber('blockMs', options.blockMs, 30_000, 10, MAX_TIMEOUT_MS);
  const timeoutMs = wholeNumber('timeoutMs', options.timeoutMs, 10_000, 1, MAX_TIMEOUT_MS);
  const seeds = clusterSeeds(options.cluster, options.url, env);
  if (seeds) return clusterBackend(connectCluster(seeds, options), { keys, auditMs: blockMs, timeoutMs });
  const url = options.url ?? env.REDIS_URL ?? 'redis://127.0.0.1:6379';
  const commands = connectRedis(url, { retryStrategy: (attempt) => Math.min(attempt * 200, 2000), ...options.redisOptions });
  const transport = new IORedisTransport(commands, url, timeoutMs);
  const feeds = new Map<LiveFeed, BlockingWait>();
  return streamsBackend({
    name: 'redis',
    transport,
    keys,
    shareable: true,
    createFeed(listener, call, _appId, tail) {
      const wait = new BlockingWait(commands, transport, keys, { blockMs, timeoutMs }, call, () => feeds.delete(feed));
      const feed = new XreadFeed(keys, wait, new HeadFirst(tail, listener, call), listener);
      feeds.set(feed, wait);
      return feed;
    },
    requests: () => transport.requests,
    subscriptions: () => [...feeds.values()].filter((wait) => wait.isReading).length,
    async close() {
      for (const feed of feeds.keys()) feed.close();
      commands.disconnect();
    },
  });
}

/**
 * ioredis's Cluster for commands (auto-pipelined: the commands of one tick to one node leave
 * together), and a way to open a connection of its own to one master, for subscriptions.
 */
function connectCluster(seeds: Seed[], options: RedisBackendOptions): ClusterConnections {
  const [{ tls, username, password }] = seeds as [Seed];
  const nodeOptions: RedisOptions = {
    ...RESP2,
    ...(username ? { username } : {}),
    ...(password ? { password } : {}),
    ...(tls ? { tls: {} } : {}),
    ...options.redisOptions,
  };
  const cluster = new Cluster(
    seeds.map(({ host, port }) => ({ host, port })),
    {
      enableAutoPipelining: true,
      clusterRetryStrategy: (attempt) => Math.min(attempt * 200, 2000),
      redisOptions: nodeOptions,
      ...options.clusterOptions,
    },
  );
  quiet(cluster);
  return {
    cluster,
    seeds: seeds.map(({ host, port }) => `${host}:${port}`).join(','),
    connectTo(node: string): Redis {
      const colon = node.lastIndexOf(':');
      return quiet(
        new Redis({
          ...nodeOptions,
          host: node.slice(0, colon),
          port: Number(node.slice(colon + 1)),
          lazyConnect: true,
          autoResubscribe: false,
          retryStrategy: (attempt) => Math.min(attempt * 200, 2000),
        }),
      );
    },
  };
}

class IORedisTransport implements RedisTransport {
  requests = 0;

  constructor(
    private client: Redis,
    private url: string,
    readonly timeoutMs: number,
  ) {}

  async pipeline(commands: RedisCommand[], options: CallOptions = {}): Promise<(RedisReply | Error)[]> {
    options.onRequest?.();
    this.requests++;
    const called = describeCommands(commands);
    let results: [Error | null, unknown][] | null;
    try {
      results = await this.bounded(this.exec(commands), called.names, called.publishes);
    } catch (error) {
      throw error instanceof BackendError ? error : unreachable(this.url, error);
    }
    if (!results) throw unreachable(this.url, new Error('the pipeline was discarded'));
    return results.map(([error, reply]) => toReply(error, reply, this.url));
  }

  /** `work` on Redis, failing with BACKEND_TIMEOUT after `timeoutMs` (its reply, if it comes, is dropped). */
  bounded<T>(work: Promise<T>, what: string, publishes = false, ms = this.timeoutMs): Promise<T> {
    return within(work, ms, () => backendTimeout(`Redis at ${redactUrl(this.url)} (${what})`, ms, publishes));
  }

  private async exec(commands: RedisCommand[]): Promise<[Error | null, unknown][] | null> {
    await whenReady(this.client, READY_TIMEOUT_MS);
    return this.client.pipeline(commands.map(([name, ...args]) => [String(name).toLowerCase(), ...args])).exec();
  }
}

function toReply(error: Error | null, reply: unknown, url: string): RedisReply | Error {
  if (!error) return reply as RedisReply;
  if (/Connection is closed|Stream isn't writeable|ECONNREFUSED|ETIMEDOUT/i.test(error.message)) throw unreachable(url, error);
  return error;
}

function unreachable(url: string, cause: unknown): BackendError {
  return new BackendError('BACKEND_UNAVAILABLE', `Redis is unreachable at ${redactUrl(url)}: ${(cause as Error).message}`, { cause });
}

export type { Backend } from '../contract.js';
