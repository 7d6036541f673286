/**
 * edge-sse/client over HTTP with the `eventsource` npm package (a real EventSource nobody here
 * wrote) against the library's own handler: the wire and the helper agree.
 */
import { EventSource } from 'eventsource';
import { afterEach, describe, expect, it } from 'vitest';
import { type ConnectionState, type EventMeta, type Gap, type SubscribeOptions, subscribe } from '../src/client/index.js';
import { compareIds } from '../src/wire/ids.js';
import { type SSE, createSSE, memoryBackend } from '../src/index.js';
import { type RunningServer, serve } from '../src/adapters/node.js';
import { waitUntil } from './helpers/wait.js';

type Events = { tick: { n: number }; text: string };

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

type Handler = (request: Request) => Promise<Response>;

async function server(sse: SSE<Events>, wrap = (handler: Handler): Handler => handler): Promise<RunningServer> {
  const running = await serve(wrap(sse.handler));
  cleanups.push(() => running.close());
  return running;
}

function listen(url: string, options: SubscribeOptions<Events> = {}) {
  const received: { data: unknown; meta: EventMeta }[] = [];
  const states: ConnectionState[] = [];
  const record = (data: unknown, meta: EventMeta) => received.push({ data, meta });
  const unsubscribe = subscribe<Events>(url, {
    EventSource,
    on: { tick: record, text: record },
    onStateChange: (state) => states.push(state),
    ...options,
  });
  cleanups.push(unsubscribe);
  return { received, states };
}

describe('edge-sse/client with the eventsource package', () => {
  it('gets every event once, in order, decoded, with its channel and id, across streams that keep ending', async () => {
    const sse = createSSE<Events>({ backend: memoryBackend(), maxDurationMs: 150, retryMs: 20 });
    const { url } = await server(sse);
    const { received, states } = listen(`${url}/stream`, { channels: ['b', 'a'] });
    await waitUntil(() => states.includes('open')); // the stream is live once answered; sse:ready comes first in it
    const sent: { id: string; channel: string }[] = [];
    for (let n = 0; n < 300; n++) {
      const channel = n % 3 === 0 ? 'a' : 'b';
      const id = n % 2 ? await sse.sendEvent('text', `text ${n}`, { channel }) : await sse.sendEvent('tick', { n }, { channel });
      sent.push({ id, channel });
      if (n % 50 === 0) await new Promise((resolve) => setTimeout(resolve, 60));
    }
    await waitUntil(() => received.length >= 300, 10_000);
    await sse.sendEvent('text', 'last', { channel: 'a' }); // anything repeated would arrive before it
    await waitUntil(() => received.some(({ data }) => data === 'last'), 10_000);
    expect(received.pop()!.data).toBe('last');
    // Across channels, publishing times (the ids' milliseconds) never go backwards, live or caught
    // up (sequence numbers count per channel: within a millisecond, channels are not ordered).
    const times = received.map(({ meta }) => `${meta.id.split('-')[0]}-0`);
    times.slice(1).forEach((time, n) => expect(compareIds(times[n]!, time), `${times[n]} then ${time}`).toBeLessThanOrEqual(0));
    for (const channel of ['a', 'b']) {
      const got = received.filter(({ meta }) => meta.channel === channel);
      const expected = sent.flatMap((event, n) => (event.channel === channel ? [{ n, id: event.id }] : []));
      expect(got.map(({ meta }) => meta.id)).toEqual(expected.map(({ id }) => id));
      expect(got.map(({ data }) => data)).toEqual(expected.map(({ n }) => (n % 2 ? `text ${n}` : { n })));
    }
    expect(received).toHaveLength(300);
    expect(states.filter((state) => state === 'resuming').length).toBeGreaterThan(0);
  });

  it('recreates the EventSource with ?lastEventId= after a 503 made it give up, losing nothing', async () => {
    const sse = createSSE<Events>({ backend: memoryBackend(), maxDurationMs: 200, retryMs: 20 });
    const requests: string[] = [];
    let refuse = 0;
    const { url } = await server(sse, (handler) => async (request) => {
      requests.push(`${request.headers.get('last-event-id') ?? '-'} ${new URL(request.url).search}`);
      if (refuse-- > 0) return new Response('down for maintenance', { status: 503 });
      return handler(request);
    });
    const { received, states } = listen(`${url}/stream?channel=news`, { reconnect: () => 30 });
    await waitUntil(() => states.includes('open'));
    const first = await sse.sendEvent('text', 'before', { channel: 'news' });
    await waitUntil(() => received.length === 1);
    refuse = 2; // EventSource's own reconnect once this stream ends, then the helper's first attempt
    await waitUntil(() => requests.length === 3, 5000);
    const missed = await sse.sendEvent('tick', { n: 1 }, { channel: 'news' });
    await waitUntil(() => received.length === 2, 5000);
    expect(received.map(({ data }) => data)).toEqual(['before', { n: 1 }]);
    expect(received[1]!.meta.id).toBe(missed);
    expect(requests.slice(1)).toEqual([
      `${first} ?channel=news`, // EventSource resuming by itself: refused, so it gives up
      `- ?channel=news&lastEventId=${first}`, // the helper's new EventSource: refused
      `- ?channel=news&lastEventId=${first}`,
    ]);
    expect(states).toContain('resuming');
    expect(states.at(-1)).toBe('open');
  });

  it('reports a gap when history was trimmed below the cursor while offline', async () => {
    const backend = memoryBackend();
    const sse = createSSE<Events>({ backend, maxLength: 3 });
    const { url } = await server(sse);
    const before = await sse.sendEvent('text', 'seen', { channel: 'g' });
    for (let n = 0; n < 10; n++) await sse.sendEvent('tick', { n }, { channel: 'g' });
    const gaps: Gap[] = [];
    const { received } = listen(`${url}/stream`, { channels: 'g', lastEventId: before, onGap: (gap) => gaps.push(gap) });
    await waitUntil(() => received.length === 3);
    expect(gaps).toEqual([{ channel: 'g', firstId: received[0]!.meta.id }]);
    expect(received.map(({ data }) => data)).toEqual([{ n: 7 }, { n: 8 }, { n: 9 }]);
  });
});
