import { connect } from 'node:net';
import { Redis as IORedis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createBridge, type Bridge } from '../../src/bridge/index.js';
import { type OwnRedis, startOwnRedis } from '../helpers/redis-server.js';
import type { SSEReader } from '../helpers/sse.js';
import { connectionsBesides, openStream, post, TOKEN, upstashClient } from './support.js';

/**
 * Subscriptions share the bridge's subscriber connection: one Redis subscription per channel or
 * pattern, however many HTTP listeners. On a redis-server of the test's own, so CLIENT LIST and
 * PUBSUB count only this bridge.
 */

let server: OwnRedis;
let direct: IORedis;
let bridge: Bridge;
const aborters: AbortController[] = [];

beforeAll(async () => {
  server = await startOwnRedis();
  direct = new IORedis(server.url);
  bridge = await createBridge({ token: TOKEN, redis: server.url, heartbeatMs: 60_000 });
});

afterEach(async () => {
  for (const aborter of aborters.splice(0)) aborter.abort();
  await expect.poll(() => bridge.stats().openSubscriptions).toBe(0);
});

afterAll(async () => {
  await bridge.close();
  direct.disconnect();
  await server.dispose();
});

function listen(path: string, base = bridge.url): Promise<SSEReader> {
  const aborter = new AbortController();
  aborters.push(aborter);
  return openStream(base, path, aborter.signal);
}

const confirmed = (reader: SSEReader) =>
  reader.waitFor(() => reader.events.some((event) => /^p?subscribe,/.test(event.data)), 'confirmation');
const dataOf = (reader: SSEReader) => reader.events.map((event) => event.data);

async function numsub(channels: string[]): Promise<number[]> {
  const reply = (await direct.pubsub('NUMSUB', ...channels)) as (string | number)[];
  return reply.filter((_, index) => index % 2 === 1).map(Number);
}

describe('multiplexed subscriptions', () => {
  it('holds 300 streams on 30 channels with a constant number of Redis connections, one subscription per channel', async () => {
    const idle = await connectionsBesides(direct);
    const channels = Array.from({ length: 30 }, (_, index) => `multiplex-${index}`);
    const readers = await Promise.all(channels.flatMap((channel) => Array.from({ length: 10 }, () => listen(`/subscribe/${channel}`))));
    await Promise.all(readers.map(confirmed));
    expect(await connectionsBesides(direct)).toBeLessThanOrEqual(Math.max(idle, 1) + 1);
    expect(await connectionsBesides(direct)).toBeLessThanOrEqual(2);
    expect(await numsub(channels)).toEqual(channels.map(() => 1));
    expect(bridge.stats().openSubscriptions).toBe(300);

    for (const channel of channels) await direct.publish(channel, `hello ${channel}`);
    await Promise.all(readers.map((reader) => reader.waitFor(() => reader.events.length >= 2, 'one message')));
    readers.forEach((reader, index) => {
      const channel = channels[Math.floor(index / 10)]!;
      expect(dataOf(reader)).toEqual([`subscribe,${channel},1`, `message,${channel},hello ${channel}`]);
    });
  });

  it('keeps the Redis subscription while a listener remains and drops it with the last one', async () => {
    const channel = 'refcount';
    const first = new AbortController();
    const leaving = await openStream(bridge.url, `/subscribe/${channel}`, first.signal);
    const staying = await listen(`/subscribe/${channel}`);
    await Promise.all([confirmed(leaving), confirmed(staying)]);
    first.abort();
    await expect.poll(() => bridge.stats().openSubscriptions).toBe(1);
    expect(await numsub([channel])).toEqual([1]);
    await direct.publish(channel, 'still delivered');
    await staying.waitFor(() => staying.events.length >= 2, 'the message');
    expect(dataOf(staying)[1]).toBe(`message,${channel},still delivered`);
    for (const aborter of aborters.splice(0)) aborter.abort();
    await expect.poll(() => numsub([channel])).toEqual([0]);
  });

  it('subscribes again at once after the last listener left', async () => {
    const channel = 'again';
    for (let round = 0; round < 5; round++) {
      const reader = await listen(`/subscribe/${channel}`);
      await confirmed(reader);
      await direct.publish(channel, `round ${round}`);
      await reader.waitFor(() => reader.events.length >= 2, `round ${round}`);
      for (const aborter of aborters.splice(0)) aborter.abort();
    }
    await expect.poll(() => numsub([channel])).toEqual([0]);
  });

  it('delivers channel and pattern messages through @upstash/redis while sharing the connection', async () => {
    const redis = upstashClient(bridge.url);
    const channels = redis.subscribe<unknown>(['shared:a']);
    const patterns = redis.psubscribe<unknown>(['shared:*']);
    await Promise.all([
      new Promise((resolve) => channels.on('subscribe', resolve)),
      new Promise((resolve) => patterns.on('psubscribe', resolve)),
    ]);
    const message = new Promise((resolve) => channels.on('message', resolve));
    const pmessage = new Promise((resolve) => patterns.on('pmessage', resolve));
    await redis.publish('shared:a', { n: 1 });
    expect(await message).toEqual({ channel: 'shared:a', message: { n: 1 } });
    expect(await pmessage).toEqual({ pattern: 'shared:*', channel: 'shared:a', message: { n: 1 } });
    await channels.unsubscribe();
    await patterns.unsubscribe();
  });

  it('cuts a listener that does not read, without holding up the others', async () => {
    const channel = 'slow-reader';
    const reader = await listen(`/subscribe/${channel}`);
    const stalled = connect({ host: '127.0.0.1', port: bridge.port });
    stalled.write(`POST /subscribe/${channel} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${TOKEN}\r\nContent-Length: 2\r\n\r\n[]`);
    stalled.pause(); // reads nothing from now on
    await expect.poll(() => numsub([channel]).then(([count]) => count)).toBe(1);
    await expect.poll(() => bridge.stats().openSubscriptions).toBe(2);
    const payload = 'x'.repeat(64 * 1024);
    for (let index = 0; index < 400; index++) await direct.publish(channel, payload);
    await expect.poll(() => bridge.stats().openSubscriptions, { timeout: 10_000 }).toBe(1);
    await reader.waitFor(() => reader.events.length === 401, 'every message', 15_000);
    stalled.destroy();
  });
});

describe('channel names from PUBLISH', () => {
  it('cannot forge a frame for a /psubscribe listener', async () => {
    const reader = await listen('/psubscribe/forge:*');
    await confirmed(reader);
    const channels = ['forge:x\n\ndata: forged', 'forge:\r\nevent: forged\r\ndata: y', 'forge:a,b', 'forge:100%', 'forge:plain'];
    for (const channel of channels) await direct.publish(channel, 'payload');
    await reader.waitFor(() => reader.events.length === 1 + channels.length, 'every message');
    expect(reader.events.every((event) => event.event === 'message')).toBe(true);
    const messages = dataOf(reader).slice(1);
    expect(messages.some((data) => /forged/.test(data) && !data.startsWith('pmessage,forge:*,'))).toBe(false);
    const received = messages.map((data) => {
      const [kind, pattern, channel, ...rest] = data.split(',');
      expect([kind, pattern, rest.join(',')]).toEqual(['pmessage', 'forge:*', 'payload']);
      return decodeURIComponent(channel!);
    });
    expect(received).toEqual(channels);
    expect(messages.at(-1)).toBe('pmessage,forge:*,forge:plain,payload');
  });

  it('refuses subscription names with line breaks', async () => {
    const raw = await post(bridge.url, `/psubscribe/${encodeURIComponent('a\n\ndata: x')}`, []);
    expect(raw.status).toBe(400);
    expect(raw.json.error).toMatch(/line breaks/);
  });
});

describe('the subscription cap', () => {
  it('answers 503 with a reason beyond maxSubscriptions, and serves again once one left', async () => {
    const capped = await createBridge({ token: TOKEN, redis: server.url, maxSubscriptions: 2 });
    try {
      const first = new AbortController();
      const readers = [await openStream(capped.url, '/subscribe/cap-a', first.signal), await listen('/subscribe/cap-b', capped.url)];
      await Promise.all(readers.map(confirmed));
      const refused = await post(capped.url, '/subscribe/cap-c', []);
      expect(refused.status).toBe(503);
      expect(refused.json.error).toMatch(/2 subscriptions are open, the most this bridge serves \(maxSubscriptions, --max-subscriptions\)/);
      first.abort();
      await expect.poll(() => capped.stats().openSubscriptions).toBe(1);
      const admitted = await listen('/subscribe/cap-c', capped.url);
      await confirmed(admitted);
    } finally {
      for (const aborter of aborters.splice(0)) aborter.abort();
      await capped.close();
    }
  });
});
