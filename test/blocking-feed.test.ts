/**
 * The TCP backend's one `XREAD BLOCK` over every followed channel: a channel followed while that
 * read is being set up (connecting, reconnecting) must be read at once, never only when another
 * channel's block times out.
 */
import { Redis as IORedis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { redisBackend } from '../src/backends/redis/index.js';
import { type Backend, type SSE, createSSE } from '../src/index.js';
import type { StoredEvent } from '../src/backends/contract.js';
import { REDIS_URL, deleteKeysWithPrefix, uniquePrefix } from './helpers/redis.js';
import { startOwnRedis } from './helpers/redis-server.js';
import { SSEReader, streamRequest } from './helpers/sse.js';
import { waitUntil } from './helpers/wait.js';

/** Long enough that waiting for it fails the test (its timeout is 20 s); events must come far sooner. */
const BLOCK_MS = 20_000;
const WELL_BEFORE_BLOCK_MS = 8000;

const prefixes: string[] = [];
const backends: Backend[] = [];

function freshBackend(options: { blockMs?: number; timeoutMs?: number } = {}): Backend {
  const prefix = uniquePrefix('blocking-feed');
  prefixes.push(prefix);
  const backend = redisBackend({ url: REDIS_URL, prefix, blockMs: BLOCK_MS, ...options });
  backends.push(backend);
  return backend;
}

afterAll(async () => {
  await Promise.all(backends.map((backend) => backend.close()));
  const redis = new IORedis(REDIS_URL);
  for (const prefix of prefixes) await deleteKeysWithPrefix(redis, prefix);
  redis.disconnect();
});

async function openReady(sse: SSE, query: string): Promise<SSEReader> {
  const reader = new SSEReader(await sse.handler(streamRequest(query)));
  await reader.waitForReady(WELL_BEFORE_BLOCK_MS);
  return reader;
}

describe('redisBackend: channels followed while the blocking read is set up', () => {
  it("a process's first stream, on two channels, gets events on both long before the block times out", async () => {
    const sse = createSSE({ backend: freshBackend() });
    const reader = await openReady(sse, '?channel=a&channel=b');
    // Each channel on its own: news on one must not be what wakes the read for the other.
    await sse.sendEvent('n', 'on b', { channel: 'b' });
    await reader.waitForMessages(1, WELL_BEFORE_BLOCK_MS);
    await sse.sendEvent('n', 'on a', { channel: 'a' });
    await reader.waitForMessages(2, WELL_BEFORE_BLOCK_MS);
    expect(reader.messages.map((m) => m.data)).toEqual(['on b', 'on a']);
    await reader.cancel();
  });

  it('two streams opened at once on different channels both go live at once', async () => {
    const sse = createSSE({ backend: freshBackend() });
    const [first, second] = await Promise.all([openReady(sse, '?channel=left'), openReady(sse, '?channel=right')]);
    await sse.sendEvent('n', 'right', { channel: 'right' });
    await second.waitForMessages(1, WELL_BEFORE_BLOCK_MS);
    await sse.sendEvent('n', 'left', { channel: 'left' });
    await first.waitForMessages(1, WELL_BEFORE_BLOCK_MS);
    expect([first.messages[0]!.data, second.messages[0]!.data]).toEqual(['left', 'right']);
    await Promise.all([first.cancel(), second.cancel()]);
  });

  it('after the blocking connection is lost, channels followed while it is re-made are all read', async () => {
    const own = await startOwnRedis();
    const backend = redisBackend({ url: own.url, blockMs: BLOCK_MS });
    const received: string[] = [];
    const feed = backend.createFeed({
      onFollowing() {},
      onEvents: (channel, events: StoredEvent[]) => received.push(...events.map((event) => `${channel}:${event.data}`)),
      onError: (channel) => received.push(`${channel}:error`),
    });
    const retention = { maxLength: 100, ttlSeconds: 60 };
    const event = (channel: string, data: string) => ({ channel, type: 'n', data, json: false });
    const admin = new IORedis(own.url);
    try {
      feed.follow('first', '0-0');
      const [firstId] = await backend.append([event('first', '1')], retention);
      await waitUntil(() => received.includes('first:1'), WELL_BEFORE_BLOCK_MS);
      // Only this test's clients are on this Redis: drop them all, the blocking one included.
      await admin.call('CLIENT', 'KILL', 'TYPE', 'normal', 'SKIPME', 'yes');
      await waitUntil(() => received.includes('first:error'), WELL_BEFORE_BLOCK_MS);
      // As a hub does when streams come back: both channels at once, from where they stood.
      feed.follow('first', firstId!);
      feed.follow('second', '0-0');
      await waitUntil(() => backend.stats().subscriptions === 1, WELL_BEFORE_BLOCK_MS); // blocked again
      await backend.append([event('second', '2')], retention);
      await waitUntil(() => received.includes('second:2'), WELL_BEFORE_BLOCK_MS);
    } finally {
      feed.close();
      admin.disconnect();
      await backend.close();
      await own.dispose();
    }
  });
});
