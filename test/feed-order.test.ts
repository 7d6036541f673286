/**
 * A connection on several channels gets live events in id order across channels, whichever feed
 * reads them: poll mode and the TCP backend read all channels with one XREAD, whose reply lists
 * channel after channel.
 */
import { Redis as IORedis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { redisBackend } from '../src/backends/redis/index.js';
import { type Backend, createSSE } from '../src/index.js';
import { useBridge } from './helpers/bridge.js';
import { REDIS_URL } from './helpers/redis.js';
import { SSEReader, streamRequest } from './helpers/sse.js';

const shared = useBridge('feed-order');
const redis = new IORedis(REDIS_URL);
const backends: Backend[] = [];

afterAll(async () => {
  await Promise.all(backends.map((backend) => backend.close()));
  redis.disconnect();
});

const FEEDS: [string, (prefix: string) => Backend][] = [
  ['upstash poll', (prefix) => shared.upstash({ mode: 'poll', pollIntervalMs: 200, prefix })],
  ['redis (TCP)', (prefix) => redisBackend({ url: REDIS_URL, prefix })],
];

/**
 * Stores events with the given ids atomically (MULTI), so one read finds them all: as when
 * several publishers are quick, or a feed was busy. Each event's data is its id's milliseconds.
 */
async function storeAtOnce(prefix: string, events: [channel: string, ms: number][]): Promise<void> {
  const multi = redis.multi();
  for (const [channel, ms] of events) multi.xadd(`${prefix}{${channel}}`, `${ms}-1`, 'type', 'n', 'data', String(ms));
  for (const channel of new Set(events.map(([channel]) => channel))) multi.expire(`${prefix}{${channel}}`, 60);
  const results = await multi.exec();
  for (const [error] of results ?? []) if (error) throw error;
}

describe.each(FEEDS)('order across channels, live: %s', (_, create) => {
  async function listen(query: string): Promise<{ prefix: string; reader: SSEReader }> {
    const prefix = shared.prefix();
    const backend = create(prefix);
    backends.push(backend);
    const reader = new SSEReader(await createSSE({ backend }).handler(streamRequest(query)));
    await reader.waitForReady();
    return { prefix, reader };
  }

  it('events stored alternately on two channels arrive in id order', async () => {
    const { prefix, reader } = await listen('?channel=a&channel=b');
    const events = Array.from({ length: 40 }, (_, n): [string, number] => [n % 2 === 0 ? 'a' : 'b', 1000 + n]);
    await storeAtOnce(prefix, events);
    await reader.waitForMessages(events.length);
    expect(reader.messages.map((m) => Number(m.data))).toEqual(events.map(([, ms]) => ms));
    await reader.cancel();
  });

  it('a channel that filled its batch is not overtaken by a later event on another', async () => {
    // One read gets a's first 100 events (its batch) and b's one event, which is later than all
    // of a's 150: delivering it before a's remaining 50 would put it out of order.
    const { prefix, reader } = await listen('?channel=a&channel=b');
    const events: [string, number][] = Array.from({ length: 150 }, (_, n) => ['a', 1000 + n]);
    events.push(['b', 5000]);
    await storeAtOnce(prefix, events);
    await reader.waitForMessages(events.length);
    expect(reader.messages.map((m) => Number(m.data))).toEqual(events.map(([, ms]) => ms));
    await reader.cancel();
  });
});
