/**
 * Resuming from positions the store no longer has: the channel expired after ttlSeconds, Redis
 * restarted empty, the process (and its memory backend) restarted. edge-sse/client over the
 * `eventsource` package (a real EventSource nobody here wrote) against a real HTTP server: the
 * client hears `sse:gap` and carries on live; nothing is refused.
 */
import { EventSource } from 'eventsource';
import { Redis as IORedis } from 'ioredis';
import { afterEach, describe, expect, it } from 'vitest';
import { type EventMeta, type Gap, subscribe } from '../src/client/index.js';
import { redisBackend } from '../src/backends/redis/index.js';
import { type Backend, type SSE, createSSE, memoryBackend } from '../src/index.js';
import { type RunningServer, serve } from '../src/adapters/node.js';
import { startOwnRedis } from './helpers/redis-server.js';
import { REDIS_URL, deleteKeysWithPrefix, uniquePrefix } from './helpers/redis.js';
import { waitUntil } from './helpers/wait.js';

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

interface Served {
  url: string;
  /** Status and Last-Event-ID of every stream request, in order. */
  requests: { status: number; lastEventId: string | null }[];
  running: RunningServer;
}

async function serveRecorded(sse: () => SSE, port = 0): Promise<Served> {
  const requests: Served['requests'] = [];
  const running = await serve(
    async (request) => {
      const response = await sse().handler(request);
      const lastEventId = request.headers.get('last-event-id') ?? new URL(request.url).searchParams.get('lastEventId');
      requests.push({ status: response.status, lastEventId });
      return response;
    },
    { port },
  );
  cleanups.push(() => running.close().catch(() => undefined)); // some tests stop it themselves
  return { url: running.url, requests, running };
}

function listen(url: string, channel: string) {
  const received: { data: string; meta: EventMeta<'n'> }[] = [];
  const gaps: Gap[] = [];
  const states: string[] = [];
  const unsubscribe = subscribe<{ n: string }>(`${url}/stream`, {
    EventSource,
    channels: channel,
    on: { n: (data, meta) => received.push({ data, meta }) },
    onGap: (gap) => gaps.push(gap),
    onStateChange: (state) => states.push(state),
    reconnect: () => 50,
  });
  cleanups.push(unsubscribe);
  return { received, gaps, states };
}

function closing(backend: Backend): Backend {
  cleanups.push(() => backend.close());
  return backend;
}

describe('resuming after the history is gone', () => {
  it('a channel that expired (ttlSeconds) while the client was between streams: sse:gap, then live', async () => {
    const prefix = uniquePrefix('resume-expired');
    const redis = new IORedis(REDIS_URL);
    cleanups.push(async () => {
      await deleteKeysWithPrefix(redis, prefix);
      redis.disconnect();
    });
    const sse = createSSE({ backend: closing(redisBackend({ url: REDIS_URL, prefix })), ttlSeconds: 1, maxDurationMs: 600, retryMs: 20 });
    const served = await serveRecorded(() => sse);
    const client = listen(served.url, 'room');
    await waitUntil(() => client.states.includes('open'));
    await waitUntil(() => served.requests.length > 0);
    const before = await sse.sendEvent('n', 'before', { channel: 'room' });
    await waitUntil(() => client.received.length === 1);
    await waitUntil(async () => (await redis.exists(`${prefix}{room}`)) === 0);
    // The stream ends every 0.5–0.6 s; EventSource comes back with the id of "before".
    await waitUntil(() => client.gaps.length === 1);
    const after = await sse.sendEvent('n', 'after', { channel: 'room' });
    await waitUntil(() => client.received.length === 2);
    expect(client.gaps).toEqual([{ channel: 'room', firstId: null }]);
    expect(client.received.map(({ data, meta }) => [data, meta.id])).toEqual([
      ['before', before],
      ['after', after],
    ]);
    expect(served.requests.some((request) => request.lastEventId === before)).toBe(true);
    expect(served.requests.every((request) => request.status === 200)).toBe(true);
    expect(client.states).not.toContain('closed');
  });

  it('a redis-server that restarted empty: sse:gap, then live', async () => {
    const own = await startOwnRedis();
    cleanups.push(() => own.dispose());
    const sse = createSSE({ backend: closing(redisBackend({ url: own.url })), retryMs: 20, backendRetryMs: 50 });
    const served = await serveRecorded(() => sse);
    const client = listen(served.url, 'room');
    await waitUntil(() => client.states.includes('open'));
    const before = await sse.sendEvent('n', 'before', { channel: 'room' });
    await waitUntil(() => client.received.length === 1);
    await own.kill();
    await own.start();
    await waitUntil(() => client.gaps.length === 1);
    const after = await sse.sendEvent('n', 'after', { channel: 'room' });
    await waitUntil(() => client.received.length === 2);
    expect(client.gaps).toEqual([{ channel: 'room', firstId: null }]);
    expect(client.received.map(({ data, meta }) => [data, meta.id])).toEqual([
      ['before', before],
      ['after', after],
    ]);
    expect(served.requests.filter((request) => request.lastEventId === before).every((request) => request.status === 200)).toBe(true);
    expect(client.states).not.toContain('closed');
  });

  it('a process that restarted with a new memory backend, already holding new events: sse:gap, them, then live', async () => {
    const first = createSSE({ backend: memoryBackend(), retryMs: 20 });
    const served = await serveRecorded(() => first);
    const client = listen(served.url, 'room');
    await waitUntil(() => client.states.includes('open'));
    const before = await first.sendEvent('n', 'before', { channel: 'room' });
    await waitUntil(() => client.received.length === 1);

    const restarted = createSSE({ backend: memoryBackend(), retryMs: 20 });
    const meanwhile = await restarted.sendEvent('n', 'meanwhile', { channel: 'room' });
    await served.running.close();
    const port = Number(new URL(served.url).port);
    const again = await serveRecorded(() => restarted, port);
    await waitUntil(() => client.received.length === 2);
    const after = await restarted.sendEvent('n', 'after', { channel: 'room' });
    await waitUntil(() => client.received.length === 3);
    expect(client.gaps).toEqual([{ channel: 'room', firstId: meanwhile }]);
    expect(client.received.map(({ data, meta }) => [data, meta.id])).toEqual([
      ['before', before],
      ['meanwhile', meanwhile],
      ['after', after],
    ]);
    expect(again.requests[0]).toEqual({ status: 200, lastEventId: before });
    expect(client.states).not.toContain('closed');
  });
});
