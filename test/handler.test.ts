import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  BackendError,
  type CloseReason,
  EdgeSSEError,
  ValidationError,
  channelTokenAuthorizer,
  createSSE,
  createStreamHandler,
  memoryBackend,
  type StreamHandler,
  type StreamHandlerOptions,
} from '../src/index.js';
import { incomingFrom } from '../src/server/incoming.js';
import { SSEReader, streamRequest } from './helpers/sse.js';
import { failingToFollow, spyBackend } from './helpers/spy-backend.js';
import { sleep, waitUntil } from './helpers/wait.js';

afterEach(() => void vi.useRealTimers());

/** The streams' clock and timers made fake; setImmediate stays real, so `settled()` can let their promises run. */
const useFakeClock = () => vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'Date'] });
/** Once every promise the last timer set off has settled (a macrotask comes after all microtasks). */
const settled = () => new Promise((resolve) => setImmediate(resolve));

const ready = (reader: SSEReader) => reader.waitFor(() => reader.events.some((event) => event.event === 'sse:ready'), 'sse:ready');

async function open(sse: { handler: (request: Request) => Promise<Response> }, query = '', headers = {}) {
  const response = await sse.handler(streamRequest(query, headers));
  expect(response.status).toBe(200);
  return new SSEReader(response);
}

async function errorOf(response: Response, status: number): Promise<string> {
  expect(response.status).toBe(status);
  expect(response.headers.get('Content-Type')).toMatch(/application\/json/);
  return ((await response.json()) as { error: string }).error;
}

describe('createStreamHandler: the response', () => {
  it('streams SSE with the right headers and no Connection header', async () => {
    const sse = createSSE({ backend: memoryBackend() });
    const response = await sse.handler(streamRequest());
    expect(response.headers.get('Content-Type')).toBe('text/event-stream; charset=utf-8');
    expect(response.headers.get('Cache-Control')).toBe('no-cache, no-transform');
    expect(response.headers.get('X-Accel-Buffering')).toBe('no');
    expect(response.headers.has('Connection')).toBe(false);
    const reader = new SSEReader(response);
    await ready(reader);
    expect(reader.raw.startsWith('retry: 1000\n: edge-sse\n\n')).toBe(true);
    await reader.cancel();
  });

  it('listens to channel sse by default', async () => {
    const sse = createSSE({ backend: memoryBackend() });
    const reader = await open(sse);
    await ready(reader);
    await sse.sendEvent('greeting', 'hello');
    await sse.sendEvent('greeting', 'elsewhere', { channel: 'other' });
    await sse.sendEvent('greeting', 'again');
    await reader.waitForMessages(2);
    expect(reader.messages.map((m) => m.data)).toEqual(['hello', 'again']);
    expect(JSON.parse(reader.events[0]!.data)).toEqual({ channels: ['sse'] });
    await reader.cancel();
  });

  it('listens to several channels on one connection, each id carrying every position', async () => {
    const sse = createSSE({ backend: memoryBackend() });
    const reader = await open(sse, '?channel=b&channel=a&channel=b');
    await ready(reader);
    const a = await sse.sendEvent('x', 'to a', { channel: 'a' });
    const b = await sse.sendEvent('x', 'to b', { channel: 'b' });
    await sse.sendEvent('x', 'to c', { channel: 'c' });
    await reader.waitForMessages(2);
    expect(JSON.parse(reader.events[0]!.data)).toEqual({ channels: ['a', 'b'] });
    expect(reader.messages.map((m) => [m.data, m.id])).toEqual([
      ['to a', `${a},0-0`],
      ['to b', `${a},${b}`],
    ]);
    await reader.cancel();
  });
});

describe('createStreamHandler: refusals', () => {
  const sse = createSSE({ backend: memoryBackend(), maxChannels: 3 });

  it.each([
    ['an invalid channel', '?channel=a%20b', {}, /Invalid channel "a b"/],
    ['an empty channel', '?channel=', {}, /Invalid channel ""/],
    ['too many channels', '?channel=a&channel=b&channel=c&channel=d', {}, /at most 3 per connection/],
    ['a garbage cursor', '', { 'Last-Event-ID': 'garbage' }, /Invalid Last-Event-ID/],
    ['a cursor for other channels', '?channel=a', { 'Last-Event-ID': '1-0,2-0' }, /2 position\(s\) but 1 channel/],
    ['a garbage ?lastEventId', '?lastEventId=x', {}, /Invalid Last-Event-ID/],
  ])('answers 400 with a reason for %s', async (_, query, headers, reason) => {
    expect(await errorOf(await sse.handler(streamRequest(query, headers)), 400)).toMatch(reason);
  });

  it('answers 405 with Allow for anything but GET', async () => {
    for (const method of ['POST', 'PUT', 'DELETE', 'OPTIONS']) {
      const response = await sse.handler(new Request('http://localhost/stream', { method }));
      expect(await errorOf(response, 405)).toMatch(`Method ${method} is not allowed`);
      expect(response.headers.get('Allow')).toBe('GET');
    }
  });

  it('refuses options it cannot use', () => {
    expect(() => createStreamHandler({} as StreamHandlerOptions)).toThrow(/needs a backend/);
    expect(() => createStreamHandler({ backend: memoryBackend(), keepAliveMs: -1 })).toThrow(/keepAliveMs must be a whole number/);
  });
});

describe('createStreamHandler: authorize', () => {
  it('runs before any backend work and can allow, refuse or answer itself', async () => {
    const { backend, calls } = spyBackend(memoryBackend());
    const seen: string[][] = [];
    const sse = createSSE({
      backend,
      authorize: (request, channels) => {
        seen.push(channels);
        const who = new URL(request.url).searchParams.get('who');
        if (who === 'guest') return false;
        if (who === 'teapot') return new Response('short and stout', { status: 418 });
        return who === 'admin' ? true : undefined;
      },
    });
    const refused = await sse.handler(streamRequest('?who=guest&channel=secret'));
    expect(await errorOf(refused, 403)).toBe('Not allowed to listen to secret');
    const teapot = await sse.handler(streamRequest('?who=teapot'));
    expect(teapot.status).toBe(418);
    expect(await teapot.text()).toBe('short and stout');
    expect(calls).toEqual([]);
    for (const who of ['admin', 'anyone']) {
      const reader = await open(sse, `?who=${who}&channel=news`);
      await ready(reader);
      await reader.cancel();
    }
    expect(seen).toEqual([['secret'], ['sse'], ['news'], ['news']]);
  });

  it('may be async', async () => {
    const sse = createSSE({ backend: memoryBackend(), authorize: async () => (await sleep(5), false) });
    expect((await sse.handler(streamRequest())).status).toBe(403);
  });

  it("gives its refusals, and answers of the app's own, the CORS headers of every other answer", async () => {
    const origin = { Origin: 'https://app.example' };
    const cors = { origin: ['https://app.example'], credentials: true };
    const refusing = createSSE({ backend: memoryBackend(), cors, authorize: channelTokenAuthorizer('s'.repeat(32)) });
    const unauthorized = await refusing.handler(streamRequest('?channel=news', origin));
    expect(await errorOf(unauthorized, 401)).toMatch(/channel token is required/);
    expect(unauthorized.headers.get('Access-Control-Allow-Origin')).toBe('https://app.example');
    expect(unauthorized.headers.get('Access-Control-Allow-Credentials')).toBe('true');

    const own = createSSE({
      backend: memoryBackend(),
      cors,
      authorize: () => new Response('no', { status: 451, headers: { 'X-Why': 'law' } }),
    });
    const answer = await own.handler(streamRequest('', origin));
    expect(answer.status).toBe(451);
    expect(answer.headers.get('X-Why')).toBe('law');
    expect(answer.headers.get('Access-Control-Allow-Origin')).toBe('https://app.example');
    expect(await answer.text()).toBe('no');
  });

  it.each([
    ['a string', 'soon'],
    ['NaN', Number.NaN],
    ['Infinity', Infinity],
    ['missing', undefined],
  ])('refuses an unusable expiresAt (%s) with a typed error instead of a stream without a deadline', async (_, expiresAt) => {
    const { backend, calls } = spyBackend(memoryBackend());
    const sse = createSSE({ backend, authorize: () => ({ expiresAt }) as unknown as { expiresAt: number } });
    const error = await sse.handler(streamRequest()).then(
      () => undefined,
      (caught: unknown) => caught,
    );
    expect(error).toBeInstanceOf(EdgeSSEError);
    expect(error).not.toBeInstanceOf(ValidationError); // the app's bug: not a 400 for the client
    expect((error as EdgeSSEError).code).toBe('INVALID_OPTION');
    expect((error as Error).message).toMatch(/expiresAt must be a finite epoch time in milliseconds/);
    expect(sse.handler.stats().openStreams).toBe(0);
    expect(calls).toEqual([]);
  });
});

describe('createStreamHandler: resume', () => {
  it('resumes after Last-Event-ID and after ?lastEventId=, exactly once, in order', async () => {
    const sse = createSSE({ backend: memoryBackend() });
    const ids = [];
    for (let n = 0; n < 5; n++) ids.push(await sse.sendEvent('n', String(n), { channel: 'r' }));
    const byHeader = await open(sse, '?channel=r', { 'Last-Event-ID': ids[1] });
    const byQuery = await open(sse, `?channel=r&lastEventId=${ids[3]}`);
    await byHeader.waitForMessages(3);
    await byQuery.waitForMessages(1);
    await sse.sendEvent('n', '5', { channel: 'r' });
    await byHeader.waitForMessages(4);
    await byQuery.waitForMessages(2);
    expect(byHeader.messages.map((m) => m.data)).toEqual(['2', '3', '4', '5']);
    expect(byQuery.messages.map((m) => m.data)).toEqual(['4', '5']);
    expect(byHeader.events.some((e) => e.event === 'sse:ready')).toBe(false);
    await Promise.all([byHeader.cancel(), byQuery.cancel()]);
  });

  it('makes no read to resume a cursor that is where the live reader stands', async () => {
    const { backend, calls } = spyBackend(memoryBackend());
    const sse = createSSE({ backend });
    const first = await open(sse, '?channel=r');
    await ready(first);
    const id = await sse.sendEvent('n', '1', { channel: 'r' });
    await first.waitForMessages(1);
    const again = await open(sse, '?channel=r', { 'Last-Event-ID': id });
    await sse.sendEvent('n', '2', { channel: 'r' });
    await again.waitForMessages(1);
    expect(again.messages.map((m) => m.data)).toEqual(['2']);
    expect(calls.filter((c) => c.method === 'read')).toEqual([]);
    await Promise.all([first.cancel(), again.cancel()]);
  });

  it('prefers the Last-Event-ID header over ?lastEventId=', async () => {
    const sse = createSSE({ backend: memoryBackend() });
    const first = await sse.sendEvent('n', '1');
    await sse.sendEvent('n', '2');
    const reader = await open(sse, '?lastEventId=0-0', { 'Last-Event-ID': first });
    await reader.waitForMessages(1);
    await sse.sendEvent('n', 'last'); // a catch-up from 0-0 would have sent 1 and 2 before it
    await reader.waitForMessages(2);
    expect(reader.messages.map((m) => m.data)).toEqual(['2', 'last']);
    await reader.cancel();
  });

  it('catches up on a long history in batches, then goes live without a gap or a repeat', async () => {
    const sse = createSSE({ backend: memoryBackend() });
    await sse.sendEvents(Array.from({ length: 450 }, (_, n) => ({ type: 'n', data: String(n) })));
    const reader = await open(sse, '', { 'Last-Event-ID': '0-0' });
    await sse.sendEvent('n', '450');
    await reader.waitForMessages(451);
    expect(reader.messages.map((m) => Number(m.data))).toEqual(Array.from({ length: 451 }, (_, n) => n));
    await reader.cancel();
  });

  it('interleaves several channels by id when catching up', async () => {
    // Ids are milliseconds (sequence numbers count per channel): each event a millisecond later.
    let now = Date.now();
    const sse = createSSE({ backend: memoryBackend({ now: () => now }) });
    for (const [channel, data] of [
      ['a', '1'],
      ['b', '2'],
      ['a', '3'],
      ['b', '4'],
    ]) {
      await sse.sendEvent('n', data, { channel });
      now++;
    }
    const reader = await open(sse, '?channel=a&channel=b', { 'Last-Event-ID': '0-0,0-0' });
    await reader.waitForMessages(4);
    expect(reader.messages.map((m) => m.data)).toEqual(['1', '2', '3', '4']);
    await reader.cancel();
  });

  it("answers a position past a channel's head with 200 and sse:gap, then goes on from the live position", async () => {
    const sse = createSSE({ backend: memoryBackend() });
    const seen = await sse.sendEvent('n', 'seen', { channel: 'a' });
    const missed = await sse.sendEvent('n', 'missed', { channel: 'a' });
    // b's position was issued by a store that is gone (a restart): its new ids are all lower.
    const reader = await open(sse, '?channel=a&channel=b', { 'Last-Event-ID': `${seen},99999999999999-0;json` });
    await reader.waitForMessages(1);
    const later = await sse.sendEvent('n', 'later', { channel: 'b' });
    await reader.waitForMessages(2);
    await reader.cancel();
    expect(reader.events.map((e) => [e.event, e.data])).toEqual([
      ['sse:gap', '{"channel":"b","firstId":null}'],
      ['n', 'missed'],
      ['n', 'later'],
    ]);
    expect(reader.events.map((e) => e.id)).toEqual([`${seen},0-0;json`, `${missed},0-0`, `${missed},${later}`]);
  });

  it('takes back the cursor of a connection to maxChannels (1000) channels', async () => {
    const sse = createSSE({ backend: memoryBackend(), maxChannels: 1000 });
    const channels = Array.from({ length: 1000 }, (_, n) => `room-${String(n).padStart(4, '0')}`);
    const query = `?${channels.map((channel) => `channel=${channel}`).join('&')}`;
    const first = await open(sse, query);
    await ready(first);
    for (const channel of channels) await sse.sendEvent('n', channel, { channel });
    await first.waitForMessages(1000);
    await first.cancel();
    const cursor = first.lastId!;
    expect(cursor.length).toBeGreaterThan(4096);
    const missed = await sse.sendEvent('n', 'missed', { channel: 'room-0500' });
    const again = await open(sse, query, { 'Last-Event-ID': cursor });
    await again.waitForMessages(1);
    expect(again.messages.map((m) => m.data)).toEqual(['missed']);
    expect(again.messages[0]!.id!.split(',')[500]).toBe(missed);
    await again.cancel();
  });

  it('replays the newest n events to a fresh connection when asked', async () => {
    const sse = createSSE({ backend: memoryBackend(), replay: 2 });
    for (let n = 0; n < 4; n++) await sse.sendEvent('n', String(n));
    const reader = await open(sse);
    await ready(reader);
    expect(reader.messages.map((m) => m.data)).toEqual(['2', '3']);
    expect(reader.events.at(-1)!.event).toBe('sse:ready');
    await reader.cancel();
  });
});

describe('createStreamHandler: timing', () => {
  it('sends a heartbeat comment after keepAliveMs of silence', async () => {
    useFakeClock();
    const sse = createSSE({ backend: memoryBackend(), keepAliveMs: 15_000 });
    const reader = await open(sse);
    await ready(reader);
    await vi.advanceTimersByTimeAsync(14_999);
    await settled();
    expect(reader.comments).toEqual(['edge-sse']);
    await vi.advanceTimersByTimeAsync(1);
    await settled();
    expect(reader.comments).toEqual(['edge-sse', '']);
    await vi.advanceTimersByTimeAsync(10_000);
    await sse.sendEvent('n', 'not silent'); // 25 s: the next heartbeat is due 15 s after this event
    await vi.advanceTimersByTimeAsync(14_999);
    await settled();
    expect(reader.comments).toEqual(['edge-sse', '']);
    await vi.advanceTimersByTimeAsync(1);
    await settled();
    expect(reader.comments).toEqual(['edge-sse', '', '']);
    await reader.cancel();
  });

  it('ends the stream after 80–100% of maxDurationMs, with a retry hint sent up front', async () => {
    useFakeClock();
    const reasons: CloseReason[] = [];
    const sse = createSSE({
      backend: memoryBackend(),
      maxDurationMs: 60_000,
      retryMs: 250,
      onDisconnect: (_, reason) => reasons.push(reason),
    });
    const reader = await open(sse);
    await ready(reader);
    await vi.advanceTimersByTimeAsync(48_000 - 1);
    await settled();
    expect(reader.ended).toBe(false);
    await vi.advanceTimersByTimeAsync(12_000 + 1);
    await settled();
    expect(reader.ended).toBe(true);
    expect(reader.retries).toEqual([250]);
    expect(reasons).toEqual(['deadline']);
  });
});

describe('createStreamHandler: ending', () => {
  it('stops all backend work for a stream when its request is aborted', async () => {
    useFakeClock(); // a minute passes in no time: a timer of the stream's left running would show
    const { backend, calls } = spyBackend(memoryBackend());
    const reasons: CloseReason[] = [];
    const sse = createSSE({ backend, shareReaders: false, onDisconnect: (_, reason) => reasons.push(reason) });
    const abort = new AbortController();
    const reader = new SSEReader(await sse.handler(streamRequest('?channel=x', {}, abort.signal)));
    await ready(reader);
    await sse.sendEvent('n', 'before');
    abort.abort();
    await reader.waitForEnd();
    const seenAtAbort = calls.length;
    expect(calls.map((c) => c.method)).toEqual(['follow', 'append', 'unfollow', 'closeFeed']);
    expect(vi.getTimerCount()).toBe(0);
    await sse.sendEvent('n', 'after', { channel: 'x' });
    await vi.advanceTimersByTimeAsync(60_000);
    await settled();
    expect(calls.slice(seenAtAbort).map((c) => c.method)).toEqual(['append']);
    expect(reasons).toEqual(['client']);
  });

  it('still hears the abort after garbage collection: an open stream keeps its Request alive', async () => {
    // undici's request.signal follows the signal the Request was made with only while the Request
    // lives; if the stream let go of it, a GC would silently cut the client's disconnect off.
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    const sse = createSSE({ backend: memoryBackend() }); // no hooks: nothing else holds the Request
    const abort = new AbortController();
    const reader = new SSEReader(await sse.handler(streamRequest('?channel=gc', {}, abort.signal)));
    await ready(reader);
    for (let round = 0; round < 3; round++) {
      gc();
      await sleep(20); // weak references are cleared after the current task: nothing says when, or that it did nothing
    }
    abort.abort();
    await reader.waitForEnd(2000);
    expect(sse.handler.stats()).toMatchObject({ openStreams: 0, timers: 0 });
  });

  it('stops following a shared channel when its last listener cancels', async () => {
    const { backend, calls } = spyBackend(memoryBackend());
    const sse = createSSE({ backend });
    const readers = await Promise.all([open(sse, '?channel=s'), open(sse, '?channel=s')]);
    await Promise.all(readers.map(ready));
    expect(calls.filter((c) => c.method === 'follow')).toHaveLength(1);
    await readers[0]!.cancel();
    expect(calls.filter((c) => c.method === 'unfollow')).toHaveLength(0);
    await readers[1]!.cancel();
    await waitUntil(() => calls.some((c) => c.method === 'unfollow'));
  });

  it('ends the stream with a longer retry hint when the backend fails', async () => {
    const failing = spyBackend(memoryBackend(), failingToFollow(new BackendError('BACKEND_UNAVAILABLE', 'Redis is unreachable'))).backend;
    const reasons: CloseReason[] = [];
    const sse = createSSE({ backend: failing, backendRetryMs: 2000, onDisconnect: (_, reason) => reasons.push(reason) });
    const reader = await open(sse);
    await reader.waitForEnd();
    expect(reader.retries).toHaveLength(2);
    expect(reader.retries[1]).toBeGreaterThanOrEqual(2000);
    expect(reader.retries[1]).toBeLessThanOrEqual(3000);
    expect(reader.comments).toContain('backend unavailable');
    expect(reasons).toEqual(['backend']);
  });

  it('closes a live stream whose client stops reading once maxQueuedBytes is exceeded', async () => {
    const reasons: CloseReason[] = [];
    const sse = createSSE({ backend: memoryBackend(), maxQueuedBytes: 4096, onDisconnect: (_, reason) => reasons.push(reason) });
    const response = await sse.handler(streamRequest()); // live once answered: nothing read from it
    for (let n = 0; n < 10; n++) await sse.sendEvent('big', 'x'.repeat(1000));
    await waitUntil(() => reasons.length > 0);
    expect(reasons).toEqual(['slow-client']);
    // The queued bytes are dropped and the stream broken off, not held for a client that never reads.
    await expect(response.body!.getReader().read()).rejects.toThrow(/client stopped reading/);
  });
});

describe('createStreamHandler: CORS', () => {
  it('adds CORS headers to streams and errors, and answers preflight', async () => {
    const sse = createSSE({ backend: memoryBackend(), cors: { origin: ['https://app.example'], credentials: true } });
    const headers = { Origin: 'https://app.example' };
    const response = await sse.handler(streamRequest('', headers));
    expect(response.headers.get('Access-Control-Allow-Origin')).toBe('https://app.example');
    expect(response.headers.get('Access-Control-Allow-Credentials')).toBe('true');
    expect(response.headers.get('Vary')).toBe('Origin');
    await response.body!.cancel();
    const refused = await sse.handler(streamRequest('?channel=*', headers));
    expect(refused.headers.get('Access-Control-Allow-Origin')).toBe('https://app.example');
    const stranger = await sse.handler(streamRequest('?channel=*', { Origin: 'https://evil.example' }));
    expect(stranger.headers.has('Access-Control-Allow-Origin')).toBe(false);
    const preflight = await sse.handler(new Request('http://localhost/stream', { method: 'OPTIONS', headers }));
    expect(preflight.status).toBe(204);
    expect(preflight.headers.get('Access-Control-Allow-Headers')).toMatch(/Last-Event-ID/);
  });

  it('allows any origin with cors: true', async () => {
    const sse = createSSE({ backend: memoryBackend(), cors: true });
    const response = await sse.handler(streamRequest('?channel=*'));
    expect(response.headers.get('Access-Control-Allow-Origin')).toBe('*');
  });
});

describe('createStreamHandler: the entry point for server adapters that own the socket', () => {
  const serveDirect = (handler: StreamHandler) => handler.serveSocket;

  it('writes the stream to the sink the adapter opens, with the stream headers', async () => {
    const sse = createSSE({ backend: memoryBackend() });
    const chunks: string[] = [];
    let headers: Record<string, string> = {};
    const decoder = new TextDecoder();
    const attachment = await serveDirect(sse.handler)(incomingFrom(streamRequest('?channel=direct')), (head) => {
      headers = head;
      return { write: (chunk) => chunks.push(decoder.decode(chunk)) > 0, bufferedBytes: 0, end: () => {}, destroy: () => {} };
    });
    expect(attachment).not.toBeInstanceOf(Response);
    expect(headers['Content-Type']).toBe('text/event-stream; charset=utf-8');
    await sse.sendEvent('note', 'hello', { channel: 'direct' });
    await waitUntil(() => chunks.join('').includes('data: hello'));
    expect(chunks[0]).toMatch(/^retry: 1000/);
    (attachment as { clientLeft(): void }).clientLeft();
    expect(sse.handler.stats()).toMatchObject({ openStreams: 0, readers: 0, timers: 0 });
  });

  it('answers refusals with a Response, and releases the stream if the adapter cannot open it', async () => {
    const sse = createSSE({ backend: memoryBackend() });
    const refused = await serveDirect(sse.handler)(incomingFrom(streamRequest('?channel=a%20b')), () => {
      throw new Error('not reached');
    });
    expect((refused as Response).status).toBe(400);
    const failing = serveDirect(sse.handler)(incomingFrom(streamRequest('?channel=ok')), () => {
      throw new Error('socket gone');
    });
    await expect(failing).rejects.toThrow('socket gone');
    expect(sse.handler.stats()).toMatchObject({ openStreams: 0, readers: 0, timers: 0 });
  });
});
