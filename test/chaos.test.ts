/**
 * Chaos: many events, clients cut off at random, several publishers and subscribers, Redis and
 * the bridge restarted mid-run. The promise: every event sendEvent resolved arrives once, in order.
 */
import { describe, expect, it } from 'vitest';
import { createBridge } from '../src/bridge/index.js';
import { redisBackend } from '../src/backends/redis/index.js';
import { upstashBackend } from '../src/backends/upstash/index.js';
import { type Backend, type SSE, createSSE, memoryBackend } from '../src/index.js';
import { useBridge } from './helpers/bridge.js';
import { REDIS_URL } from './helpers/redis.js';
import { startOwnRedis } from './helpers/redis-server.js';
import { SSEReader, streamRequest } from './helpers/sse.js';
import { sleep } from './helpers/wait.js';

const shared = useBridge('chaos');

const BACKENDS: [string, () => Backend][] = [
  ['memory', () => memoryBackend()],
  ['upstash subscribe', () => shared.upstash()],
  ['upstash poll', () => shared.upstash({ mode: 'poll', pollIntervalMs: 100 })],
  ['redis', () => redisBackend({ url: REDIS_URL, prefix: shared.prefix() })],
];

/** A deterministic generator, so a failing run can be replayed. */
function random(seed: number): () => number {
  let state = seed;
  return () => {
    state = (state * 1_103_515_245 + 12_345) % 2 ** 31;
    return state / 2 ** 31;
  };
}

interface Received {
  id: string;
  data: string;
}

async function startListening(sse: SSE, query: string): Promise<string> {
  const reader = new SSEReader(await sse.handler(streamRequest(query)));
  await reader.waitForReady();
  await reader.cancel();
  return reader.lastId!;
}

describe.each(BACKENDS)('chaos: %s', (name, create) => {
  it('5,000 events to a client cut off ~50 times: none lost, none twice, in order', async () => {
    const backend = create();
    const sse = createSSE({ backend, maxLength: 20_000 });
    const next = random(name.length);
    const cursor = await startListening(sse, '?channel=chaos');
    const total = 5000;
    const publishing = (async () => {
      for (let sent = 0; sent < total; ) {
        const size = Math.min(total - sent, 1 + Math.floor(next() * 40));
        await sse.sendEvents(Array.from({ length: size }, (_, n) => ({ type: 'n', data: String(sent + n), channel: 'chaos' })));
        sent += size;
        await sleep(next() * 4);
      }
    })();
    const first = await resumeFrom(sse, cursor, total, next);
    await publishing;
    expect(first.cuts).toBeGreaterThanOrEqual(20);
    expect(first.received.map((event) => event.data)).toEqual(Array.from({ length: total }, (_, n) => String(n)));
    await backend.close();
  }, 60_000);

  it('several publishers and subscribers on several channels: each channel in the order Redis assigned', async () => {
    const backend = create();
    const sse = createSSE({ backend, maxLength: 20_000 });
    const channels = ['red', 'green', 'blue'];
    const perPublisher = 200;
    const subscriberQueries = ['?channel=red', '?channel=blue', '?channel=red&channel=green&channel=blue', '?channel=green&channel=blue'];
    const cursors = await Promise.all(subscriberQueries.map((query) => startListening(sse, query)));
    const publishers = [1, 2, 3].map(async (publisher) => {
      const next = random(publisher);
      for (let n = 0; n < perPublisher; n++) {
        const channel = channels[Math.floor(next() * channels.length)]!;
        await sse.sendEvent('n', `${publisher}:${n}`, { channel });
      }
    });
    const expectedTotal = (query: string) => (query.match(/channel=/g)!.length === 3 ? 3 * perPublisher : undefined);
    const subscribers = subscriberQueries.map((query, index) => {
      const next = random(100 + index);
      return listenWithCursor(sse, query, cursors[index]!, expectedTotal(query), next);
    });
    await Promise.all(publishers);
    const results = await Promise.all(subscribers);

    const [stored] = [
      await backend.read(
        channels.map((channel) => ({ channel, after: '0-0' })),
        10_000,
      ),
    ];
    const order = new Map(channels.map((channel, index) => [channel, stored[index]!.events.map((event) => event.data)]));
    results.forEach(({ byChannel }, index) => {
      const listened = subscriberQueries[index]!.match(/channel=(\w+)/g)!.map((part) => part.slice(8));
      for (const channel of listened) expect(byChannel.get(channel) ?? []).toEqual(order.get(channel));
    });
    expect([...order.values()].flat()).toHaveLength(3 * perPublisher);
    await backend.close();
  }, 60_000);
});

async function resumeFrom(sse: SSE, cursor: string, total: number, next: () => number) {
  const received: Received[] = [];
  let position = cursor;
  let cuts = 0;
  while (received.length < total && cuts < 2000) {
    const reader = new SSEReader(await sse.handler(streamRequest('?channel=chaos', { 'Last-Event-ID': position })));
    const want = 1 + Math.floor(next() * 200);
    await reader.waitFor(() => reader.messages.length >= want, `${want} events`, 50 + next() * 250).catch(() => undefined);
    await reader.cancel();
    cuts++;
    received.push(...reader.messages.map(({ id, data }) => ({ id: id!, data })));
    position = reader.lastId ?? position;
  }
  return { received, cuts };
}

/** A subscriber on several channels, cut off at random; events are sorted out per channel by their data. */
async function listenWithCursor(sse: SSE, query: string, cursor: string, total: number | undefined, next: () => number) {
  const byChannel = new Map<string, string[]>();
  const channels = query
    .match(/channel=(\w+)/g)!
    .map((part) => part.slice(8))
    .sort();
  let position = cursor;
  let quiet = 0;
  let count = 0;
  while (quiet < 3 && (total === undefined || count < total)) {
    const reader = new SSEReader(await sse.handler(streamRequest(query, { 'Last-Event-ID': position })));
    await sleep(30 + next() * 150);
    await reader.cancel();
    for (const event of reader.messages) {
      const positions = event.id!.split(',');
      const channel = channels.find((_name, index) => positions[index] !== position.replace(/;json$/, '').split(',')[index])!;
      byChannel.set(channel, [...(byChannel.get(channel) ?? []), event.data]);
      position = event.id!;
      count++;
    }
    quiet = reader.messages.length === 0 ? quiet + 1 : 0;
  }
  return { byChannel };
}

describe('chaos with faults', () => {
  it('Redis restarted mid-run (TCP): publishes that failed are reported; nothing resolved is lost', async () => {
    const redis = await startOwnRedis({ persistent: true });
    const backend = redisBackend({ url: redis.url });
    try {
      await runThroughFault(createSSE({ backend, backendRetryMs: 100 }), async () => {
        await redis.kill();
        await sleep(2500); // longer than a publish waits for the connection to come back (2 s)
        await redis.start();
      });
    } finally {
      await backend.close();
      await redis.dispose();
    }
  }, 60_000);

  it('Redis hung mid-run (SIGSTOP): publishes time out and are reported; nothing resolved is lost', async () => {
    const redis = await startOwnRedis();
    const bridge = await createBridge({ token: shared.token, redis: redis.url });
    const backends = [
      redisBackend({ url: redis.url, timeoutMs: 1000, blockMs: 1000 }),
      upstashBackend({ url: bridge.url, token: shared.token, prefix: 'hung-http:', timeoutMs: 1000 }),
    ];
    try {
      for (const backend of backends) {
        await runThroughFault(createSSE({ backend, backendRetryMs: 100 }), async () => {
          redis.pause();
          await sleep(2500); // longer than timeoutMs (1 s): publishes time out meanwhile
          redis.resume();
        });
      }
    } finally {
      redis.resume();
      await Promise.all(backends.map((backend) => backend.close()));
      await bridge.close();
      await redis.dispose();
    }
  }, 90_000);

  it('the bridge restarted mid-run (upstash): publishes that failed are reported; nothing resolved is lost', async () => {
    let own = await createBridge({ token: shared.token });
    const port = Number(new URL(own.url).port);
    const backend = upstashBackend({ url: own.url, token: shared.token, prefix: shared.prefix() });
    try {
      await runThroughFault(createSSE({ backend, backendRetryMs: 100 }), async () => {
        await own.close();
        await sleep(300); // an outage: publishes fail meanwhile
        own = await createBridge({ token: shared.token, port });
      });
    } finally {
      await own.close();
    }
  }, 60_000);
});

/** Publishes 1,000 events while `fault` happens; a flaky listener must get every resolved one, in order, once. */
async function runThroughFault(sse: SSE, fault: () => Promise<void>): Promise<void> {
  const cursor = await startListening(sse, '?channel=faulty');
  const resolved: string[] = [];
  let failures = 0;
  const publishing = (async () => {
    for (let n = 0; n < 1000; n++) {
      try {
        await sse.sendEvent('n', String(n), { channel: 'faulty' });
        resolved.push(String(n));
      } catch {
        failures++;
      }
      if (n === 300) void fault();
      await sleep(1);
    }
  })();
  const next = random(7);
  const received: string[] = [];
  let position = cursor;
  let published = false;
  void publishing.then(() => (published = true));
  for (let attempt = 0; attempt < 3000; attempt++) {
    const reader = new SSEReader(await sse.handler(streamRequest('?channel=faulty', { 'Last-Event-ID': position })));
    await sleep(50 + next() * 200);
    await reader.cancel();
    received.push(...reader.messages.map((event) => event.data));
    position = reader.lastId ?? position;
    if (published && received.length >= resolved.length && reader.messages.length === 0 && !reader.comments.includes('backend unavailable'))
      break;
  }
  await publishing;
  expect(failures).toBeGreaterThan(0);
  expect(new Set(received).size).toBe(received.length);
  const receivedSet = new Set(received);
  expect(resolved.filter((data) => !receivedSet.has(data))).toEqual([]);
  expect(received.map(Number)).toEqual([...received.map(Number)].sort((a, b) => a - b));
}
