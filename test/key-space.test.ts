/**
 * Names never address other keys, channels or apps: two apps on one Redis, one under prefix `P`
 * and one under `Px:`, hold channels `x:room` and `room` — which in a layout of `<prefix><channel>`
 * are the same key. Each must see only its own events, live and from history, through the stream
 * handler, on both Redis backends (they share the layout).
 */
import { Redis as IORedis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { redisBackend } from '../src/backends/redis/index.js';
import { upstashBackend } from '../src/backends/upstash/index.js';
import { type Backend, ValidationError, createSSE } from '../src/index.js';
import { useBridge } from './helpers/bridge.js';
import { REDIS_URL, deleteKeysWithPrefix, uniquePrefix } from './helpers/redis.js';
import { SSEReader, streamRequest } from './helpers/sse.js';

const bridged = useBridge('key-space');
const prefixes: string[] = [];
afterAll(async () => {
  const redis = new IORedis(REDIS_URL);
  for (const prefix of prefixes) await deleteKeysWithPrefix(redis, prefix);
  redis.disconnect();
});

type Make = (prefix: string) => Backend;
const BACKENDS: [string, Make][] = [
  ['redis (TCP)', (prefix) => redisBackend({ url: REDIS_URL, prefix })],
  ['upstash (through the bridge)', (prefix) => upstashBackend({ url: bridged.bridge.url, token: bridged.token, prefix })],
];

describe.each(BACKENDS)('key layout on %s', (_, make) => {
  it('prefix P with channel x:room and prefix Px: with channel room never see each other', async () => {
    const outer = uniquePrefix('key-space');
    const inner = `${outer}x:`;
    prefixes.push(outer);
    const apps = [
      { sse: createSSE({ backend: make(outer) }), channel: 'x:room', name: 'outer' },
      { sse: createSSE({ backend: make(inner) }), channel: 'room', name: 'inner' },
    ];
    try {
      // History: each app's first event is stored before either stream opens.
      const history = await Promise.all(apps.map((app) => app.sse.sendEvent('n', `${app.name} history`, { channel: app.channel })));
      const readers = await Promise.all(
        apps.map(async (app) => new SSEReader(await app.sse.handler(streamRequest(`?channel=${app.channel}`, { 'Last-Event-ID': '0-0' })))),
      );
      // Each app publishes once more, the other one first. The readers read on from 0-0, so they
      // get these whenever they start listening; were the keys shared, each reader would get the
      // other's event before its own (one stream, in order).
      await apps[1]!.sse.sendEvent('n', 'inner live', { channel: apps[1]!.channel });
      await apps[0]!.sse.sendEvent('n', 'outer live', { channel: apps[0]!.channel });
      for (const [index, reader] of readers.entries()) {
        const { name } = apps[index]!;
        await reader.waitFor(() => reader.messages.some((m) => m.data === `${name} live`), `${name}'s live event`);
        await reader.cancel();
        expect(reader.messages.map((m) => m.data)).toEqual([`${name} history`, `${name} live`]);
        expect(reader.messages[0]!.id).toBe(history[index]);
      }
      // And a read of each app's channel from the start holds only its own events.
      for (const app of apps) {
        const [read] = await app.sse.backend.read([{ channel: app.channel, after: '0-0' }], 100);
        expect(read!.events.map((e) => e.data)).toEqual([`${app.name} history`, `${app.name} live`]);
      }
    } finally {
      await Promise.all(apps.map((app) => app.sse.backend.close()));
    }
  });

  it.each(['a{b:', 'a}b:', 'a#b:', '{', '}'])('refuses prefix %j with INVALID_OPTION', (prefix) => {
    let thrown: unknown;
    try {
      make(prefix);
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(ValidationError);
    expect((thrown as ValidationError).code).toBe('INVALID_OPTION');
    expect((thrown as ValidationError).message).toContain(JSON.stringify(prefix));
  });
});
