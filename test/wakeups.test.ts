/**
 * Pub/sub wake-ups (upstash `subscribe` mode) come from anyone who can PUBLISH on the Redis:
 * another app, another database number (pub/sub ignores SELECT), an attacker. They must not be
 * able to inject an event or stall a reader, and two apps sharing a Redis never hear each other.
 */
import { createHash } from 'node:crypto';
import { Redis as IORedis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Bridge, createBridge } from '../src/bridge/index.js';
import { upstashBackend } from '../src/backends/upstash/index.js';
import { type Backend, type SSE, createSSE } from '../src/index.js';
import { useBridge } from './helpers/bridge.js';
import { REDIS_URL, uniquePrefix } from './helpers/redis.js';
import { type OwnRedis, startOwnRedis } from './helpers/redis-server.js';
import { SSEReader, streamRequest } from './helpers/sse.js';
import { untilResolved } from './helpers/wait.js';

const shared = useBridge('wakeups');

async function listen(sse: SSE, channel: string): Promise<SSEReader> {
  const reader = new SSEReader(await sse.handler(streamRequest(`?channel=${channel}`)));
  await reader.waitForReady();
  return reader;
}

/** The tagged pub/sub name readers listen on, as anyone may compute it from the app id. */
async function taggedName(redis: IORedis, prefix: string, channel: string): Promise<string> {
  const appId = (await redis.get(`${prefix}#id`)) ?? '';
  return `${prefix}!${createHash('sha1').update(appId).digest('hex').slice(0, 16)}:${channel}`;
}

describe('forged wake-ups', () => {
  it('inject nothing and stall nothing, on any name a reader might listen on', async () => {
    const prefix = shared.prefix();
    const sse = createSSE({ backend: upstashBackend({ url: shared.bridge.url, token: shared.token, prefix }) });
    const redis = new IORedis(REDIS_URL);
    try {
      const before = await sse.sendEvent('n', 'before', { channel: 'room' });
      const reader = await listen(sse, 'room');
      const pushed = shared.bridge.stats().pushedMessages;
      const future = `${Date.now() + 10 * 365 * 86_400_000}-0`;
      const events = JSON.stringify([['n', 'injected', 0]]);
      const tagged = await taggedName(redis, prefix, 'room');
      // The old name, the tagged one, and the tagged one with `#` (a name readers never use).
      const names = [`${prefix}room`, tagged, tagged.replace(`${prefix}!`, `${prefix}#`)];
      for (const name of names) {
        // The old format (`<prev> <ids> <events>`), and the signed one with a signature that is not.
        await redis.publish(name, `${before} ${future} ${events}`);
        await redis.publish(name, `${'0'.repeat(40)} ${before} ${future} ${events}`);
        await redis.publish(name, `${createHash('sha1').update('guess').digest('hex')} ${before} ${future} ${events}`);
      }
      // They reached the reader's subscription; then real events follow, and keep coming.
      const real = [await sse.sendEvent('n', 'real 1', { channel: 'room' }), await sse.sendEvent('n', 'real 2', { channel: 'room' })];
      await reader.waitForMessages(2);
      expect(shared.bridge.stats().pushedMessages - pushed).toBeGreaterThanOrEqual(3 + 2);
      expect(reader.messages.map((m) => [m.id, m.data])).toEqual([
        [real[0], 'real 1'],
        [real[1], 'real 2'],
      ]);
      await reader.cancel();
    } finally {
      redis.disconnect();
    }
  });

  it('a plain message on the tagged name is a reason to read: writers other than edge-sse can wake readers', async () => {
    const prefix = shared.prefix();
    const sse = createSSE({ backend: upstashBackend({ url: shared.bridge.url, token: shared.token, prefix }) });
    const redis = new IORedis(REDIS_URL);
    try {
      await sse.sendEvent('n', 'first', { channel: 'room' });
      const reader = await listen(sse, 'room');
      const id = await redis.xadd(`${prefix}{room}`, '*', 'type', 'n', 'data', 'written by another client');
      await redis.publish(await taggedName(redis, prefix, 'room'), 'hint');
      await reader.waitForMessages(1);
      expect(reader.messages.map((m) => [m.id, m.data])).toEqual([[id, 'written by another client']]);
      await reader.cancel();
    } finally {
      redis.disconnect();
    }
  });
});

describe('apps sharing one Redis', () => {
  let redis: OwnRedis;
  const bridges: Bridge[] = [];
  const backends: Backend[] = [];

  beforeAll(async () => {
    redis = await startOwnRedis();
  });
  afterAll(async () => {
    for (const backend of backends) await backend.close();
    for (const bridge of bridges) await bridge.close();
    await redis?.dispose();
  });

  /** An app: its own bridge (so its pushed messages are its own) over `redisUrl`, under `prefix`. */
  async function app(redisUrl: string, prefix: string) {
    const bridge = await createBridge({ token: 'apps-token', redis: redisUrl });
    bridges.push(bridge);
    const backend = upstashBackend({ url: bridge.url, token: 'apps-token', prefix });
    backends.push(backend);
    return { bridge, sse: createSSE({ backend }) };
  }
  type App = Awaited<ReturnType<typeof app>>;

  /**
   * A publishes, then B; once B's reader has B's event, a wake-up of A's that reached B's
   * subscription would have reached it first (Redis publishes in order). Resolves to what each
   * reader received.
   */
  async function wakeUps(a: App, b: App, channels: [string, string]) {
    const readers = [await listen(a.sse, channels[0]), await listen(b.sse, channels[1])];
    const pushed = [a.bridge.stats().pushedMessages, b.bridge.stats().pushedMessages];
    const fromA = await a.sse.sendEvent('n', 'from A', { channel: channels[0] });
    const fromB = await b.sse.sendEvent('n', 'from B', { channel: channels[1] });
    await Promise.all(
      readers.map((reader) => reader.waitFor(() => reader.messages.some((m) => m.id === fromA || m.id === fromB), 'its event')),
    );
    expect([a.bridge.stats().pushedMessages - pushed[0]!, b.bridge.stats().pushedMessages - pushed[1]!]).toEqual([1, 1]);
    for (const reader of readers) await reader.cancel();
    return { fromA, fromB, received: readers.map((reader) => reader.messages.map((m) => [m.id, m.data])) };
  }

  it('the same prefix in database 0 and database 1', async () => {
    const prefix = uniquePrefix('dbs');
    const { fromA, fromB, received } = await wakeUps(await app(`${redis.url}/0`, prefix), await app(`${redis.url}/1`, prefix), [
      'room',
      'room',
    ]);
    expect(received).toEqual([[[fromA, 'from A']], [[fromB, 'from B']]]);
  });

  it('prefixes where one starts with the other (sse: and sse:x:)', async () => {
    const base = uniquePrefix('prefixes');
    // `x:room` under `sse:` and `room` under `sse:x:` are one stream key (so each app reads the
    // other's events there); their wake-ups still keep apart.
    await wakeUps(await app(redis.url, `${base}sse:`), await app(redis.url, `${base}sse:x:`), ['x:room', 'room']);
    const { fromA, fromB, received } = await wakeUps(await app(redis.url, `${base}sse:`), await app(redis.url, `${base}sse:x:`), [
      'room',
      'room',
    ]);
    expect(received).toEqual([[[fromA, 'from A']], [[fromB, 'from B']]]);
  });
});

describe('the app id lost', () => {
  it('deleted: publishers that knew it restore it, and readers keep hearing', async () => {
    const prefix = shared.prefix();
    const reading = createSSE({ backend: upstashBackend({ url: shared.bridge.url, token: shared.token, prefix }) });
    const publishing = createSSE({ backend: upstashBackend({ url: shared.bridge.url, token: shared.token, prefix }) });
    const redis = new IORedis(REDIS_URL);
    try {
      await publishing.sendEvent('n', 'first');
      const appId = await redis.get(`${prefix}#id`);
      expect(appId).toMatch(/^[0-9a-f]{32}$/);
      const reader = await listen(reading, 'room');
      await redis.del(`${prefix}#id`);
      const id = await publishing.sendEvent('n', 'after the delete', { channel: 'room' });
      await reader.waitForMessages(1);
      expect(reader.messages.map((m) => [m.id, m.data])).toEqual([[id, 'after the delete']]);
      expect(await redis.get(`${prefix}#id`)).toBe(appId);
      await reader.cancel();
    } finally {
      redis.disconnect();
    }
  });

  it('Redis restarted empty and a new id made: a reader that knew the old one follows the new one', async () => {
    const own = await startOwnRedis();
    const bridge = await createBridge({ token: 'restart-token', redis: own.url });
    const reading = createSSE({ backend: upstashBackend({ url: bridge.url, token: 'restart-token' }) });
    try {
      await reading.sendEvent('n', 'before');
      const first = await listen(reading, 'room');
      await own.kill();
      await first.waitForEnd(8000); // Redis went away: the stream ends with a retry hint
      await own.start();
      // A publisher that never knew the old id publishes first, and so makes a new one.
      const fresh = createSSE({ backend: upstashBackend({ url: bridge.url, token: 'restart-token' }) });
      await untilResolved(() => fresh.sendEvent('n', 'made a new id', { channel: 'elsewhere' }));
      const reader = await listen(reading, 'room');
      const id = await fresh.sendEvent('n', 'after the restart', { channel: 'room' });
      await reader.waitForMessages(1);
      expect(reader.messages.map((m) => [m.id, m.data])).toEqual([[id, 'after the restart']]);
      await reader.cancel();
    } finally {
      await bridge.close();
      await own.dispose();
    }
  }, 30_000);
});
