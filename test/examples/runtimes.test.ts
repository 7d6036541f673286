/**
 * The core claims to need only web-standard APIs. Proof: the built `edge-sse` and
 * `edge-sse/upstash` import no Node module, and they run inside edge-runtime (Vercel's edge
 * runtime emulation: a V8 context with web APIs and no `process`, `require` or `Buffer`),
 * streaming through the bridge and the real Redis. Plus the plain node:http example.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { EdgeRuntime, runServer } from 'edge-runtime';
import { build } from 'esbuild';
import { EventSource } from 'eventsource';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Bridge, createBridge } from '../../src/bridge/index.ts';
import { REDIS_URL, deleteKeysWithPrefix } from '../helpers/redis.ts';
import { SSEReader } from '../helpers/sse.ts';
import { ROOT, type Service, ensureBuilt, freePort, startService, until, waitForHttp } from './helpers.ts';

const RUN = randomBytes(4).toString('hex');
const channel = (name: string) => `test-runtimes-${RUN}-${name}`;
const TOKEN = randomBytes(16).toString('hex');
let bridge: Bridge;

beforeAll(async () => {
  await ensureBuilt();
  bridge = await createBridge({ token: TOKEN, redis: REDIS_URL });
}, 120_000);

afterAll(async () => {
  await bridge?.close();
  const redis = new Redis(REDIS_URL);
  await deleteKeysWithPrefix(redis, `sse:test-runtimes-${RUN}-`);
  redis.disconnect();
});

/** Every module specifier a built file imports, following its relative imports (shared chunks). */
function importsOf(entry: string, seen = new Set<string>()): string[] {
  if (seen.has(entry)) return [];
  seen.add(entry);
  const code = readFileSync(entry, 'utf8');
  const specifiers = [
    ...code.matchAll(/\bfrom\s*["']([^"']+)["']/g),
    ...code.matchAll(/\bimport\s*["']([^"']+)["']/g),
    ...code.matchAll(/\bimport\(\s*["']([^"']+)["']\s*\)/g),
    ...code.matchAll(/\brequire\(\s*["']([^"']+)["']\s*\)/g),
  ].map((match) => match[1]!);
  return specifiers.flatMap((specifier) => (specifier.startsWith('.') ? importsOf(resolve(dirname(entry), specifier), seen) : [specifier]));
}

const isNodeModule = (specifier: string) => specifier.startsWith('node:') || builtinModules.includes(specifier.split('/')[0]!);

describe('the built core imports no Node module', () => {
  for (const entry of ['index.js', 'index.cjs', 'backend.js', 'backend.cjs', 'upstash.js', 'upstash.cjs']) {
    it(`dist/${entry} and the chunks it loads`, () => {
      const imports = importsOf(join(ROOT, 'dist', entry));
      expect(imports.filter(isNodeModule)).toEqual([]);
    });
  }

  it('(the check finds them where they are: edge-sse/node and edge-sse/bridge use node:http)', () => {
    expect(importsOf(join(ROOT, 'dist', 'node.js')).filter(isNodeModule)).toContain('http');
    expect(importsOf(join(ROOT, 'dist', 'bridge.js')).filter(isNodeModule)).toContain('http');
  });
});

describe('edge-sse inside edge-runtime (Vercel edge runtime emulation)', () => {
  let server: Awaited<ReturnType<typeof runServer>>;
  let runtime: InstanceType<typeof EdgeRuntime>;

  beforeAll(async () => {
    // A Worker-style script, bundled from the package entry points as a user's bundler would.
    const worker = `
      import { ValidationError, createStreamHandler, sendEvent } from 'edge-sse';
      import { upstashBackend } from 'edge-sse/upstash';
      const backend = upstashBackend({ url: BRIDGE_URL, token: BRIDGE_TOKEN });
      const stream = createStreamHandler({ backend, keepAliveMs: 1000 });
      addEventListener('fetch', (event) => event.respondWith((async () => {
        const { pathname } = new URL(event.request.url);
        if (pathname === '/stream') return stream(event.request);
        const { type, data, channel } = await event.request.json();
        try {
          return Response.json({ id: await sendEvent(type, data, { backend, channel }) });
        } catch (error) {
          if (error instanceof ValidationError) return Response.json({ error: error.message }, { status: 400 });
          throw error;
        }
      })()));
    `;
    const bundled = await build({
      stdin: { contents: worker, resolveDir: ROOT, loader: 'js' },
      bundle: true,
      format: 'iife',
      platform: 'neutral',
      target: 'es2022',
      write: false,
      logLevel: 'silent',
      define: { BRIDGE_URL: JSON.stringify(bridge.url), BRIDGE_TOKEN: JSON.stringify(TOKEN) },
    });
    runtime = new EdgeRuntime({ initialCode: bundled.outputFiles[0]!.text });
    server = await runServer({ runtime, port: 0, host: '127.0.0.1' });
  }, 60_000);

  afterAll(async () => {
    await server?.close();
  });

  it('is a web-only sandbox: no process, require, Buffer or setImmediate; fetch and streams', () => {
    const globals = ['process', 'require', 'Buffer', 'setImmediate', 'fetch', 'ReadableStream', 'TextEncoder', 'AbortController'];
    const types = Object.fromEntries(globals.map((name) => [name, runtime.evaluate(`typeof ${name}`)]));
    expect(types).toEqual({
      process: 'undefined',
      require: 'undefined',
      Buffer: 'undefined',
      setImmediate: 'undefined',
      fetch: 'function',
      ReadableStream: 'function',
      TextEncoder: 'function',
      AbortController: 'function',
    });
  });

  it('streams events published through the Upstash backend (bridge → Redis)', async () => {
    const name = channel('edge');
    const source = new EventSource(`${server.url}stream?channel=${name}`);
    const received: { type: string; data: string }[] = [];
    source.addEventListener('update', (event) => received.push({ type: event.type, data: event.data }));
    try {
      await new Promise((done, fail) => {
        source.addEventListener('sse:ready', done, { once: true });
        source.addEventListener('error', fail, { once: true });
      });
      for (const n of [1, 2, 3]) {
        const res = await fetch(`${server.url}send`, {
          method: 'POST',
          body: JSON.stringify({ type: 'update', data: { n }, channel: name }),
        });
        expect(res.status).toBe(200);
      }
      await until(() => received.length === 3, 'three events');
      expect(received.map((event) => JSON.parse(event.data).n)).toEqual([1, 2, 3]);
    } finally {
      source.close();
    }
  });

  it('resumes from Last-Event-ID, sends heartbeats, and refuses invalid events', async () => {
    const name = channel('resume');
    const send = (data: string) =>
      fetch(`${server.url}send`, { method: 'POST', body: JSON.stringify({ type: 'message', data, channel: name }) });
    const first = new SSEReader(await fetch(`${server.url}stream?channel=${name}`));
    await first.waitFor(() => first.events.length > 0, 'sse:ready');
    await send('a');
    await first.waitForMessages(1);
    await first.waitFor(() => first.comments.length > 1, 'a heartbeat comment', 3000);
    await first.cancel();
    await send('b');
    await send('c');
    const second = new SSEReader(
      await fetch(`${server.url}stream?channel=${name}`, { headers: { 'last-event-id': first.messages[0]!.id! } }),
    );
    await second.waitForMessages(2);
    expect(second.messages.map((event) => event.data)).toEqual(['b', 'c']);
    await second.cancel();
    expect((await fetch(`${server.url}send`, { method: 'POST', body: JSON.stringify({ type: 'bad type\n', data: 1 }) })).status).toBe(400);
  });
});

describe('examples/node/server.mjs (plain node:http)', () => {
  let service: Service;
  let base: string;

  beforeAll(async () => {
    const port = await freePort();
    service = startService(process.execPath, [join(ROOT, 'examples', 'node', 'server.mjs')], {
      cwd: ROOT,
      env: { ...process.env, PORT: String(port), UPSTASH_REDIS_REST_URL: bridge.url, UPSTASH_REDIS_REST_TOKEN: TOKEN },
    });
    base = `http://127.0.0.1:${port}`;
    await waitForHttp(`${base}/`, service);
  }, 30_000);

  afterAll(async () => {
    await service?.stop();
  });

  it('is the code docs/deploying.md shows', () => {
    const docs = readFileSync(join(ROOT, 'docs', 'deploying.md'), 'utf8');
    const code = readFileSync(join(ROOT, 'examples', 'node', 'server.mjs'), 'utf8');
    expect(docs).toContain(code.trim());
  });

  it('streams what /send publishes, and stops reading when the client leaves', async () => {
    const name = channel('node');
    const before = bridge.stats().subscriptions;
    const source = new EventSource(`${base}/stream?channel=${name}`);
    const received: string[] = [];
    source.addEventListener('message', (event) => received.push(event.data));
    await new Promise((done, fail) => {
      source.addEventListener('sse:ready', done, { once: true });
      source.addEventListener('error', fail, { once: true });
    });
    await until(() => bridge.stats().subscriptions > before, 'the server to subscribe');
    const open = bridge.stats().openSubscriptions;
    const res = await fetch(`${base}/send`, { method: 'POST', body: JSON.stringify({ type: 'message', data: 'hi', channel: name }) });
    expect(res.status).toBe(200);
    await until(() => received.length === 1, 'the event');
    expect(received).toEqual(['hi']);
    source.close();
    await until(() => bridge.stats().openSubscriptions < open, 'the subscription to close');
    expect((await fetch(`${base}/send`, { method: 'POST', body: 'not json' })).status).toBe(400);
  });
});
