import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Bridge, createBridge } from '../src/bridge/index.js';
import { redisBackend } from '../src/backends/redis/index.js';
import { upstashBackend } from '../src/backends/upstash/index.js';
import { type Backend, BackendError, type CloseReason, createSSE } from '../src/index.js';
import { type OwnRedis, startOwnRedis } from './helpers/redis-server.js';
import { SSEReader, streamRequest } from './helpers/sse.js';
import { untilResolved } from './helpers/wait.js';

const TOKEN = 'faults-token';

describe.each([
  ['upstash (subscribe, through the bridge)', 'subscribe'],
  ['upstash (poll, through the bridge)', 'poll'],
  ['redis (TCP)', 'tcp'],
] as const)('Redis stopped mid-stream: %s', (_, mode) => {
  let redis: OwnRedis;
  let bridge: Bridge | undefined;
  let backend: Backend;

  beforeAll(async () => {
    redis = await startOwnRedis({ persistent: true });
    if (mode === 'tcp') backend = redisBackend({ url: redis.url });
    else {
      bridge = await createBridge({ token: TOKEN, redis: redis.url });
      backend = upstashBackend({ url: bridge.url, token: TOKEN, mode, pollIntervalMs: 200 });
    }
  });

  afterAll(async () => {
    await backend.close();
    await bridge?.close();
    await redis.dispose();
  });

  it('ends open streams with a retry hint, refuses publishing with a typed error, and loses nothing', async () => {
    const reasons: CloseReason[] = [];
    const sse = createSSE({ backend, backendRetryMs: 3000, onDisconnect: (_, reason) => reasons.push(reason) });
    const reader = new SSEReader(await sse.handler(streamRequest('?channel=outage')));
    await reader.waitFor(() => reader.events.some((e) => e.event === 'sse:ready'), 'sse:ready');
    for (let n = 0; n < 3; n++) await sse.sendEvent('n', String(n), { channel: 'outage' });
    await reader.waitForMessages(3);

    await redis.kill();
    await reader.waitForEnd(8000);
    expect(reasons).toEqual(['backend']);
    expect(reader.retries.at(-1)).toBeGreaterThanOrEqual(3000);
    expect(reader.comments).toContain('backend unavailable');

    const refused = await sse.sendEvent('n', 'lost?', { channel: 'outage' }).catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(BackendError);
    expect((refused as BackendError).code).toBe('BACKEND_UNAVAILABLE');
    expect((refused as Error).message).toMatch(/unreachable/);

    // While Redis is away, a reconnecting client is told to come back later, not left hanging.
    const early = new SSEReader(await sse.handler(streamRequest('?channel=outage', { 'Last-Event-ID': reader.lastId! })));
    await early.waitForEnd(8000);
    expect(early.messages).toEqual([]);
    expect(early.retries.at(-1)).toBeGreaterThanOrEqual(3000);

    await redis.start();
    const published: string[] = [];
    for (let n = 3; n < 6; n++) {
      await untilResolved(() => sse.sendEvent('n', String(n), { channel: 'outage' }));
      published.push(String(n));
    }
    const resumed = new SSEReader(await sse.handler(streamRequest('?channel=outage', { 'Last-Event-ID': reader.lastId! })));
    // A last event: anything repeated would arrive before it.
    await sse.sendEvent('n', 'last', { channel: 'outage' });
    await resumed.waitForMessages(4);
    expect(resumed.messages.map((m) => m.data)).toEqual([...published, 'last']);
    await resumed.cancel();
  }, 40_000);
});
