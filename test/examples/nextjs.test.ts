/**
 * examples/nextjs, for real: `next build` with no network at all, then `next start` against an
 * edge-sse bridge (the Upstash REST protocol) in front of the real Redis. The example imports
 * `edge-sse` through the workspace link, i.e. the repo's built dist/ through the exports map.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { EventSource } from 'eventsource';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { REDIS_URL, deleteKeysWithPrefix } from '../helpers/redis.ts';
import { listenWithEventSource } from '../helpers/eventsource.ts';
import { SSEReader } from '../helpers/sse.ts';
import { until } from './helpers.ts';
import { EXAMPLE, type RunningExample, startNextExample } from './nextjs-build.ts';

/** The example uses the default key prefix `sse:`; every channel here is unique to this run. */
const RUN = randomBytes(4).toString('hex');
const channel = (name: string) => `test-nextjs-${RUN}-${name}`;

let example: RunningExample;
let base: string;
let buildMs = 0;
const sources: EventSource[] = [];

beforeAll(async () => {
  example = await startNextExample('/api/send');
  ({ base } = example);
  buildMs = example.build.ms;
}, 300_000);

afterEach(() => {
  for (const source of sources.splice(0)) source.close();
});

afterAll(async () => {
  await example?.stop();
  const redis = new Redis(REDIS_URL);
  await deleteKeysWithPrefix(redis, `sse:test-nextjs-${RUN}-`);
  redis.disconnect();
});

function send(body: unknown): Promise<Response> {
  return fetch(`${base}/api/send`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
}

/** The `eventsource` client on /api/stream, joined to the live feed; closed after each test. */
async function listen(name: string, types: string[]) {
  const listening = await listenWithEventSource(`${base}/api/stream?channel=${encodeURIComponent(name)}`, types);
  sources.push(listening.source);
  return listening;
}

describe('examples/nextjs (next build, next start, bridge, Redis)', () => {
  it('builds offline, with the stream route dynamic and ending before maxDuration', () => {
    expect(buildMs).toBeGreaterThan(0);
    const route = readFileSync(join(EXAMPLE, 'app/api/stream/route.ts'), 'utf8');
    const maxDuration = Number(/export const maxDuration = (\d+);/.exec(route)?.[1]);
    const maxDurationMs = Number(/maxDurationMs: ([\d_]+)/.exec(route)?.[1]?.replaceAll('_', ''));
    expect(maxDuration).toBeGreaterThan(0);
    expect(maxDurationMs).toBeGreaterThan(0);
    expect(maxDurationMs).toBeLessThan(maxDuration * 1000);
    expect(route).toMatch(/export const GET = createStreamHandler\(/);
    expect(route).not.toMatch(/runtime\s*=\s*['"]edge/);
  });

  it('serves the page: EventSource client, publish form, ?channel=', async () => {
    const res = await fetch(`${base}/?channel=${channel('page')}`);
    expect(res.status).toBe(200);
    const html = await res.text();
    expect(html).toContain('id="publish-form"');
    expect(html).toContain('id="events"');
    expect(html).toContain(channel('page'));
    const fallback = await (await fetch(`${base}/`)).text();
    expect(fallback).toMatch(/<code>sse<\/code>/);
  });

  it('an event sent via /api/send arrives at /api/stream, read by the eventsource client', async () => {
    const name = channel('flow');
    const { received } = await listen(name, ['greeting', 'message']);
    const res = await send({ type: 'greeting', data: { hello: 'next' }, channel: name });
    expect(res.status).toBe(200);
    const { id } = (await res.json()) as { id: string };
    expect(id).toMatch(/^\d+-\d+$/);
    await until(() => received.length === 1, 'the greeting');
    expect(received[0]).toMatchObject({ type: 'greeting', data: '{"hello":"next"}' });
    // Events on other channels do not arrive here.
    expect((await send({ type: 'message', data: 'elsewhere', channel: channel('other') })).status).toBe(200);
    expect((await send({ type: 'message', data: 'here', channel: name })).status).toBe(200);
    await until(() => received.length === 2, 'the second event');
    expect(received.map((event) => event.data)).toEqual(['{"hello":"next"}', 'here']);
  });

  it('streams events one by one: no gzip and no buffering on the stream, though Next compresses the page', async () => {
    const page = await fetch(`${base}/`, { headers: { 'accept-encoding': 'gzip' } });
    await page.arrayBuffer();
    expect(page.headers.get('content-encoding')).toBe('gzip'); // compression is on…

    const name = channel('unbuffered');
    const controller = new AbortController();
    const res = await fetch(`${base}/api/stream?channel=${name}`, {
      headers: { 'accept-encoding': 'gzip, deflate, br' },
      signal: controller.signal,
    });
    try {
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toBe('text/event-stream; charset=utf-8');
      expect(res.headers.get('cache-control')).toContain('no-transform');
      expect(res.headers.get('content-encoding')).toBeNull(); // …but not on the stream
      const reader = new SSEReader(res);
      await reader.waitFor(() => reader.events.some((event) => event.event === 'sse:ready'), 'sse:ready');
      // Each event must arrive before the next is sent: a buffered stream fails at the first.
      for (let n = 1; n <= 5; n++) {
        expect((await send({ type: 'tick', data: String(n), channel: name })).status).toBe(200);
        await reader.waitFor(() => reader.messages.length === n, `tick ${n} on its own`, 3000);
      }
      expect(reader.messages.map((event) => event.data)).toEqual(['1', '2', '3', '4', '5']);
    } finally {
      controller.abort();
    }
  });

  it('resumes from Last-Event-ID: a client that reconnects gets what it missed', async () => {
    const name = channel('resume');
    const { source, received } = await listen(name, ['message']);
    await send({ type: 'message', data: 'first', channel: name });
    await until(() => received.length === 1, 'the first event');
    source.close();
    await send({ type: 'message', data: 'missed 1', channel: name });
    await send({ type: 'message', data: 'missed 2', channel: name });
    const controller = new AbortController();
    const res = await fetch(`${base}/api/stream?channel=${name}`, {
      headers: { 'last-event-id': received[0]!.id },
      signal: controller.signal,
    });
    const reader = new SSEReader(res);
    try {
      await reader.waitForMessages(2);
      expect(reader.messages.map((event) => event.data)).toEqual(['missed 1', 'missed 2']);
    } finally {
      controller.abort();
    }
  });

  it('next start tells the handler when the client leaves: its subscription at the bridge closes', async () => {
    // The earlier tests' clients have all left by now.
    await until(() => example.bridge.stats().openSubscriptions === 0, 'earlier subscriptions to close', 5000);
    const { source } = await listen(channel('leave'), ['message']);
    await until(() => example.bridge.stats().openSubscriptions === 1, 'the stream to subscribe');
    source.close();
    // On Vercel the abort never comes (maxDurationMs is the backstop); `next start` delivers it.
    await until(() => example.bridge.stats().openSubscriptions === 0, 'the subscription to close', 5000);
  });

  it('/api/send refuses what the library refuses, with 400 and a reason', async () => {
    const notJson = await send('not json');
    expect(notJson.status).toBe(400);
    const badType = await send({ type: 'bad type\n', data: 1 });
    expect(badType.status).toBe(400);
    expect(((await badType.json()) as { error: string }).error).toMatch(/type/i);
  });
});
