/**
 * Publishing calls made while one is in flight go together in the next request, in call order
 * (auto-pipelining, on the Redis backends): each call is still its own script run — stored all or
 * nothing, with its own idempotency key — and fails or is abandoned alone.
 */
import { Redis as IORedis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { redisBackend } from '../src/backends/redis/index.js';
import { upstashBackend } from '../src/backends/upstash/index.js';
import { createBridge } from '../src/bridge/index.js';
import type { NewEvent } from '../src/backends/index.js';
import { type Backend, sendEvent } from '../src/index.js';
import { useBridge } from './helpers/bridge.js';
import { REDIS_URL, deleteKeysWithPrefix, uniquePrefix } from './helpers/redis.js';
import { startOwnRedis } from './helpers/redis-server.js';

const shared = useBridge('pipelining');
const RETENTION = { maxLength: 1000, ttlSeconds: 600 };
const tcpPrefixes: string[] = [];
const tcpBackends: Backend[] = [];

afterAll(async () => {
  for (const backend of tcpBackends) await backend.close();
  const redis = new IORedis(REDIS_URL);
  for (const prefix of tcpPrefixes) await deleteKeysWithPrefix(redis, prefix);
  redis.disconnect();
});

const event = (channel: string, data: string): NewEvent => ({ channel, type: 't', data, json: false });

const subjects: { name: string; make(): { backend: Backend; prefix: string } }[] = [
  {
    name: 'upstash through the bridge',
    make() {
      const prefix = shared.prefix();
      return { backend: upstashBackend({ url: shared.bridge.url, token: shared.token, prefix }), prefix };
    },
  },
  {
    name: 'redis (TCP)',
    make() {
      const prefix = uniquePrefix('pipelining-tcp');
      const backend = redisBackend({ url: REDIS_URL, prefix });
      tcpPrefixes.push(prefix);
      tcpBackends.push(backend);
      return { backend, prefix };
    },
  },
];

for (const subject of subjects) {
  describe(`auto-pipelining: ${subject.name}`, () => {
    it('sends 50 calls made at once in 2 requests: the first alone, the rest together once it is answered', async () => {
      const { backend } = subject.make();
      await backend.tail(['warm'], 0); // connected, so the count is the calls' own
      const before = backend.stats().requests;
      const ids = await Promise.all(Array.from({ length: 50 }, (_, n) => sendEvent('t', `${n}`, { backend, channel: 'burst' })));
      expect(backend.stats().requests - before).toBe(2);
      const [read] = await backend.read([{ channel: 'burst', after: '0-0' }], 100);
      expect(read!.events.map((e) => e.data)).toEqual(ids.map((_, n) => `${n}`));
      expect(read!.events.map((e) => e.id)).toEqual(ids);
    });

    it('fails one call alone when Redis refuses its script: the others in the request are stored', async () => {
      const { backend, prefix } = subject.make();
      const redis = new IORedis(REDIS_URL);
      await redis.set(`${prefix}{not-a-stream}`, 'x');
      redis.disconnect();
      const first = backend.append([event('ok', 'first')], RETENTION);
      const results = await Promise.allSettled([
        backend.append([event('ok', 'a')], RETENTION),
        backend.append([event('ok', 'b'), event('not-a-stream', 'refused')], RETENTION),
        backend.append([event('ok', 'c')], RETENTION),
      ]);
      await first;
      expect(results.map((result) => result.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
      expect(String((results[1] as PromiseRejectedResult).reason)).toMatch(/not-a-stream.*not a stream: nothing was published/);
      const [read] = await backend.read([{ channel: 'ok', after: '0-0' }], 100);
      expect(read!.events.map((e) => e.data)).toEqual(['first', 'a', 'c']);
    });

    it('drops a call whose signal aborts while it waits: it rejects and is never sent', async () => {
      const { backend } = subject.make();
      const inFlight = backend.append([event('abort', 'sent')], RETENTION);
      const aborter = new AbortController();
      const waiting = backend.append([event('abort', 'abandoned')], RETENTION, { signal: aborter.signal });
      const after = backend.append([event('abort', 'after')], RETENTION);
      aborter.abort();
      await expect(waiting).rejects.toMatchObject({ name: 'AbortError' });
      await Promise.all([inFlight, after]);
      const [read] = await backend.read([{ channel: 'abort', after: '0-0' }], 100);
      expect(read!.events.map((e) => e.data)).toEqual(['sent', 'after']);
    });

    it('keeps idempotency keys per call inside one request', async () => {
      const { backend } = subject.make();
      const first = backend.append([event('idem', 'first')], RETENTION);
      let repeats = 0;
      const idempotency = { key: `pipelined-${Date.now()}`, ttlSeconds: 60, onRepeat: () => repeats++ };
      const [once, again, plain] = await Promise.all([
        backend.append([event('idem', 'keyed')], RETENTION, { idempotency }),
        backend.append([event('idem', 'keyed')], RETENTION, { idempotency }),
        backend.append([event('idem', 'plain')], RETENTION),
      ]);
      await first;
      expect(again).toEqual(once);
      expect(repeats).toBe(1);
      const [read] = await backend.read([{ channel: 'idem', after: '0-0' }], 100);
      expect(read!.events.map((e) => e.data)).toEqual(['first', 'keyed', 'plain']);
      expect(read!.events[1]!.id).toBe(once![0]);
      expect(read!.events[2]!.id).toBe(plain![0]);
    });

    it('splits what waits into requests of bounded size (each under the bridge body limit)', async () => {
      const { backend } = subject.make();
      const big = 'x'.repeat(20_000);
      const before = backend.stats().requests;
      // 24 calls of 3 × 20 KB: one request of all the waiting ones would be ~1.4 MB.
      const calls = Array.from({ length: 24 }, (_, n) =>
        backend.append([event('big', `${n}:${big}`), event('big', big), event('big', big)], RETENTION),
      );
      await Promise.all(calls);
      const requests = backend.stats().requests - before;
      expect(requests).toBeGreaterThan(2);
      expect(requests).toBeLessThan(24);
      const [read] = await backend.read([{ channel: 'big', after: '0-0' }], 100);
      expect(read!.events.filter((e) => /^\d+:/.test(e.data)).map((e) => e.data.split(':')[0])).toEqual(calls.map((_, n) => `${n}`));
    });
  });
}

it('loads the script once for a request of several calls after Redis forgot it (NOSCRIPT)', async () => {
  // SCRIPT FLUSH empties the cache for every client of a Redis: on a server of this test's own.
  const own = await startOwnRedis();
  const bridge = await createBridge({ token: 'own', redis: own.url });
  const redis = new IORedis(own.url);
  try {
    const backend = upstashBackend({ url: bridge.url, token: 'own' });
    await backend.append([event('n', 'warm')], RETENTION);
    await redis.script('FLUSH');
    const first = backend.append([event('n', 'first')], RETENTION);
    const rest = Array.from({ length: 5 }, (_, n) => backend.append([event('n', `${n}`)], RETENTION));
    await Promise.all([first, ...rest]);
    expect(await redis.xrange('sse:{n}', '-', '+').then((entries) => entries.map(([, fields]) => fields[3]))).toEqual([
      'warm',
      'first',
      '0',
      '1',
      '2',
      '3',
      '4',
    ]);
  } finally {
    redis.disconnect();
    await bridge.close();
    await own.dispose();
  }
});
