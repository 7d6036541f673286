/**
 * edge-sse/client in Debian's Chromium with its native EventSource, against the demo server:
 * resumes across ending streams, recreates the EventSource after a 503 with ?lastEventId=.
 */
import { build } from 'esbuild';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RunningDemo, startDemo } from '../../demo/server.ts';
import { type SSE, createSSE, memoryBackend } from '../../src/index.js';
import { type Browser, launchChromium } from './browser.js';

type Events = { tick: { n: number }; text: string };

declare global {
  interface Window {
    EdgeSSEClient: typeof import('../../src/client/index.js');
    __got: { data: unknown; channel: string; id: string }[];
    __clientStates: string[];
  }
}

let browser: Browser;
let demo: RunningDemo;
let sse: SSE<Events>;
let bundle: string;

beforeAll(async () => {
  const built = await build({
    entryPoints: ['src/client/index.ts'],
    bundle: true,
    minify: true,
    format: 'iife',
    globalName: 'EdgeSSEClient',
    target: 'es2022',
    write: false,
  });
  bundle = built.outputFiles[0]!.text;
  browser = await launchChromium();
  demo = await startDemo({ port: 0, backend: memoryBackend(), handlerOptions: { maxDurationMs: 2000, retryMs: 250 } });
  sse = createSSE<Events>({ backend: demo.backend });
});

afterAll(async () => {
  await browser?.close();
  await demo?.close();
});

/**
 * A bare page on the demo's origin (so /stream is same-origin) that loads the client bundle;
 * `refuse(n)` answers the next n /stream requests 503.
 */
async function pageWithClient(): Promise<{ page: Page; streams: string[]; refuse: (count: number) => void }> {
  const page = await browser.context.newPage();
  const streams: string[] = [];
  let refusing = 0;
  await page.route('**/client-test', (route) =>
    route.fulfill({ contentType: 'text/html', body: '<!doctype html><title>client</title><script src="/client.js"></script>' }),
  );
  await page.route('**/client.js', (route) => route.fulfill({ contentType: 'text/javascript', body: bundle }));
  await page.route('**/stream?**', (route) => {
    streams.push(new URL(route.request().url()).search);
    if (refusing-- > 0) return route.fulfill({ status: 503, body: 'down for maintenance' });
    return route.continue();
  });
  await page.goto(`${demo.url}/client-test`);
  return { page, streams, refuse: (count) => (refusing = count) };
}

async function publish(from: number, to: number): Promise<void> {
  for (let n = from; n < to; n++) {
    const channel = n % 2 ? 'left' : 'right';
    if (n % 3) await sse.sendEvent('tick', { n }, { channel });
    else await sse.sendEvent('text', `text ${n}`, { channel });
  }
}

const expected = (channel: string, count: number) =>
  Array.from({ length: count }, (_, n) => n)
    .filter((n) => (n % 2 ? 'left' : 'right') === channel)
    .map((n) => (n % 3 ? { n } : `text ${n}`));

describe('edge-sse/client in Chromium', () => {
  it('decodes, orders and resumes across stream ends and a 503 that makes EventSource give up', async () => {
    const { page, streams, refuse } = await pageWithClient();
    await page.evaluate(() => {
      window.__got = [];
      window.__clientStates = [];
      const record = (data: unknown, meta: { channel: string; id: string }) =>
        window.__got.push({ data, channel: meta.channel, id: meta.id });
      window.EdgeSSEClient.subscribe('/stream', {
        channels: ['right', 'left'],
        on: { tick: record, text: record },
        onStateChange: (state) => window.__clientStates.push(state),
        reconnect: () => 100,
      });
    });
    await page.waitForFunction(() => window.__clientStates.includes('open')); // live once answered; sse:ready comes first
    await publish(0, 100);
    await page.waitForFunction(() => window.__got.length === 100);

    refuse(2); // the browser's own reconnect when this stream ends, then the helper's first new EventSource
    await expect.poll(() => streams.length, { timeout: 5000 }).toBe(4);
    await publish(100, 200);
    await page.waitForFunction(() => window.__got.length === 200, undefined, { timeout: 10_000 });
    await sse.sendEvent('text', 'last', { channel: 'left' }); // anything repeated would arrive before it
    await page.waitForFunction(() => window.__got.some(({ data }) => data === 'last'), undefined, { timeout: 10_000 });

    const got = await page.evaluate(() => window.__got);
    expect(got.pop()!.data).toBe('last');
    expect(got).toHaveLength(200);
    for (const channel of ['left', 'right']) {
      expect(got.filter((event) => event.channel === channel).map(({ data }) => data)).toEqual(expected(channel, 200));
    }
    // Chromium's own reconnect (Last-Event-ID in a header) was refused; then the helper's new
    // EventSources carried the cursor in the query: refused once, then served.
    expect(streams.slice(0, 2)).toEqual(['?channel=right&channel=left', '?channel=right&channel=left']);
    expect(streams[2]).toMatch(/^\?channel=right&channel=left&lastEventId=\d+-\d+%2C\d+-\d+$/);
    expect(streams[3]).toBe(streams[2]);
    const states = await page.evaluate(() => window.__clientStates);
    expect(states.slice(0, 3)).toEqual(['connecting', 'open', 'resuming']);
    expect(states.at(-1)).toBe('open');
    await page.close();
  });
});
