import { afterAll, beforeAll, expect, it } from 'vitest';
import { redisBackend } from '../../src/backends/redis/index.js';
import { uniquePrefix } from '../helpers/redis.js';
import { type OwnCluster, startOwnCluster } from '../helpers/redis-cluster.js';
import { runBackendContract } from './backend-contract.js';

// One cluster for the file (three masters), made before the suite's own beforeAll runs.
let cluster: OwnCluster;
beforeAll(async () => {
  cluster = await startOwnCluster({ masters: 3 });
}, 60_000);
afterAll(async () => {
  await cluster?.dispose();
});

runBackendContract('redis (TCP, Redis Cluster of three masters)', async () => {
  const backend = redisBackend({ cluster: cluster.urls, prefix: uniquePrefix('redis-cluster') });
  return { backend, exactTrim: false, close: () => backend.close() };
});

it('the suite above ran on the cluster: every channel key lives on the master serving its slot', async () => {
  const prefix = uniquePrefix('redis-cluster-where');
  const backend = redisBackend({ cluster: cluster.urls, prefix });
  try {
    const channels = ['a', 'b', 'c', 'd', 'e', 'f'];
    await backend.append(
      channels.map((channel) => ({ channel, type: 'n', data: channel, json: false })),
      { maxLength: 10, ttlSeconds: 60 },
    );
    const holders = new Set<number>();
    for (const channel of channels) {
      const key = `${prefix}{${channel}}`;
      const slot = Number(await cluster.nodes[0]!.redis.call('CLUSTER', 'KEYSLOT', key));
      const master = await cluster.masterOf(slot);
      expect(await master.redis.exists(key)).toBe(1);
      holders.add(master.port);
    }
    expect(holders.size).toBeGreaterThan(1);
  } finally {
    await backend.close();
  }
});
