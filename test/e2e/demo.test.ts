/**
 * The demo page in Debian's Chromium, driven by playwright-core: native EventSource, its own
 * reconnects with Last-Event-ID, and the page's gap display. Fails (never skips) without Chromium.
 */
import { copyFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type DemoOptions, type RunningDemo, startDemo } from '../../demo/server.ts';
import { compareIds } from '../../src/wire/ids.js';
import { memoryBackend } from '../../src/index.js';
import { ARTIFACTS, type Browser, launchChromium } from './browser.js';
import { openDemo, publishWithForm, shown, states } from './demo-page.js';

const EVENTS = 500;

let browser: Browser;
const demos: RunningDemo[] = [];

beforeAll(async () => {
  browser = await launchChromium();
});

afterAll(async () => {
  await browser?.close();
  await Promise.all(demos.map((demo) => demo.close()));
});

async function demo(handlerOptions: DemoOptions['handlerOptions']): Promise<RunningDemo> {
  const started = await startDemo({ port: 0, backend: memoryBackend(), handlerOptions });
  demos.push(started);
  return started;
}

describe('demo page in Chromium', () => {
  it(`page B shows all ${EVENTS} events page A publishes, once each, in order, while every stream ends after 2 s`, async () => {
    const { url } = await demo({ maxDurationMs: 2000, retryMs: 250 });
    const [a, b] = [await browser.context.newPage(), await browser.context.newPage()];
    const streams: Promise<string | undefined>[] = [];
    b.on('request', (request) => {
      if (request.url().includes('/stream')) streams.push(request.allHeaders().then((headers) => headers['last-event-id']));
    });
    await openDemo(b, url, 'load');
    await openDemo(a, url, 'load');

    const texts = Array.from({ length: EVENTS }, (_, index) => `event ${index + 1}`);
    await publishWithForm(a, 'load', texts.slice(0, EVENTS / 2));
    // However fast publishing is, the second half goes out after B's first stream has ended.
    await expect.poll(() => streams.length, { timeout: 5000 }).toBeGreaterThanOrEqual(2);
    await publishWithForm(a, 'load', texts.slice(EVENTS / 2));
    await b.waitForFunction((count) => window.__shown.length >= count, EVENTS, { timeout: 30_000 });
    await publishWithForm(a, 'load', ['last']); // anything extra (a duplicate) would show up before it
    await b.waitForFunction(() => window.__shown.some(({ data }) => data === 'last'), undefined, { timeout: 10_000 });

    const events = await shown(b);
    expect(events.pop()!.data).toBe('last');
    expect(events.map(({ data }) => data)).toEqual(texts);
    expect(events.every(({ channel, type }) => channel === 'load' && type === 'message')).toBe(true);
    expect(events.every((event, index) => index === 0 || compareIds(event.id, events[index - 1]!.id) > 0)).toBe(true);
    // B resumed mid-run: its browser reconnected by itself each time a stream ended, sending Last-Event-ID.
    const resumedWith = await Promise.all(streams);
    expect(resumedWith[0]).toBeUndefined();
    expect(resumedWith.slice(1).every(Boolean)).toBe(true);
    expect(await b.locator('#events li').first().locator('.data').textContent()).toBe('last'); // newest first

    await b.screenshot({ path: join(ARTIFACTS, 'demo-500-events.png') });
    await Promise.all([a.close(), b.close()]);
  });

  it('page B shows an event of a type only page A knew of, and says why the server refused a stream', async () => {
    const { url } = await demo({});
    const [a, b] = [await browser.context.newPage(), await browser.context.newPage()];
    await openDemo(b, url, 'types');
    await openDemo(a, url, 'types');
    await a.fill('#type', 'custom');
    await publishWithForm(a, 'types', ['a type B never listed']);
    await b.waitForFunction(() => window.__shown.length === 1);
    expect(await shown(b)).toEqual([expect.objectContaining({ type: 'custom', data: 'a type B never listed' })]);
    expect(await b.textContent('#listening')).toContain('custom');

    // The page's own check lets this name through; the server refuses it (a URL would rewrite it).
    await b.fill('#listen-channel', 'team/./payroll');
    await b.locator('#listen-form button[type=submit]').click();
    await b.locator('#state[data-state=closed]').waitFor();
    await expect.poll(() => b.textContent('#state-detail')).toMatch(/^the server refused the stream: Invalid channel "team\/\.\/payroll"/);
    await Promise.all([a.close(), b.close()]);
  });

  it('page B shows the gap when history was trimmed below its cursor while it was offline', async () => {
    const { url } = await demo({ maxLength: 5 });
    const [a, b] = [await browser.context.newPage(), await browser.context.newPage()];
    await openDemo(b, url, 'gappy');
    await openDemo(a, url, 'gappy');
    await publishWithForm(a, 'gappy', ['seen before going offline']);
    await b.waitForFunction(() => window.__shown.length === 1);

    await b.click('#toggle-connection');
    await b.locator('#state[data-state=closed]').waitFor();
    const offline = Array.from({ length: 20 }, (_, index) => `published while B was offline ${index + 1}`);
    await publishWithForm(a, 'gappy', offline);
    await b.click('#toggle-connection');
    await b.waitForFunction(() => window.__shown.length === 6);

    const events = await shown(b);
    expect(events.map(({ data }) => data)).toEqual(['seen before going offline', ...offline.slice(-5)]);
    await expect.poll(() => b.getAttribute('#state', 'data-state')).toBe('gap');
    const detail = JSON.parse((await b.textContent('#state-detail')) ?? '');
    expect(detail).toEqual({ channel: 'gappy', firstId: events[1]!.id });
    expect(await states(b)).toEqual(expect.arrayContaining(['closed', 'connecting', 'open', 'gap']));

    const screenshot = join(ARTIFACTS, 'demo-gap.png');
    await b.screenshot({ path: screenshot });
    if (process.env.UPDATE_DOCS_SCREENSHOT) copyFileSync(screenshot, join(process.cwd(), 'docs', 'demo.png'));
    await Promise.all([a.close(), b.close()]);
  });
});
