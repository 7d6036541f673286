/**
 * edge-sse/redis on a Redis Cluster of its own (three masters, each with a replica), beyond the
 * contract suite (test/contract/redis-cluster.test.ts): how it is configured, batches across
 * slots, requests and connections per master, wake-ups that stay on their shard, and streams
 * that lose nothing acknowledged while a slot moves or a master fails over.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PartialPublishError, redisBackend } from '../src/backends/redis/index.js';
import { slotOfChannel, slotOfKey } from '../src/backends/redis/cluster/slots.js';
import { type Backend, BackendError, type SSE, ValidationError, createSSE, sendEvents } from '../src/index.js';
import type { NewEvent } from '../src/backends/contract.js';
import { freePort } from './helpers/redis-server.js';
import { uniquePrefix } from './helpers/redis.js';
import { type OwnCluster, startOwnCluster } from './helpers/redis-cluster.js';
import { SSEReader, streamRequest } from './helpers/sse.js';
import { waitUntil } from './helpers/wait.js';

let cluster: OwnCluster;
const backends: Backend[] = [];
beforeAll(async () => {
  cluster = await startOwnCluster({ masters: 3, replicas: 1 });
}, 60_000);
afterAll(async () => {
  await Promise.all(backends.map((backend) => backend.close()));
  await cluster?.dispose();
});

function clusterBackend(options: { blockMs?: number; timeoutMs?: number } = {}): { backend: Backend; prefix: string } {
  const prefix = uniquePrefix('cluster');
  const backend = redisBackend({ cluster: cluster.urls, prefix, ...options });
  backends.push(backend);
  return { backend, prefix };
}

const RETENTION = { maxLength: 1000, ttlSeconds: 600 };
const event = (channel: string, data: string): NewEvent => ({ channel, type: 'n', data, json: false });

/** Channel names in distinct slots, `perMaster` on each of the three masters, by master. */
async function channelsOnEveryMaster(label: string, perMaster = 1): Promise<[string[], string[], string[]]> {
  const masters = await cluster.masters();
  const byMaster = new Map<number, string[]>(masters.map((node) => [node.port, []]));
  for (let n = 0; [...byMaster.values()].some((list) => list.length < perMaster); n++) {
    const channel = `${label}-${n}`;
    const list = byMaster.get((await cluster.masterOf(slotOfChannel(channel))).port)!;
    if (list.length < perMaster) list.push(channel);
  }
  return [...byMaster.values()] as [string[], string[], string[]];
}

/** Another channel name in the slot of `channel`. */
function sameSlotAs(channel: string): string {
  for (let n = 0; ; n++) if (slotOfChannel(`${channel}.${n}`) === slotOfChannel(channel)) return `${channel}.${n}`;
}

describe('slots', () => {
  it('edge-sse finds the slot Redis does, for stream keys and for any key', async () => {
    const keys = ['sse:{news}', 'p:{a}', 'x{}y', '{}', 'no tag', 'héllo{wörld}', 'a{b}{c}', 'a{', 'a}b{c'];
    for (let n = 0; n < 50; n++) keys.push(`test:${n}:{channel.${n * 7919}}`, `k${n}`);
    for (const key of keys) expect(slotOfKey(key), key).toBe(Number(await cluster.nodes[0]!.redis.call('CLUSTER', 'KEYSLOT', key)));
    expect(slotOfChannel('news')).toBe(slotOfKey('sse:{news}'));
  });
});

describe('configuration', () => {
  it('REDIS_CLUSTER_NODES names the seed nodes when no url is given (before REDIS_URL); a url means one Redis', async () => {
    const fromEnv = redisBackend({
      env: { REDIS_CLUSTER_NODES: ` ${cluster.urls[0]}, ${cluster.urls[1]} ` },
      prefix: uniquePrefix('cluster-env'),
    });
    backends.push(fromEnv);
    expect(fromEnv.name).toBe('redis-cluster');
    const [id] = await fromEnv.append([event('from-env', 'x')], RETENTION);
    expect((await fromEnv.read([{ channel: 'from-env', after: '0-0' }], 10))[0]!.events.map((e) => e.id)).toEqual([id]);
    const single = redisBackend({ url: 'redis://127.0.0.1:6379', env: { REDIS_CLUSTER_NODES: cluster.urls[0] } });
    const both = redisBackend({ env: { REDIS_URL: 'redis://127.0.0.1:6379', REDIS_CLUSTER_NODES: cluster.urls[0] } });
    backends.push(single, both);
    expect(single.name).toBe('redis');
    expect(both.name).toBe('redis-cluster');
  });

  it.each([
    [{ cluster: [] }, /non-empty array/],
    [{ cluster: ['http://127.0.0.1:7000'] }, /scheme http: is not redis: or rediss:/],
    [{ cluster: ['127.0.0.1:7000'] }, /redis:\/\/host:port/],
    [{ cluster: ['redis://127.0.0.1:7000/2'] }, /only database 0/],
    [{ cluster: ['redis://127.0.0.1:7000', 'rediss://127.0.0.1:7001'] }, /same scheme, user and password/],
    [{ cluster: ['redis://127.0.0.1:7000'], url: 'redis://127.0.0.1:6379' }, /either url .* or cluster/],
    [{ env: { REDIS_CLUSTER_NODES: 'redis://a:1,nonsense' } }, /REDIS_CLUSTER_NODES lists "nonsense"/],
  ])('refuses %j with INVALID_OPTION', (options, message) => {
    let thrown: unknown;
    try {
      redisBackend(options as Parameters<typeof redisBackend>[0]);
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(ValidationError);
    expect((thrown as ValidationError).code).toBe('INVALID_OPTION');
    expect((thrown as ValidationError).message).toMatch(message);
  });

  it('a cluster nobody answers for fails a publish with BACKEND_UNAVAILABLE, in bounded time', async () => {
    const backend = redisBackend({ cluster: [`redis://127.0.0.1:${await freePort()}`], timeoutMs: 500 });
    backends.push(backend);
    const failure = await backend.append([event('nowhere', 'x')], RETENTION).catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(BackendError);
    expect((failure as BackendError).code).toBe('BACKEND_UNAVAILABLE');
    expect((failure as BackendError).message).toMatch(/Redis Cluster is unreachable at 127\.0\.0\.1:\d+/);
  });
});

describe('batches across slots', () => {
  it('are stored per slot: ids in the caller order, each channel on the master serving it', async () => {
    const { backend } = clusterBackend();
    const [[a], [b], [c]] = await channelsOnEveryMaster('spread');
    const ids = await backend.append([event(a!, '1'), event(b!, '2'), event(a!, '3'), event(c!, '4')], RETENTION);
    const reads = await backend.read(
      [a!, b!, c!].map((channel) => ({ channel, after: '0-0' })),
      10,
    );
    expect(reads.map((read) => read.events.map((e) => [e.id, e.data]))).toEqual([
      [
        [ids[0], '1'],
        [ids[2], '3'],
      ],
      [[ids[1], '2']],
      [[ids[3], '4']],
    ]);
  });

  it('a slot that refuses its part: a PartialPublishError says which events were stored; a retry with the key stores the rest once', async () => {
    const { backend, prefix } = clusterBackend();
    const sse = createSSE({ backend });
    const [[good], [bad]] = await channelsOnEveryMaster('partial');
    const besideBad = sameSlotAs(bad!);
    const holder = await cluster.masterOf(slotOfChannel(bad!));
    await holder.redis.set(`${prefix}{${bad}}`, 'not a stream');
    const batch = [
      { type: 'n', data: 'g1', channel: good! },
      { type: 'n', data: 'b1', channel: bad! },
      { type: 'n', data: 's1', channel: besideBad },
      { type: 'n', data: 'g2', channel: good! },
    ];
    const failure = await sse.sendEvents(batch, { idempotencyKey: 'partial-1' }).catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(PartialPublishError);
    const partial = failure as PartialPublishError;
    expect(partial.code).toBe('BACKEND_ERROR');
    expect(partial.ids.map((id) => id !== null)).toEqual([true, false, false, true]);
    expect(partial.failures).toHaveLength(1);
    expect(partial.failures[0]!.channels.sort()).toEqual([bad!, besideBad].sort());
    expect(partial.failures[0]!.events).toEqual([1, 2]);
    expect(partial.message).toMatch(/stored 2 of 4 events \(events #0, #3\)/);
    expect(partial.message).toMatch(new RegExp(`not events #1, #2 on channels .*"${bad}"`));
    expect(partial.message).toMatch(/retry the whole batch with the same idempotencyKey/);
    // The part of the refusing slot is all or nothing: its other channel has nothing either.
    expect((await backend.read([{ channel: besideBad, after: '0-0' }], 10))[0]!.events).toEqual([]);

    await holder.redis.del(`${prefix}{${bad}}`);
    const ids = await sse.sendEvents(batch, { idempotencyKey: 'partial-1' });
    expect([ids[0], ids[3]]).toEqual([partial.ids[0], partial.ids[3]]);
    const reads = await backend.read(
      [good!, bad!, besideBad].map((channel) => ({ channel, after: '0-0' })),
      10,
    );
    expect(reads.map((read) => read.events.map((e) => e.data))).toEqual([['g1', 'g2'], ['b1'], ['s1']]);
    // A third try publishes nothing more, and says it repeated.
    await expect(sendEvents(batch, { backend, idempotencyKey: 'partial-1' })).resolves.toEqual(ids);
  });

  it('a batch in one slot stays all or nothing', async () => {
    const { backend, prefix } = clusterBackend();
    const [first] = (await channelsOnEveryMaster('one-slot'))[0]!;
    const second = sameSlotAs(first!);
    await (await cluster.masterOf(slotOfChannel(first!))).redis.set(`${prefix}{${second}}`, 'taken');
    const failure = await backend.append([event(first!, '1'), event(second, '2')], RETENTION).catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(BackendError);
    expect(failure).not.toBeInstanceOf(PartialPublishError);
    expect((failure as BackendError).message).toMatch(new RegExp(`channel "${second.replace(/\./g, '\\.')}" .*nothing was published`));
    expect((await backend.read([{ channel: first!, after: '0-0' }], 10))[0]!.events).toEqual([]);
  });
});

describe('per master, not per channel', () => {
  it('a read over channels of every master is one request per master', async () => {
    const { backend } = clusterBackend();
    const channels = (await channelsOnEveryMaster('grouped', 4)).flat();
    await backend.append(
      channels.map((channel) => event(channel, channel)),
      RETENTION,
    );
    const before = backend.stats().requests;
    const reads = await backend.read(
      channels.map((channel) => ({ channel, after: '0-0' })),
      10,
    );
    expect(reads.map((read) => read.events.map((e) => e.data))).toEqual(channels.map((channel) => [channel]));
    expect(backend.stats().requests - before).toBe(3);
  });

  it('a feed on twelve channels over three masters holds one subscribed connection per master', async () => {
    const { backend } = clusterBackend();
    const channels = (await channelsOnEveryMaster('followed', 4)).flat();
    const received: string[] = [];
    const feed = backend.createFeed({
      onFollowing() {},
      onEvents: (_, events) => received.push(...events.map((e) => e.data)),
      onError() {},
    });
    try {
      for (const channel of channels) feed.follow(channel, '0-0');
      await backend.append(
        channels.map((channel) => event(channel, channel)),
        RETENTION,
      );
      await waitUntil(() => received.length === channels.length);
      expect(received.sort()).toEqual([...channels].sort());
      expect(backend.stats().subscriptions).toBe(3);
      // What each master sees: the cluster's command connection and the feed's subscribed one.
      for (const master of await cluster.masters()) {
        const clients = String(await master.redis.call('CLIENT', 'LIST'))
          .trim()
          .split('\n')
          .filter((line) => !/ cmd=client\|list /.test(line) && !/flags=[^ ]*[SM]/.test(line));
        expect(clients.filter((line) => / psub=0 ssub=[1-9]/.test(line))).toHaveLength(1);
      }
    } finally {
      feed.close();
    }
  });

  it('wake-ups stay on the shard: SPUBLISH on the master serving the channel, no PUBLISH anywhere', async () => {
    const { backend } = clusterBackend();
    const [[channel]] = await channelsOnEveryMaster('shard');
    const stats = async () =>
      Promise.all(
        cluster.nodes.map(async (node) => {
          const info = String(await node.redis.call('INFO', 'commandstats'));
          const calls = (name: string) => Number(new RegExp(`cmdstat_${name}:calls=(\\d+)`).exec(info)?.[1] ?? 0);
          return { port: node.port, publish: calls('publish'), spublish: calls('spublish') };
        }),
      );
    const before = await stats();
    await backend.append([event(channel!, '1'), event(channel!, '2')], RETENTION);
    const after = await stats();
    const holder = await cluster.masterOf(slotOfChannel(channel!));
    const masters = await cluster.masters();
    for (const [index, node] of cluster.nodes.entries()) {
      expect(after[index]!.publish - before[index]!.publish, `PUBLISH on ${node.port}`).toBe(0);
      // One per channel of the batch, on the master serving it (its replicas hear it over the cluster bus).
      if (masters.includes(node))
        expect(after[index]!.spublish - before[index]!.spublish, `SPUBLISH on ${node.port}`).toBe(node === holder ? 1 : 0);
    }
  });
});

/** A client of one channel through the stream handler that resumes from its cursor whenever a stream ends, as EventSource does. */
async function follower(sse: SSE, channel: string) {
  const done: string[] = [];
  let current: SSEReader | undefined = new SSEReader(await sse.handler(streamRequest(`?channel=${channel}`)));
  await current.waitForReady();
  let stopped = false;
  const running = (async () => {
    for (;;) {
      const ending: SSEReader = current!;
      await ending.waitForEnd(600_000);
      done.push(...ending.messages.map((m) => m.data));
      current = undefined;
      if (stopped) return;
      const cursor = ending.lastId;
      current = new SSEReader(await sse.handler(streamRequest(`?channel=${channel}`, cursor ? { 'Last-Event-ID': cursor } : {})));
    }
  })();
  return {
    received: () => [...done, ...(current?.messages.map((m) => m.data) ?? [])],
    async stop() {
      stopped = true;
      await current?.cancel();
      await running;
    },
  };
}

/** Publishes 0, 1, 2, … one after another until `stop()`; which ones were acknowledged, and which failed. */
function publisher(sse: SSE, channel: string) {
  const acknowledged: number[] = [];
  const failed: number[] = [];
  let stopped = false;
  const running = (async () => {
    for (let n = 0; !stopped; n++) {
      await sse.sendEvent('n', String(n), { channel }).then(
        () => acknowledged.push(n),
        () => failed.push(n),
      );
      await new Promise((resolve) => setTimeout(resolve, 3)); // a steady stream, not a flood
    }
  })();
  return {
    acknowledged,
    failed,
    /** Until `count` more publishes were acknowledged. */
    more: (count: number) => {
      const target = acknowledged.length + count;
      return waitUntil(() => acknowledged.length >= target, 15_000);
    },
    async stop() {
      stopped = true;
      await running;
    },
  };
}

/** Every acknowledged publish arrived, once, in order; anything else that arrived is a publish that failed (it may have been stored). */
async function expectNothingLost(reader: Awaited<ReturnType<typeof follower>>, published: ReturnType<typeof publisher>) {
  await published.stop();
  const last = published.acknowledged.at(-1)!;
  await waitUntil(() => reader.received().includes(String(last)), 15_000);
  await reader.stop();
  const received = reader.received().map(Number);
  expect(received).toEqual([...new Set(received)].sort((a, b) => a - b));
  const arrived = new Set(received);
  expect(published.acknowledged.filter((n) => !arrived.has(n))).toEqual([]);
  const failed = new Set(published.failed);
  expect(received.filter((n) => !published.acknowledged.includes(n) && !failed.has(n))).toEqual([]);
}

describe('mid-stream, nothing acknowledged is lost', () => {
  // The safety net (blockMs) is far beyond the test: recovery must come from noticing the change.
  const options = { timeoutMs: 5000, blockMs: 600_000 };

  it('while the channel’s slot moves to another master (MIGRATE, ASK redirections, then the hand-over)', async () => {
    const { backend } = clusterBackend(options);
    const sse = createSSE({ backend, maxDurationMs: 600_000 });
    const channel = 'moving';
    const slot = slotOfChannel(channel);
    const reader = await follower(sse, channel);
    const published = publisher(sse, channel);
    await published.more(20);
    const from = await cluster.masterOf(slot);
    const to = (await cluster.masters()).find((node) => node !== from)!;
    // Publishes go on while the keys are on the new master and the slot still on the old one.
    await cluster.moveSlot(slot, to, () => published.more(10));
    expect((await cluster.masterOf(slot)).port).toBe(to.port);
    await published.more(20);
    await expectNothingLost(reader, published);
    expect(await to.redis.exists(`${await prefixOf(backend, channel)}{${channel}}`)).toBe(1);
  }, 60_000);

  it('while the channel’s master fails over to its replica (CLUSTER FAILOVER)', async () => {
    const { backend } = clusterBackend(options);
    const sse = createSSE({ backend, maxDurationMs: 600_000 });
    const channel = 'failing-over';
    const slot = slotOfChannel(channel);
    const reader = await follower(sse, channel);
    const published = publisher(sse, channel);
    await published.more(20);
    const { from, to } = await cluster.failOver(slot);
    expect((await cluster.masterOf(slot)).port).toBe(to.port);
    expect(to.port).not.toBe(from.port);
    await published.more(20);
    await expectNothingLost(reader, published);
  }, 60_000);
});

describe('subscriptions lost without a publish through the same backend', () => {
  const options = { timeoutMs: 5000, blockMs: 600_000 };

  /** A reader on one backend, a publisher on another (as in another process), same prefix. */
  function pair() {
    const { backend: reading, prefix } = clusterBackend(options);
    const publishing = redisBackend({ cluster: cluster.urls, prefix, ...options });
    backends.push(publishing);
    const received: string[] = [];
    const feed = reading.createFeed({
      onFollowing() {},
      onEvents: (_, events) => received.push(...events.map((e) => e.data)),
      onError() {},
    });
    return { reading, publishing, received, feed };
  }

  it('a subscribed connection that drops comes back, and what was published meanwhile arrives', async () => {
    const { publishing, received, feed } = pair();
    const channel = 'dropped';
    try {
      feed.follow(channel, '0-0');
      await publishing.append([event(channel, 'before')], RETENTION);
      await waitUntil(() => received.length === 1);
      const master = await cluster.masterOf(slotOfChannel(channel));
      expect(Number(await master.redis.call('CLIENT', 'KILL', 'TYPE', 'pubsub'))).toBeGreaterThan(0);
      await publishing.append([event(channel, 'while away')], RETENTION);
      await waitUntil(() => received.length === 2);
      expect(received).toEqual(['before', 'while away']);
    } finally {
      feed.close();
    }
  });

  it("an idle reader follows its channel's slot to another master (Redis drops the subscription there)", async () => {
    const { publishing, received, feed } = pair();
    const channel = 'idle-move';
    const slot = slotOfChannel(channel);
    try {
      feed.follow(channel, '0-0');
      await publishing.append([event(channel, 'before')], RETENTION);
      await waitUntil(() => received.length === 1);
      const from = await cluster.masterOf(slot);
      await cluster.moveSlot(slot, (await cluster.masters()).find((node) => node !== from)!);
      // The reader's backend sent nothing there: only the subscription Redis dropped tells it.
      await publishing.append([event(channel, 'after')], RETENTION);
      await waitUntil(() => received.length === 2);
      expect(received).toEqual(['before', 'after']);
    } finally {
      feed.close();
    }
  });
});

/** The prefix of `backend`'s keys, from the stream key of a channel it published on. */
async function prefixOf(backend: Backend, channel: string): Promise<string> {
  const holder = await cluster.masterOf(slotOfChannel(channel));
  const keys = (await holder.redis.call('CLUSTER', 'GETKEYSINSLOT', slotOfChannel(channel), 100)) as string[];
  const mine = keys.filter((key) => key.endsWith(`{${channel}}`));
  if (mine.length !== 1) throw new Error(`expected one stream of ${channel}, found ${mine.join(', ')} (${backend.name})`);
  return mine[0]!.slice(0, -`{${channel}}`.length);
}
