import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import type { EventSource } from 'eventsource';
import { afterEach, describe, expect, it } from 'vitest';
import { pickBackend } from '../demo/backend.ts';
import { type DemoOptions, type RunningDemo, startDemo } from '../demo/server.ts';
import { memoryBackend } from '../src/index.ts';
import { listenWithEventSource } from './helpers/eventsource.ts';
import { SSEReader } from './helpers/sse.ts';
import { waitUntil } from './helpers/wait.ts';

const running: RunningDemo[] = [];
const sources: EventSource[] = [];

afterEach(async () => {
  for (const source of sources.splice(0)) source.close();
  await Promise.all(running.splice(0).map((demo) => demo.close()));
});

async function demo(options: DemoOptions = {}): Promise<RunningDemo> {
  const started = await startDemo({ port: 0, ...options });
  running.push(started);
  return started;
}

function send(url: string, body: unknown): Promise<Response> {
  return fetch(`${url}/send`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
}

/** The `eventsource` client on `url`, joined to the live feed; closed after each test. */
async function listen(url: string, types: string[]) {
  const listening = await listenWithEventSource(url, types);
  sources.push(listening.source);
  return listening;
}

describe('demo server', () => {
  it('serves the page: one self-contained HTML document with the publish form and stable ids', async () => {
    const { url } = await demo();
    const res = await fetch(`${url}/`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('text/html; charset=utf-8');
    const html = await res.text();
    for (const id of ['publish-form', 'type', 'data', 'channel', 'state', 'events', 'listen-form', 'listen-channel']) {
      expect(html).toContain(`id="${id}"`);
    }
    expect(html).toContain('new EventSource(');
    expect(html).toContain("'sse:gap'");
    // No external assets: nothing is loaded from another origin.
    expect(html).not.toMatch(/(src|href)="(https?:)?\/\//);
    expect(html).not.toMatch(/@import|url\(/);
  });

  it("the page's script is valid JavaScript", async () => {
    const { url } = await demo();
    const html = await (await fetch(url)).text();
    const scripts = [...html.matchAll(/<script>([\s\S]*?)<\/script>/g)].map((match) => match[1]!);
    expect(scripts).toHaveLength(1);
    expect(() => new Function(scripts[0]!)).not.toThrow();
  });

  it('POST /send publishes to the channel an open /stream listens to, and only there', async () => {
    const { url } = await demo();
    const { received } = await listen(`${url}/stream?channel=news`, ['greeting', 'message']);

    const elsewhere = await send(url, { type: 'greeting', data: 'not for news', channel: 'chat' });
    expect(elsewhere.status).toBe(200);
    const res = await send(url, { type: 'greeting', data: 'hello news', channel: 'news' });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toContain('application/json');
    const { id } = (await res.json()) as { id: string };
    expect(id).toMatch(/^\S+$/);

    await waitUntil(() => received.length >= 1, 5000, 'the greeting');
    expect(received).toEqual([{ type: 'greeting', id, data: 'hello news' }]);
  });

  it('sends non-string data as JSON and omitted channel to the default channel "sse"', async () => {
    const { url } = await demo();
    const { received } = await listen(`${url}/stream`, ['alert']);
    const res = await send(url, { type: 'alert', data: { level: 2, text: 'disk full' } });
    expect(res.status).toBe(200);
    await waitUntil(() => received.length >= 1, 5000, 'the alert');
    expect(JSON.parse(received[0]!.data)).toEqual({ level: 2, text: 'disk full' });
  });

  it('answers 400 with the library reason for a bad channel or event name, and publishes nothing', async () => {
    const { url } = await demo();
    const { received } = await listen(`${url}/stream`, ['message']);

    const cases: [unknown, RegExp][] = [
      [{ type: 'message', data: 'x', channel: 'no spaces' }, /Invalid channel "no spaces"/],
      [{ type: 'message', data: 'x', channel: '' }, /Invalid channel/],
      [{ type: 'sse:gap', data: 'x' }, /reserved/],
      [{ type: 'two\nlines', data: 'x' }, /CR or LF/],
      [{ type: '', data: 'x' }, /must not be empty/],
      [{ data: 'x' }, /Invalid event type/],
      ['{not json', /not valid JSON/],
      ['["message","x"]', /not a JSON object/],
    ];
    for (const [body, reason] of cases) {
      const res = await send(url, body);
      expect(res.status, JSON.stringify(body)).toBe(400);
      const { error } = (await res.json()) as { error: string };
      expect(error).toMatch(reason);
    }

    const good = await send(url, { type: 'message', data: 'after the bad ones' });
    expect(good.status).toBe(200);
    await waitUntil(() => received.length >= 1, 5000, 'the good message');
    expect(received.map((event) => event.data)).toEqual(['after the bad ones']);
  });

  it('refuses an oversized /send body with 400', async () => {
    const { url } = await demo();
    const res = await send(url, { type: 'message', data: 'x'.repeat(300 * 1024) });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: string }).error).toMatch(/too large/);
  });

  it('answers 404 for unknown paths and 405 for wrong methods', async () => {
    const { url } = await demo();
    const missing = await fetch(`${url}/nope`);
    expect(missing.status).toBe(404);
    expect(await missing.json()).toEqual({ error: 'Not found: /nope' });

    const getSend = await fetch(`${url}/send`);
    expect(getSend.status).toBe(405);
    expect(getSend.headers.get('allow')).toBe('POST');
    const postPage = await fetch(`${url}/`, { method: 'POST' });
    expect(postPage.status).toBe(405);
  });

  it('/stream is the library handler: it refuses a bad channel with 400', async () => {
    const { url } = await demo();
    const res = await fetch(`${url}/stream?channel=bad%20name`);
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: string }).error).toMatch(/Invalid channel/);
  });

  it('passes handlerOptions and a backend through: a short maxDurationMs ends the stream', async () => {
    const backend = memoryBackend();
    const { url, backend: used } = await demo({ backend, handlerOptions: { maxDurationMs: 200 } });
    expect(used).toBe(backend);
    const started = Date.now();
    const res = await fetch(`${url}/stream`);
    expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/);
    const body = await res.text(); // resolves only when the server ends the stream
    expect(Date.now() - started).toBeLessThan(2000);
    expect(body).toContain('event: sse:ready');
  });

  it('close() ends open streams', async () => {
    const started = await startDemo({ port: 0 });
    const res = await fetch(`${started.url}/stream`);
    const reader = res.body!.getReader();
    await reader.read(); // the first bytes: the stream is open

    await started.close();
    await expect(
      (async () => {
        for (let chunk = await reader.read(); !chunk.done; chunk = await reader.read());
      })(),
    ).rejects.toThrow(); // cut off, not a clean end: EventSource would reconnect
  });

  it('pickBackend uses the memory backend when no Redis is configured', () => {
    expect(pickBackend({}).name).toBe('memory');
  });

  it('pickBackend picks Upstash (or Vercel KV) REST variables first, then REDIS_URL', async () => {
    const rest = { UPSTASH_REDIS_REST_URL: 'https://x.upstash.io', UPSTASH_REDIS_REST_TOKEN: 't' };
    expect(pickBackend({ ...rest, REDIS_URL: 'redis://127.0.0.1:6379' }).name).toBe('upstash');
    expect(pickBackend({ KV_REST_API_URL: 'https://x.upstash.io', KV_REST_API_TOKEN: 't' }).name).toBe('upstash');
    const tcp = pickBackend({ REDIS_URL: 'redis://127.0.0.1:6379' });
    expect(tcp.name).toBe('redis');
    await tcp.close();
  });

  it('npm run demo -- --bridge: the Upstash backend through a bridge over the local Redis', async () => {
    const serverFile = fileURLToPath(new URL('../demo/server.ts', import.meta.url));
    const env: NodeJS.ProcessEnv = { ...process.env, PORT: '0' };
    delete env.UPSTASH_REDIS_REST_URL;
    delete env.KV_REST_API_URL;
    const child = spawn(process.execPath, ['--import', 'tsx', serverFile, '--bridge'], { env, stdio: ['ignore', 'pipe', 'inherit'] });
    try {
      const [line] = (await once(child.stdout, 'data')) as [Buffer];
      const match =
        /^edge-sse demo on (http:\/\/127\.0\.0\.1:\d+) \(backend: upstash via edge-sse-bridge at http:\/\/127\.0\.0\.1:\d+ → redis:\/\/127\.0\.0\.1:6379\)\n$/.exec(
          line.toString(),
        );
      expect(match, line.toString()).not.toBeNull();
      const channel = `demo-bridge-${Date.now()}`;
      const stream = await fetch(`${match![1]}/stream?channel=${channel}`);
      const reader = new SSEReader(stream);
      await reader.waitFor(() => reader.events.some((event) => event.event === 'sse:ready'), 'sse:ready');
      const sent = await fetch(`${match![1]}/send`, {
        method: 'POST',
        body: JSON.stringify({ type: 'greeting', data: 'via bridge', channel }),
      });
      expect(sent.status).toBe(200);
      await reader.waitForMessages(1);
      expect(reader.messages[0]!.data).toBe('via bridge');
      await reader.cancel();
    } finally {
      child.kill('SIGKILL');
    }
  });

  it('npm run demo: prints the URL and backend, serves, and exits cleanly on SIGTERM', async () => {
    const serverFile = fileURLToPath(new URL('../demo/server.ts', import.meta.url));
    const child = spawn(process.execPath, ['--import', 'tsx', serverFile], {
      env: { ...process.env, PORT: '0', REDIS_URL: '', UPSTASH_REDIS_REST_URL: '', KV_REST_API_URL: '' },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    try {
      const [line] = (await once(child.stdout, 'data')) as [Buffer];
      const match = /^edge-sse demo on (http:\/\/127\.0\.0\.1:\d+) \(backend: memory\)\n$/.exec(line.toString());
      expect(match, line.toString()).not.toBeNull();
      const page = await fetch(match![1]!);
      expect(page.status).toBe(200);

      child.kill('SIGTERM');
      const [code] = await once(child, 'exit');
      expect(code).toBe(0);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  });

  it('the CLI refuses a bad PORT with a clear message', async () => {
    const serverFile = fileURLToPath(new URL('../demo/server.ts', import.meta.url));
    const child = spawn(process.execPath, ['--import', 'tsx', serverFile], {
      env: { ...process.env, PORT: 'eighty' },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const [code] = await once(child, 'exit');
    expect(code).toBe(1);
    expect(stderr).toContain('PORT must be a whole number from 0 to 65535, got "eighty"');
  });
});
