/**
 * Where a Redis Cluster is: the seed nodes given to `redisBackend({ cluster })` or in
 * REDIS_CLUSTER_NODES, checked, with the TLS setting and credentials every node is reached with.
 */
import type { Env } from '../../../common/env.js';
import { invalidOption } from '../../../common/errors.js';
import { redactUrl } from '../connect.js';

export interface Seed {
  host: string;
  port: number;
  tls: boolean;
  username: string;
  password: string;
}

/**
 * The cluster's seed nodes, from the `cluster` option or else (without `url`) REDIS_CLUSTER_NODES;
 * undefined for one Redis.
 */
export function clusterSeeds(cluster: unknown, url: string | undefined, env: Env): Seed[] | undefined {
  if (cluster !== undefined) {
    if (url !== undefined)
      throw invalidOption('Give redisBackend either url (one Redis) or cluster (seed nodes of a Redis Cluster), not both');
    if (!Array.isArray(cluster) || cluster.length === 0) {
      throw invalidOption(
        `Option cluster must be a non-empty array of seed nodes such as ['redis://10.0.0.1:6379'], got ${describeValue(cluster)}`,
      );
    }
    return sameAuth(
      cluster.map((seed: unknown) => parseSeed(seed, 'Option cluster')),
      'Option cluster',
    );
  }
  const listed = url === undefined ? env.REDIS_CLUSTER_NODES?.trim() : undefined;
  if (!listed) return undefined;
  return sameAuth(
    listed.split(/[\s,]+/).map((seed) => parseSeed(seed, 'REDIS_CLUSTER_NODES')),
    'REDIS_CLUSTER_NODES',
  );
}

function parseSeed(seed: unknown, source: string): Seed {
  const refuse = (why: string) =>
    invalidOption(`${source} lists ${describeValue(seed)}: ${why}; give each seed node as redis://host:port (or rediss://host:port)`);
  if (typeof seed !== 'string') throw refuse('not a string');
  let url: URL;
  try {
    url = new URL(seed);
  } catch {
    throw refuse('not a URL');
  }
  if (url.protocol !== 'redis:' && url.protocol !== 'rediss:') throw refuse(`the scheme ${url.protocol} is not redis: or rediss:`);
  if (!url.hostname) throw refuse('there is no host');
  if (url.pathname !== '' && url.pathname !== '/' && url.pathname !== '/0') throw refuse('a cluster has only database 0');
  return {
    host: url.hostname.replace(/^\[(.*)\]$/, '$1'),
    port: url.port === '' ? 6379 : Number(url.port),
    tls: url.protocol === 'rediss:',
    username: decodeURIComponent(url.username),
    password: decodeURIComponent(url.password),
  };
}

/** Every node of a cluster is reached the same way: one TLS setting, user and password for all. */
function sameAuth(seeds: Seed[], source: string): Seed[] {
  const [first] = seeds as [Seed];
  if (seeds.some((seed) => seed.tls !== first.tls || seed.username !== first.username || seed.password !== first.password)) {
    throw invalidOption(
      `${source}: every seed node needs the same scheme, user and password (they are used for every node of the cluster)`,
    );
  }
  return seeds;
}

function describeValue(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(redactUrl(value));
  return Array.isArray(value) ? 'an empty array' : value === null ? 'null' : typeof value;
}
