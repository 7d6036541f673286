/**
 * `redisBackend({ cluster })`: the TCP backend on a Redis Cluster. Same keys and ids as on one
 * Redis; each channel's keys hash to the slot of its name (`<prefix>{<channel>}`).
 *
 * - Commands go through ioredis's `Cluster` (routing, MOVED/ASK, failovers); a read over channels
 *   of several masters is one request per master, sent at once (transport.ts).
 * - A batch is stored per slot, each part all or nothing (append.ts).
 * - Live reads: sharded pub/sub wake-ups and non-blocking reads grouped per master
 *   (feed.ts): one subscribed connection per master that serves followed channels.
 */
import type { Cluster, Redis } from 'ioredis';
import { appendOnCluster } from './append.js';
import { ClusterFeed } from './feed.js';
import { HeadFirst } from '../../head-first.js';
import { ClusterTransport } from './transport.js';
import { streamsBackend } from '../../redis-streams/backend.js';
import type { KeySpace } from '../../redis-streams/keys.js';
import type { AppendOptions, Backend, NewEvent, Retention } from '../../contract.js';

export interface ClusterConnections {
  cluster: Cluster;
  /** A new connection to one master (`host:port`), lazily connected, that does not resubscribe by itself. */
  connectTo(node: string): Redis;
  /** The seed nodes, for messages (without passwords). */
  seeds: string;
}

export interface ClusterSettings {
  keys: KeySpace;
  /** How often a feed subscribes again and reads every channel, as a net for lost wake-ups. */
  auditMs: number;
  timeoutMs: number;
}

export function clusterBackend({ cluster, connectTo, seeds }: ClusterConnections, { keys, auditMs, timeoutMs }: ClusterSettings): Backend {
  const transport = new ClusterTransport(cluster, seeds, timeoutMs);
  const feeds = new Set<ClusterFeed>();
  const onRefresh = () => {
    for (const feed of feeds) feed.slotsChanged();
  };
  cluster.on('refresh', onRefresh);
  const backend = streamsBackend({
    name: 'redis-cluster',
    transport,
    keys,
    shareable: true,
    createFeed(listener, call, _appId, tail) {
      const starts = new HeadFirst(tail, listener, call);
      const feed = new ClusterFeed({ transport, keys, connectTo, auditMs }, listener, starts, () => feeds.delete(feed), call);
      feeds.add(feed);
      return feed;
    },
    requests: () => transport.requests,
    subscriptions: () => [...feeds].reduce((sum, feed) => sum + feed.connections, 0),
    async close() {
      for (const feed of feeds) feed.close();
      cluster.off('refresh', onRefresh);
      cluster.disconnect();
    },
  });
  return {
    ...backend,
    append: (events: readonly NewEvent[], retention: Retention, call?: AppendOptions) =>
      appendOnCluster(transport, keys, events, retention, call),
  };
}
