import { describe, expect, it } from 'vitest';
import { redisBackend } from '../src/backends/redis/index.js';
import { type Backend, type CloseReason, createStreamHandler, memoryBackend, sendEvent } from '../src/index.js';
import type { StreamInfo } from '../src/server/observe.js';
import { useBridge } from './helpers/bridge.js';
import { REDIS_URL } from './helpers/redis.js';
import { SSEReader, streamRequest } from './helpers/sse.js';
import { sleep, waitUntil } from './helpers/wait.js';

const shared = useBridge('observe');
const ready = (reader: SSEReader) => reader.waitForReady();

describe('hooks', () => {
  it('reports each stream connecting and disconnecting, with why', async () => {
    const connected: StreamInfo[] = [];
    const disconnected: [number, CloseReason][] = [];
    const handler = createStreamHandler({
      backend: memoryBackend(),
      maxDurationMs: 300,
      onConnect: (info) => connected.push(info),
      onDisconnect: (info, reason) => disconnected.push([info.id, reason]),
    });
    const first = new SSEReader(await handler(streamRequest('?channel=b&channel=a')));
    const second = new SSEReader(await handler(streamRequest('', { 'Last-Event-ID': '0-0' })));
    await ready(first);
    await first.cancel();
    await second.waitForEnd();
    expect(connected.map(({ channels, resumed }) => ({ channels, resumed }))).toEqual([
      { channels: ['a', 'b'], resumed: false },
      { channels: ['sse'], resumed: true },
    ]);
    expect(disconnected).toEqual([
      [connected[0]!.id, 'client'],
      [connected[1]!.id, 'deadline'],
    ]);
  });

  it('keeps streaming when a hook throws, and reports it to onError', async () => {
    const errors: unknown[] = [];
    const backend = memoryBackend();
    const handler = createStreamHandler({
      backend,
      onConnect: () => {
        throw new Error('hook bug');
      },
      onError: (error) => errors.push(error),
    });
    const reader = new SSEReader(await handler(streamRequest()));
    await ready(reader);
    await sendEvent('n', 'still here', { backend });
    await reader.waitForMessages(1);
    expect((errors[0] as Error).message).toBe('hook bug');
    await reader.cancel();
  });
});

const subjects: [string, () => Backend][] = [
  ['memory', () => memoryBackend()],
  ['upstash subscribe', () => shared.upstash({ mode: 'subscribe' })],
  ['upstash poll', () => shared.upstash({ mode: 'poll', pollIntervalMs: 200 })],
  ['redis', () => redisBackend({ url: REDIS_URL, prefix: shared.prefix() })],
];

describe.each(subjects)('stats() with the %s backend', (name, create) => {
  it('counts streams, readers and timers, and all return to zero once clients leave', async () => {
    const backend = create();
    try {
      const handler = createStreamHandler({ backend });
      const readers = await Promise.all(
        ['?channel=x', '?channel=x', '?channel=x&channel=y'].map(async (query) => new SSEReader(await handler(streamRequest(query)))),
      );
      await Promise.all(readers.map(ready));
      await sendEvent('n', 'hello', { backend, channel: 'x' });
      await Promise.all(readers.map((reader) => reader.waitForMessages(1)));
      const busy = handler.stats();
      expect(busy).toMatchObject({ openStreams: 3, readers: 2, timers: 3, eventsDelivered: 3 });
      if (name === 'upstash subscribe') expect(busy.subscriptions).toBe(2);
      if (name === 'redis') expect(busy.subscriptions).toBe(1);

      await Promise.all(readers.map((reader) => reader.cancel()));
      await waitUntil(() => handler.stats().subscriptions === 0);
      expect(handler.stats()).toMatchObject({ openStreams: 0, readers: 0, timers: 0, subscriptions: 0, eventsDelivered: 3 });
      const requests = handler.stats().backendRequests;
      // A loop that outlived its clients would show as requests; nothing announces one not made.
      await sleep(500);
      expect(handler.stats().backendRequests).toBe(requests);
    } finally {
      await backend.close();
    }
  });
});
