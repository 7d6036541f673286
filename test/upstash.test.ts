import { createHash } from 'node:crypto';
import { Redis as UpstashRedis } from '@upstash/redis';
import { Redis as IORedis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import { redisBackend } from '../src/backends/redis/index.js';
import { upstashBackend } from '../src/backends/upstash/index.js';
import { createBridge } from '../src/bridge/index.js';
import { type CloseReason, EdgeSSEError, createSSE } from '../src/index.js';
import { useBridge } from './helpers/bridge.js';
import { REDIS_URL } from './helpers/redis.js';
import { startOwnRedis } from './helpers/redis-server.js';
import { SSEReader, streamRequest } from './helpers/sse.js';
import { sleep, waitUntil } from './helpers/wait.js';

const shared = useBridge('upstash');
const TOKEN = shared.token;
const freshPrefix = () => shared.prefix();
const ready = (reader: SSEReader) => reader.waitForReady();

describe('upstashBackend configuration', () => {
  it('names the variables to set when nothing is configured, at the first request (builds need no secrets)', async () => {
    const backend = upstashBackend({ env: {} });
    const refused = await backend
      .append([{ channel: 'a', type: 't', data: '', json: false }], { maxLength: 1, ttlSeconds: 1 })
      .catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(EdgeSSEError);
    expect((refused as Error).message).toMatch(
      /UPSTASH_REDIS_REST_URL and UPSTASH_REDIS_REST_TOKEN \(or KV_REST_API_URL and KV_REST_API_TOKEN\)/,
    );
  });

  it('reads Upstash and Vercel KV variable names', async () => {
    const fetched: string[] = [];
    const fetch = (async (url: string) => {
      fetched.push(url);
      return Response.json([{ result: [] }]);
    }) as unknown as typeof globalThis.fetch;
    for (const env of [
      { UPSTASH_REDIS_REST_URL: 'https://a.upstash.io', UPSTASH_REDIS_REST_TOKEN: 't' },
      { KV_REST_API_URL: 'https://b.upstash.io', KV_REST_API_TOKEN: 't' },
    ]) {
      await upstashBackend({ env, fetch }).tail(['x'], 0);
    }
    expect(fetched).toEqual(['https://a.upstash.io/pipeline', 'https://b.upstash.io/pipeline']);
  });

  it('refuses a bad URL, mode, prefix or client', async () => {
    await expect(upstashBackend({ url: 'redis://x', token: 't' }).tail(['x'], 0)).rejects.toThrow(/must start with https:\/\//);
    expect(() => upstashBackend({ url: 'https://x', token: 't', mode: 'push' as never })).toThrow(/'subscribe' or 'poll'/);
    expect(() => upstashBackend({ url: 'https://x', token: 't', prefix: '' })).toThrow(/prefix must be 1–64 characters/);
    await expect(upstashBackend({ redis: {} }).tail(['x'], 0)).rejects.toThrow(/must be an @upstash\/redis Redis client/);
  });

  it('takes the URL and token from an @upstash/redis client', async () => {
    const redis = new UpstashRedis({ url: shared.bridge.url, token: TOKEN });
    const sse = createSSE({ backend: upstashBackend({ redis, prefix: freshPrefix() }) });
    await expect(sse.sendEvent('x', 'via client')).resolves.toMatch(/^\d+-\d+$/);
  });

  it('rejects publishing with a typed error when the token is wrong', async () => {
    const sse = createSSE({ backend: upstashBackend({ url: shared.bridge.url, token: 'wrong', prefix: freshPrefix() }) });
    await expect(sse.sendEvent('x', 1)).rejects.toThrow(/refused the token \(401\)/);
  });
});

describe('upstashBackend on the wire', () => {
  it('publishes with ONE HTTP request per sendEvent and per sendEvents batch', async () => {
    const sse = createSSE({ backend: upstashBackend({ url: shared.bridge.url, token: TOKEN, prefix: freshPrefix() }) });
    const before = shared.bridge.stats().requests;
    await sse.sendEvent('one', { n: 1 }, { channel: 'a' });
    expect(shared.bridge.stats().requests - before).toBe(1);
    await sse.sendEvents([
      { type: 'a', data: 1, channel: 'a' },
      { type: 'b', data: 2, channel: 'b' },
      { type: 'c', data: 3, channel: 'c' },
    ]);
    expect(shared.bridge.stats().requests - before).toBe(2);
  });

  it('stores plain Redis Streams that @upstash/redis reads, and streams what it writes', async () => {
    const prefix = freshPrefix();
    const sse = createSSE({ backend: upstashBackend({ url: shared.bridge.url, token: TOKEN, prefix }) });
    const redis = new UpstashRedis({ url: shared.bridge.url, token: TOKEN });
    const id = await sse.sendEvent('greeting', { hello: 'wörld' }, { channel: 'interop' });
    const entries = await redis.xrange(`${prefix}{interop}`, '-', '+');
    // @upstash/redis deserialises JSON-looking values by default.
    expect(entries).toEqual({ [id]: { type: 'greeting', data: { hello: 'wörld' }, json: 1 } });

    const reader = new SSEReader(await sse.handler(streamRequest('?channel=interop', { 'Last-Event-ID': id })));
    const written = await redis.xadd(`${prefix}{interop}`, '*', { type: 'note', data: 'from @upstash/redis' });
    // Readers in subscribe mode wake on any PUBLISH to `<prefix>!<tag>:<channel>`, the tag being
    // the first 16 hex digits of the SHA-1 of the app id at `<prefix>#id`.
    const appId = await redis.get<string>(`${prefix}#id`);
    const tag = createHash('sha1').update(String(appId)).digest('hex').slice(0, 16);
    await redis.publish(`${prefix}!${tag}:interop`, 'wake up');
    await reader.waitForMessages(1);
    expect(reader.messages[0]).toEqual({ id: written, event: 'note', data: 'from @upstash/redis' });
    await reader.cancel();
  });

  it('serves the same channels as the TCP backend: same keys, same ids', async () => {
    const prefix = freshPrefix();
    const overHttp = createSSE({ backend: upstashBackend({ url: shared.bridge.url, token: TOKEN, prefix }) });
    const overTcp = createSSE({ backend: redisBackend({ url: REDIS_URL, prefix }) });
    try {
      const httpReader = new SSEReader(await overHttp.handler(streamRequest('?channel=both')));
      const tcpReader = new SSEReader(await overTcp.handler(streamRequest('?channel=both')));
      await Promise.all([ready(httpReader), ready(tcpReader)]);
      const first = await overTcp.sendEvent('n', 'from tcp', { channel: 'both' });
      const second = await overHttp.sendEvent('n', 'from http', { channel: 'both' });
      await Promise.all([httpReader.waitForMessages(2), tcpReader.waitForMessages(2)]);
      for (const reader of [httpReader, tcpReader]) {
        expect(reader.messages.map((m) => [m.id, m.data])).toEqual([
          [first, 'from tcp'],
          [second, 'from http'],
        ]);
        await reader.cancel();
      }
    } finally {
      await overTcp.backend.close();
    }
  });
});

describe('upstashBackend cost', () => {
  it('subscribe mode delivers from the wake-up itself: one request per publish, none to read', async () => {
    const sse = createSSE({ backend: upstashBackend({ url: shared.bridge.url, token: TOKEN, prefix: freshPrefix() }) });
    const connecting = shared.bridge.stats().requests;
    const reader = new SSEReader(await sse.handler(streamRequest('?channel=pushed')));
    await ready(reader);
    // The first channel a backend follows costs 3: the app id (once per backend), the subscription
    // and, once it is confirmed, the channel's head (with a check of the app id, same request).
    expect(shared.bridge.stats().requests - connecting).toBe(3);
    const next = shared.bridge.stats().requests;
    const other = new SSEReader(await sse.handler(streamRequest('?channel=pushed-too')));
    await ready(other);
    expect(shared.bridge.stats().requests - next).toBe(2);
    await other.cancel();
    const before = shared.bridge.stats().requests;
    for (let n = 0; n < 10; n++) await sse.sendEvent('n', { n, text: 'line\nbreak' }, { channel: 'pushed' });
    await reader.waitForMessages(10);
    expect(reader.messages.map((m) => JSON.parse(m.data).n)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(shared.bridge.stats().requests - before).toBe(10);
    await reader.cancel();
  });

  it('a batch too large to ride along wakes readers to read it, in order', async () => {
    const sse = createSSE({ backend: upstashBackend({ url: shared.bridge.url, token: TOKEN, prefix: freshPrefix() }) });
    const reader = new SSEReader(await sse.handler(streamRequest('?channel=big')));
    await ready(reader);
    const big = Array.from({ length: 20 }, (_, n) => ({ type: 'n', data: `${n}:${'x'.repeat(4000)}`, channel: 'big' }));
    await sse.sendEvents(big);
    await sse.sendEvent('n', 'after', { channel: 'big' });
    await reader.waitForMessages(21);
    expect(reader.messages.map((m) => m.data.split(':')[0])).toEqual([...big.map((_, n) => String(n)), 'after']);
    await reader.cancel();
  });

  it('publishes after Redis forgot the script (NOSCRIPT → EVAL, one extra request)', async () => {
    // SCRIPT FLUSH empties the cache for every client of a Redis: on a server of this test's own.
    const own = await startOwnRedis();
    const bridge = await createBridge({ token: TOKEN, redis: own.url });
    const redis = new IORedis(own.url);
    try {
      const sse = createSSE({ backend: upstashBackend({ url: bridge.url, token: TOKEN }) });
      await sse.sendEvent('n', 'warm');
      await redis.script('FLUSH');
      const before = bridge.stats().requests;
      await expect(sse.sendEvent('n', 'after flush')).resolves.toMatch(/^\d+-\d+$/);
      expect(bridge.stats().requests - before).toBe(2);
      await sse.sendEvent('n', 'cached again');
      expect(bridge.stats().requests - before).toBe(3);
      expect(await redis.xlen('sse:{sse}')).toBe(3);
    } finally {
      redis.disconnect();
      await bridge.close();
      await own.dispose();
    }
  });

  it('ends the stream with a retry hint when the head cannot be read once subscribed', async () => {
    // The bridge and Redis are real; only the answer to the head's XREVRANGE is replaced by a failure.
    const headFails: typeof fetch = async (input, init) =>
      String(init?.body ?? '').includes('XREVRANGE')
        ? new Response(JSON.stringify({ error: 'ERR injected' }), { status: 503 })
        : fetch(input, init);
    const backend = upstashBackend({ url: shared.bridge.url, token: TOKEN, prefix: freshPrefix(), fetch: headFails });
    const sse = createSSE({ backend, backendRetryMs: 2000 });
    await waitUntil(() => shared.bridge.stats().openSubscriptions === 0); // earlier tests' streams are gone
    const reader = new SSEReader(await sse.handler(streamRequest('?channel=headless')));
    await reader.waitForEnd();
    expect(reader.retries.at(-1)).toBeGreaterThanOrEqual(2000);
    expect(reader.comments).toContain('backend unavailable');
    await waitUntil(() => shared.bridge.stats().openSubscriptions === 0);
    expect(sse.handler.stats()).toMatchObject({ openStreams: 0, readers: 0, timers: 0 });
  });

  for (const mode of ['subscribe', 'poll'] as const) {
    it(`shares one reader per channel between connections (${mode})`, async () => {
      const backend = upstashBackend({ url: shared.bridge.url, token: TOKEN, prefix: freshPrefix(), mode, pollIntervalMs: 400 });
      const sse = createSSE({ backend });
      await waitUntil(() => shared.bridge.stats().openSubscriptions === 0); // earlier tests' streams are gone
      const { subscriptions, openSubscriptions } = shared.bridge.stats();
      const readers = await Promise.all(
        Array.from({ length: 20 }, async () => new SSEReader(await sse.handler(streamRequest('?channel=shared')))),
      );
      await Promise.all(readers.map(ready));
      // The claim is a rate at a real bridge (one poll per interval for all, none while subscribed):
      // it takes real time. The joins' own requests are over after the first 1.5 s.
      await sleep(1500);
      const idleStart = shared.bridge.stats().requests;
      await sleep(2000);
      const idleRequests = shared.bridge.stats().requests - idleStart;
      if (mode === 'subscribe') {
        expect(shared.bridge.stats().subscriptions - subscriptions).toBe(1);
        expect(shared.bridge.stats().openSubscriptions - openSubscriptions).toBe(1);
        expect(idleRequests).toBe(0);
      } else {
        // One XREAD per 400 ms for all 20 connections (5 in 2 s), not one each (100).
        expect(idleRequests).toBeGreaterThanOrEqual(1);
        expect(idleRequests).toBeLessThanOrEqual(8);
      }
      await sse.sendEvent('n', 'to all', { channel: 'shared' });
      await Promise.all(readers.map((reader) => reader.waitForMessages(1)));
      await Promise.all(readers.map((reader) => reader.cancel()));
      await waitUntil(() => shared.bridge.stats().openSubscriptions === openSubscriptions);
    });
  }

  it('ends a stream that spent maxRequests; the client resumes with nothing lost', async () => {
    const reasons: CloseReason[] = [];
    const backend = upstashBackend({ url: shared.bridge.url, token: TOKEN, prefix: freshPrefix(), mode: 'poll', pollIntervalMs: 100 });
    const sse = createSSE({ backend, shareReaders: false, maxRequests: 5, onDisconnect: (_, reason) => reasons.push(reason) });
    const received: string[] = [];
    let cursor: string | undefined;
    const first = new SSEReader(await sse.handler(streamRequest('?channel=budget')));
    await ready(first);
    const publishing = (async () => {
      for (let n = 0; n < 10; n++) {
        await sse.sendEvent('n', String(n), { channel: 'budget' });
        await sleep(60); // a publisher at its own pace: the events spread over several streams
      }
    })();
    await first.waitForEnd();
    received.push(...first.messages.map((m) => m.data));
    cursor = first.lastId;
    for (let attempt = 0; attempt < 50 && received.length < 10; attempt++) {
      const reader = new SSEReader(await sse.handler(streamRequest('?channel=budget', { 'Last-Event-ID': cursor! })));
      await reader.waitForEnd();
      received.push(...reader.messages.map((m) => m.data));
      cursor = reader.lastId ?? cursor;
    }
    await publishing;
    expect(received).toEqual(['0', '1', '2', '3', '4', '5', '6', '7', '8', '9']);
    expect(reasons.length).toBeGreaterThan(0);
    expect(reasons.every((reason) => reason === 'budget')).toBe(true);
    expect(first.comments).toContain('request budget spent');
  });

  it('stops every request of a stream that reads for itself once its client leaves', async () => {
    for (const mode of ['subscribe', 'poll'] as const) {
      const backend = upstashBackend({ url: shared.bridge.url, token: TOKEN, prefix: freshPrefix(), mode, pollIntervalMs: 100 });
      const sse = createSSE({ backend, shareReaders: false });
      const openBefore = shared.bridge.stats().openSubscriptions;
      const abort = new AbortController();
      const reader = new SSEReader(await sse.handler(streamRequest('?channel=leave', {}, abort.signal)));
      await ready(reader);
      // Reading for itself: its subscription open at the bridge, or its polls going out.
      const requests = shared.bridge.stats().requests;
      if (mode === 'subscribe') await waitUntil(() => shared.bridge.stats().openSubscriptions === openBefore + 1);
      else await waitUntil(() => shared.bridge.stats().requests >= requests + 2);
      abort.abort();
      await reader.waitForEnd();
      await waitUntil(() => shared.bridge.stats().openSubscriptions === openBefore);
      const after = shared.bridge.stats().requests;
      // Nothing announces a request that is not made: five poll intervals must pass with none.
      await sleep(500);
      expect(shared.bridge.stats().requests).toBe(after);
    }
  });
});
