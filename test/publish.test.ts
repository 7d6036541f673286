import { Redis as IORedis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import { upstashBackend } from '../src/backends/upstash/index.js';
import { createBridge } from '../src/bridge/index.js';
import { type EdgeSSEError, ValidationError, createSSE, memoryBackend, sendEvent, sendEvents } from '../src/index.js';
import { startOwnRedis } from './helpers/redis-server.js';
import { waitUntil } from './helpers/wait.js';

async function refusal(promise: Promise<unknown>): Promise<EdgeSSEError> {
  const error = await promise.then(
    () => undefined,
    (caught: unknown) => caught,
  );
  expect(error).toBeInstanceOf(ValidationError);
  return error as EdgeSSEError;
}

describe('sendEvent', () => {
  it('stores a string verbatim and anything else as JSON, on channel sse by default', async () => {
    const backend = memoryBackend();
    const first = await sendEvent('greeting', 'hello', { backend });
    await sendEvent('doc', { a: [1, 'two'] }, { backend });
    await sendEvent('count', 3, { backend, channel: 'other' });
    const [sse, other] = await backend.read(
      [
        { channel: 'sse', after: '0-0' },
        { channel: 'other', after: '0-0' },
      ],
      10,
    );
    expect(sse!.events.map(({ type, data, json }) => ({ type, data, json }))).toEqual([
      { type: 'greeting', data: 'hello', json: false },
      { type: 'doc', data: '{"a":[1,"two"]}', json: true },
    ]);
    expect(sse!.events[0]!.id).toBe(first);
    expect(other!.events[0]).toMatchObject({ data: '3', json: true });
  });

  it.each([
    ['an empty type', '', 'x', undefined, 'INVALID_EVENT_TYPE', /must not be empty/],
    ['a type with LF', 'a\nb', 'x', undefined, 'INVALID_EVENT_TYPE', /CR or LF/],
    ['a type with CR', 'a\rb', 'x', undefined, 'INVALID_EVENT_TYPE', /CR or LF/],
    ['a reserved type', 'sse:gap', 'x', undefined, 'INVALID_EVENT_TYPE', /reserved/],
    ['a 129-character type', 't'.repeat(129), 'x', undefined, 'INVALID_EVENT_TYPE', /at most 128/],
    ['a bad channel', 'ok', 'x', 'a b', 'INVALID_CHANNEL', /A-Z a-z 0-9/],
    ['a channel with *', 'ok', 'x', 'news*', 'INVALID_CHANNEL', /"news\*"/],
    ['undefined data', 'ok', undefined, undefined, 'INVALID_DATA', /JSON cannot represent/],
    ['a function', 'ok', () => 1, undefined, 'INVALID_DATA', /JSON cannot represent/],
    ['a BigInt', 'ok', { n: 1n }, undefined, 'INVALID_DATA', /cannot serialise/],
    ['a lone surrogate', 'ok', 'bad \uD800 string', undefined, 'INVALID_DATA', /surrogate/],
  ])('refuses %s with a typed error', async (_, type, data, channel, code, message) => {
    const backend = memoryBackend();
    const error = await refusal(sendEvent(type as string, data, { backend, channel: channel as string | undefined }));
    expect(error.code).toBe(code);
    expect(error.message).toMatch(message);
    expect(backend.stats().requests).toBe(0);
  });

  it('refuses cycles and oversized data, saying how to fix it', async () => {
    const backend = memoryBackend();
    const cycle: Record<string, unknown> = {};
    cycle.self = cycle;
    expect((await refusal(sendEvent('x', cycle, { backend }))).message).toMatch(/cycles/);
    const big = await refusal(sendEvent('x', 'é'.repeat(40_000), { backend }));
    expect(big.code).toBe('EVENT_TOO_LARGE');
    expect(big.message).toMatch(/80000 bytes; the limit is 65536 \(option maxEventBytes\)/);
    await expect(sendEvent('x', 'x'.repeat(65_536), { backend })).resolves.toMatch(/^\d+-\d+$/);
    expect((await refusal(sendEvent('x', 'abc', { backend, maxEventBytes: 2 }))).code).toBe('EVENT_TOO_LARGE');
  });

  it('refuses bad options with INVALID_OPTION', async () => {
    const backend = memoryBackend();
    expect((await refusal(sendEvent('x', 1, { backend, maxLength: 0 }))).code).toBe('INVALID_OPTION');
    expect((await refusal(sendEvent('x', 1, {} as never))).message).toMatch(/needs a backend/);
  });
});

describe('sendEvents', () => {
  it('publishes a batch in one backend round trip, in order', async () => {
    const backend = memoryBackend();
    const ids = await sendEvents(
      [
        { type: 'a', data: '1' },
        { type: 'b', data: 2, channel: 'other' },
        { type: 'c', data: '3' },
      ],
      { backend },
    );
    expect(ids).toHaveLength(3);
    expect(backend.stats().requests).toBe(1);
    expect(await sendEvents([], { backend })).toEqual([]);
  });

  it('publishes nothing when any event is invalid', async () => {
    const backend = memoryBackend();
    await refusal(
      sendEvents(
        [
          { type: 'ok', data: 1 },
          { type: '', data: 2 },
        ],
        { backend },
      ),
    );
    expect(backend.stats().requests).toBe(0);
  });
});

describe('idempotency keys', () => {
  it('make a retry publish once: the same ids, nothing stored twice', async () => {
    const backend = memoryBackend();
    const first = await sendEvent('order', { id: 7 }, { backend, channel: 'shop', idempotencyKey: 'order-7-created' });
    await expect(sendEvent('order', { id: 7 }, { backend, channel: 'shop', idempotencyKey: 'order-7-created' })).resolves.toBe(first);
    const batch = [
      { type: 'a', data: 1, channel: 'x' },
      { type: 'b', data: 2, channel: 'y' },
    ];
    const ids = await sendEvents(batch, { backend, idempotencyKey: 'batch 1' });
    await expect(sendEvents(batch, { backend, idempotencyKey: 'batch 1' })).resolves.toEqual(ids);
    const reads = await backend.read(
      ['shop', 'x', 'y'].map((channel) => ({ channel, after: '0-0' })),
      10,
    );
    expect(reads.map((read) => read.events.map((event) => event.id))).toEqual([[first], [ids[0]], [ids[1]]]);
  });

  it('go with the call in createSSE; idempotencySeconds can be its default', async () => {
    let now = Date.now();
    const sse = createSSE({ backend: memoryBackend({ now: () => now }), idempotencySeconds: 60 });
    const id = await sse.sendEvent('x', 1, { idempotencyKey: 'k' });
    await expect(sse.sendEvent('x', 1, { idempotencyKey: 'k' })).resolves.toBe(id);
    const [a] = await sse.sendEvents([{ type: 'x', data: 2 }], { idempotencyKey: 'j', idempotencySeconds: 3600 });
    now += 61_000;
    await expect(sse.sendEvent('x', 1, { idempotencyKey: 'k' })).resolves.not.toBe(id);
    await expect(sse.sendEvents([{ type: 'x', data: 2 }], { idempotencyKey: 'j' })).resolves.toEqual([a]);
  });

  it.each([
    ['an empty key', ''],
    ['a 257-character key', 'k'.repeat(257)],
    ['a key with a line break', 'a\nb'],
    ['a key with non-ASCII', 'clé'],
    ['a number', 42],
  ])('refuse %s with INVALID_OPTION, publishing nothing', async (_, idempotencyKey) => {
    const backend = memoryBackend();
    const error = await refusal(sendEvent('x', 1, { backend, idempotencyKey: idempotencyKey as string }));
    expect(error.code).toBe('INVALID_OPTION');
    expect(error.message).toMatch(/Option idempotencyKey must be 1–256 printable ASCII characters/);
    expect(backend.stats().requests).toBe(0);
    await expect(sendEvent('x', 1, { backend, idempotencyKey: 'k'.repeat(256) })).resolves.toMatch(/^\d+-\d+$/);
  });

  it('refuse a bad idempotencySeconds', async () => {
    const backend = memoryBackend();
    for (const idempotencySeconds of [0, 1.5, -1]) {
      const error = await refusal(sendEvent('x', 1, { backend, idempotencyKey: 'k', idempotencySeconds }));
      expect(error.message).toMatch(/Option idempotencySeconds must be a whole number from 1/);
    }
    expect(backend.stats().requests).toBe(0);
  });

  it('say so when a key is used again for a batch of another size', async () => {
    const backend = memoryBackend();
    await sendEvents([{ type: 'a', data: 1 }], { backend, idempotencyKey: 'reused' });
    const error = await refusal(
      sendEvents(
        [
          { type: 'a', data: 1 },
          { type: 'b', data: 2 },
        ],
        { backend, idempotencyKey: 'reused' },
      ),
    );
    expect(error.message).toMatch(/"reused" was used by a publish of 1 event\(s\), and this one has 2: give each publish its own key/);
    expect((await backend.read([{ channel: 'sse', after: '0-0' }], 10))[0]!.events).toHaveLength(1);
  });

  it('a publish that timed out while Redis was stalled, and was stored after all: the retry publishes once', async () => {
    const own = await startOwnRedis();
    const bridge = await createBridge({ token: 'idem-token', redis: own.url });
    const redis = new IORedis(own.url);
    const pid = Number(/process_id:(\d+)/.exec(await redis.info('server'))![1]);
    try {
      const backend = upstashBackend({ url: bridge.url, token: 'idem-token' });
      await sendEvent('n', 'warm', { backend, channel: 'warm' });
      process.kill(pid, 'SIGSTOP');
      const options = { backend, channel: 'orders', idempotencyKey: 'order-42' };
      const timedOut = await sendEvent('n', 'order 42', { ...options, signal: AbortSignal.timeout(300) }).catch((error: Error) => error);
      expect(timedOut).toBeInstanceOf(Error);
      process.kill(pid, 'SIGCONT');
      // The bridge had sent the script on: Redis runs it once it is back.
      await waitUntil(async () => (await redis.xlen('sse:{orders}')) > 0, 5000, 'the timed-out publish to be stored');
      const [stored] = await redis.xrange('sse:{orders}', '-', '+');
      await expect(sendEvent('n', 'order 42', options)).resolves.toBe(stored![0]);
      expect(await redis.xlen('sse:{orders}')).toBe(1);
    } finally {
      process.kill(pid, 'SIGCONT');
      redis.disconnect();
      await bridge.close();
      await own.dispose();
    }
  });
});

describe('createSSE', () => {
  it('shares one backend and its defaults between the handler and publishing', async () => {
    const sse = createSSE({ backend: memoryBackend(), maxEventBytes: 10 });
    await expect(sse.sendEvent('x', 'short')).resolves.toMatch(/^\d+-\d+$/);
    expect((await refusal(sse.sendEvent('x', 'far too long for ten'))).code).toBe('EVENT_TOO_LARGE');
    expect(typeof sse.handler).toBe('function');
  });
});
