/**
 * The bad-input corpus: every case must get a clear 4xx with a reason, or a typed error whose
 * message says what to fix — never a 500, a crash, an unhandled rejection or a hang.
 */
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Bridge, createBridge } from '../src/bridge/index.js';
import { parseCursor } from '../src/wire/cursor.js';
import { assertChannel } from '../src/wire/names.js';
import { formatEvent } from '../src/wire/frames.js';
import { type EventSourceMessage, createParser } from 'eventsource-parser';
import { type EdgeSSEError, ValidationError, createSSE, memoryBackend, sendEvents } from '../src/index.js';

const sse = createSSE({ backend: memoryBackend(), maxChannels: 16 });
const TOKEN = 'bad-input-token';
let bridge: Bridge;

beforeAll(async () => {
  bridge = await createBridge({ token: TOKEN });
});
afterAll(() => bridge.close());

/** Resolves to the response, or fails the test if it takes more than a second (a hang). */
async function answer(response: Promise<Response>): Promise<Response> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const hang = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error('no answer within 1 s')), 1000);
  });
  try {
    return await Promise.race([response, hang]);
  } finally {
    clearTimeout(timer);
  }
}

async function expectRefusal(response: Response, status: number, reason: RegExp): Promise<void> {
  if (response.status !== status) await response.body?.cancel();
  expect(response.status).toBe(status);
  const body = await response.text();
  expect(response.status, body).toBe(status);
  expect((JSON.parse(body) as { error: string }).error).toMatch(reason);
}

const stream = (query: string, init: RequestInit = {}, to = sse) =>
  answer(to.handler(new Request(`http://localhost/stream${query}`, init)));

const CHANNEL_CASES: [string, string, RegExp][] = [
  ['empty', '?channel=', /Invalid channel ""/],
  ['129 characters', `?channel=${'c'.repeat(129)}`, /Invalid channel .*\(129 characters\)/],
  ['a wildcard', '?channel=*', /Invalid channel "\*"/],
  ['a glob', '?channel=news*', /Invalid channel/],
  ['a dot-dot path', '?channel=..%2F..%2Fetc', /without "\.\."/],
  ['a dot segment inside', '?channel=team/./payroll', /Invalid channel "team\/\.\/payroll".*"\." between slashes/],
  ['a dot segment first', '?channel=./payroll', /"\." between slashes/],
  ['a dot segment last', '?channel=team/.', /"\." between slashes/],
  ['a lone dot', '?channel=.', /"\." between slashes/],
  ['a space', '?channel=a%20b', /Invalid channel "a b"/],
  ['unicode', '?channel=n%C3%A9ws', /Invalid channel "néws"/],
  ['an emoji', '?channel=%F0%9F%8C%8D', /Invalid channel/],
  ['CR', '?channel=a%0Db', /Invalid channel/],
  ['LF', '?channel=a%0Ab', /Invalid channel/],
  ['NUL', '?channel=a%00b', /Invalid channel/],
  ['a key-space escape with #', '?channel=sse%23claim%3Ax', /Invalid channel/],
  ['a Redis glob bracket', '?channel=%5Babc%5D', /Invalid channel/],
  ['a comma', '?channel=a%2Cb', /Invalid channel "a,b"/],
  ['a quote', '?channel=%22x%22', /Invalid channel/],
  ['17 channels', `?${Array.from({ length: 17 }, (_, n) => `channel=c${n}`).join('&')}`, /at most 16 per connection/],
  ['1,000 different channels', `?${Array.from({ length: 1000 }, (_, n) => `channel=c${n}`).join('&')}`, /1000 requested, at most 16/],
];

const CURSOR_CASES: [string, string, Record<string, string>, RegExp][] = [
  ['garbage', '', { 'Last-Event-ID': 'garbage' }, /not a stream id/],
  ['16 KB', '', { 'Last-Event-ID': '1'.repeat(16 * 1024) }, /for 1 channel\(s\) is at most 38/],
  ['negative', '', { 'Last-Event-ID': '-5-0' }, /not a stream id/],
  ['a float', '', { 'Last-Event-ID': '1.5-0' }, /not a stream id/],
  ['only a dash', '', { 'Last-Event-ID': '-' }, /not a stream id/],
  ['a sequence past 2^64', '', { 'Last-Event-ID': '1-99999999999999999999' }, /not a stream id/],
  ['for a different channel set', '?channel=a&channel=b', { 'Last-Event-ID': '1-0' }, /1 position\(s\) but 2 channel/],
  ['with an empty position', '?channel=a&channel=b', { 'Last-Event-ID': '1-0,' }, /not a stream id/],
  ['JSON instead of an id', '', { 'Last-Event-ID': '{"id":1}' }, /not a stream id/],
  ['a garbage ?lastEventId', '?lastEventId=%27%3B%20DROP', {}, /not a stream id/],
  ['a wrong marker', '', { 'Last-Event-ID': '1-0;xml' }, /not a stream id/],
];

describe('stream requests', () => {
  it.each(CHANNEL_CASES)('channel name: %s → 400', async (_, query, reason) => {
    await expectRefusal(await stream(query), 400, reason);
  });

  it.each(CURSOR_CASES)('cursor: %s → 400', async (_, query, headers, reason) => {
    await expectRefusal(await stream(query, { headers }), 400, reason);
  });

  it.each(['POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'])('method %s → 405', async (method) => {
    await expectRefusal(await stream('', { method }), 405, new RegExp(`Method ${method} is not allowed`));
  });

  it('a cursor from another channel is only a position in time: nothing leaks across channels', async () => {
    let now = Date.now();
    const clocked = createSSE({ backend: memoryBackend({ now: () => now }) });
    const other = await clocked.sendEvent('n', 'secret', { channel: 'other' });
    now++; // ids are milliseconds: make them differ
    await clocked.sendEvent('n', 'mine', { channel: 'mine' });
    const response = await stream('?channel=mine', { headers: { 'Last-Event-ID': other } }, clocked);
    expect(response.status).toBe(200);
    const reader = response.body!.getReader();
    let text = '';
    while (!text.includes('data: mine')) text += new TextDecoder().decode((await reader.read()).value);
    expect(text).not.toContain('secret');
    await reader.cancel();
  });
});

describe('sendEvent', () => {
  const cycle: Record<string, unknown> = {};
  cycle.self = cycle;
  const CASES: [string, string, unknown, string | undefined, string, RegExp][] = [
    ['a type with LF', 'a\nb', 'x', undefined, 'INVALID_EVENT_TYPE', /CR or LF/],
    ['a type with CRLF', 'a\r\nb', 'x', undefined, 'INVALID_EVENT_TYPE', /CR or LF/],
    ['an empty type', '', 'x', undefined, 'INVALID_EVENT_TYPE', /must not be empty/],
    ['a reserved type', 'sse:ready', 'x', undefined, 'INVALID_EVENT_TYPE', /reserved/],
    ['a type that is not a string', 42 as unknown as string, 'x', undefined, 'INVALID_EVENT_TYPE', /must be a string/],
    ['a 129-character type', 'x'.repeat(129), 'x', undefined, 'INVALID_EVENT_TYPE', /at most 128/],
    ['a huge payload', 'big', 'x'.repeat(70_000), undefined, 'EVENT_TOO_LARGE', /70000 bytes; the limit is 65536/],
    ['a cycle', 'c', cycle, undefined, 'INVALID_DATA', /cycles/],
    ['a BigInt', 'b', 10n, undefined, 'INVALID_DATA', /cannot serialise/],
    ['undefined', 'u', undefined, undefined, 'INVALID_DATA', /JSON cannot represent/],
    ['a function', 'f', () => 1, undefined, 'INVALID_DATA', /JSON cannot represent/],
    ['a symbol', 's', Symbol('x'), undefined, 'INVALID_DATA', /JSON cannot represent/],
    ['a lone surrogate', 'l', '\uDC00', undefined, 'INVALID_DATA', /surrogate/],
    ['a type with a lone surrogate', 'tick\uD800', 'x', undefined, 'INVALID_EVENT_TYPE', /lone UTF-16 surrogate/],
    ['a channel with a dot segment', 'ok', 'x', 'rooms/./a', 'INVALID_CHANNEL', /"\." between slashes/],
    ['a channel with a space', 'ok', 'x', 'a b', 'INVALID_CHANNEL', /Invalid channel/],
    ['a null channel', 'ok', 'x', null as unknown as string, 'INVALID_CHANNEL', /Invalid channel null/],
  ];

  it.each(CASES)('%s → typed error', async (_, type, data, channel, code, reason) => {
    const error = await sse.sendEvent(type, data, { channel }).then(
      () => undefined,
      (caught: unknown) => caught,
    );
    expect(error).toBeInstanceOf(ValidationError);
    expect((error as EdgeSSEError).code).toBe(code);
    expect((error as Error).message).toMatch(reason);
  });

  it('a batch that is not an array, or holds a non-object → typed error', async () => {
    const backend = memoryBackend();
    await expect(sendEvents('x' as never, { backend })).rejects.toThrow(/takes an array/);
    await expect(sendEvents([null as never], { backend })).rejects.toThrow(/must be an object/);
  });
});

describe('bridge', () => {
  const post = (path: string, body: string, token = TOKEN) =>
    answer(fetch(`${bridge.url}${path}`, { method: 'POST', body, headers: { Authorization: `Bearer ${token}` } }));

  it.each([
    ['malformed JSON', '/', '["SET", "k"', 400],
    ['not an array', '/', '{"cmd":"GET"}', 400],
    ['an empty command', '/', '[]', 400],
    ['a nested array argument', '/', '["GET", ["k"]]', 400],
    ['an unknown command', '/', '["NOPE"]', 400],
    ['a blocked command', '/', '["BLPOP", "k", "0"]', 400],
    ['XREAD with BLOCK', '/', '["XREAD", "BLOCK", "0", "STREAMS", "s", "$"]', 400],
    ['SUBSCRIBE on /', '/', '["SUBSCRIBE", "c"]', 400],
    ['FLUSHALL', '/', '["FLUSHALL"]', 400],
    ['a pipeline that is not an array of arrays', '/pipeline', '["GET", "k"]', 400],
    ['a huge body', '/', JSON.stringify(['SET', 'k', 'x'.repeat(2 * 1024 * 1024)]), 413],
  ])('%s → %i with a JSON reason', async (_, path, body, status) => {
    const response = await post(path, body);
    expect(response.status).toBe(status);
    expect(((await response.json()) as { error: string }).error.length).toBeGreaterThan(5);
  });

  it('a missing or wrong token → 401 JSON', async () => {
    for (const token of ['', 'wrong']) {
      const response = await post('/', '["PING"]', token);
      expect(response.status).toBe(401);
      expect(await response.json()).toHaveProperty('error');
    }
  });
});

/** The stream id shape, restated independently of src/wire/ids.ts: canonical decimals, each below 10^16. */
const STREAM_ID = /^(0|[1-9][0-9]{0,15})-(0|[1-9][0-9]{0,15})$/;
const streamId = fc
  .tuple(fc.bigInt({ min: 0n, max: 10n ** 16n - 1n }), fc.bigInt({ min: 0n, max: 10n ** 16n - 1n }))
  .map(([ms, seq]) => `${ms}-${seq}`);

/** The channel rule, restated: the alphabet and length, no "..", no "." segment. */
function isValidChannel(name: string): boolean {
  if (!/^[A-Za-z0-9._~:@/-]{1,128}$/.test(name) || name.includes('..')) return false;
  return !name.split('/').includes('.');
}

function parseAll(text: string): EventSourceMessage[] {
  const events: EventSourceMessage[] = [];
  const parser = createParser({ onEvent: (event) => events.push(event) });
  parser.feed(text);
  return events;
}

describe('fuzzing: each class of input gets what it must', () => {
  it('the frame encoder refuses ids and types it cannot carry, and what it writes parses back exactly, as one event', () => {
    fc.assert(
      fc.property(fc.option(fc.string()), fc.option(fc.string()), fc.string(), (id, event, data) => {
        const frame = { id: id ?? undefined, event: event ?? undefined, data };
        const badId = id !== null && /[\r\n\0]/.test(id);
        const badEvent = event !== null && /[\r\n]/.test(event);
        if (badId || badEvent) {
          expect(() => formatEvent(frame)).toThrow(expect.objectContaining({ code: 'INVALID_FRAME' }));
          return;
        }
        const parsed = parseAll(formatEvent(frame));
        expect(parsed).toHaveLength(1);
        expect(parsed[0]!.data).toBe(data.replace(/\r\n|\r/g, '\n'));
        expect(parsed[0]!.id).toBe(id ?? undefined);
        // An empty `event:` field means "message", as no field at all does.
        expect(parsed[0]!.event || undefined).toBe(event || undefined);
      }),
      { numRuns: 2000 },
    );
  });

  it('the cursor parser takes back every cursor it could have issued, and nothing that is not one', () => {
    const issued = fc
      .integer({ min: 1, max: 16 })
      .chain((channels) => fc.tuple(fc.array(streamId, { minLength: channels, maxLength: channels }), fc.boolean()));
    fc.assert(
      fc.property(issued, ([positions, json]) => {
        const text = positions.join(',') + (json ? ';json' : '');
        expect(parseCursor(text, positions.length).positions).toEqual(positions);
      }),
      { numRuns: 1000 },
    );
    const near = fc.stringMatching(/^[0-9,;json-]{0,40}$/);
    fc.assert(
      fc.property(fc.oneof(fc.string({ maxLength: 100 }), near), fc.integer({ min: 1, max: 16 }), (text, channels) => {
        const body = text.endsWith(';json') ? text.slice(0, -';json'.length) : text;
        const positions = body.split(',');
        const wellFormed = positions.length === channels && positions.every((position) => STREAM_ID.test(position));
        if (wellFormed) expect(parseCursor(text, channels).positions).toEqual(positions);
        else expect(() => parseCursor(text, channels)).toThrow(expect.objectContaining({ code: 'INVALID_CURSOR' }));
      }),
      { numRuns: 2000 },
    );
  });

  it('every channel name the rule allows reaches a URL path unchanged (no name can stand for another)', () => {
    const alphabet = 'ab./-_~:@';
    const names = fc.string({ unit: fc.constantFrom(...alphabet), minLength: 1, maxLength: 12 });
    fc.assert(
      fc.property(names, (name) => {
        let accepted = true;
        try {
          assertChannel(name);
        } catch {
          accepted = false;
        }
        const resolved = new URL(`/subscribe/${name}`, 'https://redis.example').pathname;
        if (accepted) expect(resolved).toBe(`/subscribe/${name}`);
      }),
      { numRuns: 3000 },
    );
  });

  it('stream requests: a bad channel gets 400 with the channel reason, a bad cursor 400 with the cursor reason, the rest 200', async () => {
    const channels = fc.oneof(fc.string({ maxLength: 60 }), fc.string({ unit: fc.constantFrom(...'ab./:'), minLength: 1, maxLength: 8 }));
    await fc.assert(
      fc.asyncProperty(channels, fc.oneof(fc.string({ maxLength: 60 }), streamId), async (channel, lastEventId) => {
        const url = new URL('http://localhost/stream');
        url.searchParams.set('channel', channel);
        const headers = new Headers();
        try {
          headers.set('Last-Event-ID', lastEventId);
        } catch {
          // Not a valid header value: fetch itself refuses it before it reaches anyone.
        }
        const cursor = headers.get('Last-Event-ID') ?? ''; // as the handler sees it (trimmed)
        const response = await answer(sse.handler(new Request(url, { headers })));
        if (!isValidChannel(channel)) return expectRefusal(response, 400, /^Invalid channel/);
        if (cursor !== '' && !STREAM_ID.test(cursor.replace(/;json$/, ''))) {
          return expectRefusal(response, 400, /^Invalid Last-Event-ID/);
        }
        // A well-formed cursor ahead of the channel's head is a gap, not a refusal.
        expect(response.status).toBe(200);
        await response.body?.cancel();
      }),
      { numRuns: 300 },
    );
  });
});
