import { describe, expect, it } from 'vitest';
import {
  EdgeSSEError,
  ValidationError,
  createSSE,
  memoryBackend,
  sendEvent,
  sendEvents,
} from '../src/index.js';

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
    await refusal(sendEvents([{ type: 'ok', data: 1 }, { type: '', data: 2 }], { backend }));
    expect(backend.stats().requests).toBe(0);
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
