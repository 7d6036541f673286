/**
 * edge-sse/resumable on Cloudflare Workers, for real: the built package bundled as a user's bundler
 * would, in workerd (miniflare), over the Upstash REST protocol to an edge-sse bridge in front of
 * the real Redis — no TCP. Its first client leaves mid-answer; `ctx.waitUntil` keeps the producer
 * going, and another request resumes the whole answer. (The built entry imports no Node module.)
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { build } from 'esbuild';
import { Redis } from 'ioredis';
import { Miniflare } from 'miniflare';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { redisBackend } from '../../src/backends/redis/index.ts';
import { type Bridge, createBridge } from '../../src/bridge/index.ts';
import { ROOT, ensureBuilt } from '../examples/helpers.ts';
import { REDIS_URL, deleteKeysWithPrefix, uniquePrefix } from '../helpers/redis.ts';

const TOKEN = randomBytes(16).toString('hex');
const PREFIX = uniquePrefix('resumable-workers');
let bridge: Bridge;
let worker: Miniflare;
let base: string;
/** The test's own look at the store, over TCP. */
const store = redisBackend({ url: REDIS_URL, prefix: PREFIX });

/** 40 words, one every 25 ms (~1 s); `/create?id=` produces, `/resume?id=` follows. */
const WORKER = `
  import { createResumableStreamContext } from 'edge-sse/resumable';
  import { upstashBackend } from 'edge-sse/upstash';
  export default {
    async fetch(request, env, ctx) {
      const url = new URL(request.url);
      const backend = upstashBackend({ url: env.BRIDGE_URL, token: env.BRIDGE_TOKEN, prefix: env.PREFIX });
      const streams = createResumableStreamContext({ backend, waitUntil: (promise) => ctx.waitUntil(promise) });
      const id = url.searchParams.get('id');
      const respond = (stream) =>
        stream === undefined ? new Response('no such stream', { status: 404 })
        : stream === null ? new Response('done', { status: 422 })
        // (text/event-stream: workerd would compress, and so hold back, other text)
        : new Response(stream.pipeThrough(new TextEncoderStream()), { headers: { 'content-type': 'text/event-stream' } });
      if (url.pathname === '/create') {
        let word = 0;
        const source = () => new ReadableStream({
          async pull(controller) {
            await new Promise((resolve) => setTimeout(resolve, 25));
            if (word === 40) return controller.close();
            controller.enqueue('w' + word++ + ' ');
          },
        });
        return respond(await streams.resumableStream(id, source));
      }
      if (url.pathname === '/resume') return respond(await streams.resumeExistingStream(id));
      return new Response('not found', { status: 404 });
    },
  };
`;

function importsOf(entry: string, seen = new Set<string>()): string[] {
  if (seen.has(entry)) return [];
  seen.add(entry);
  const code = readFileSync(entry, 'utf8');
  const specifiers = [
    ...code.matchAll(/\b(?:from|import)\s*\(?\s*["']([^"']+)["']/g),
    ...code.matchAll(/\brequire\(\s*["']([^"']+)["']\s*\)/g),
  ].map((match) => match[1]!);
  return specifiers.flatMap((specifier) => (specifier.startsWith('.') ? importsOf(resolve(dirname(entry), specifier), seen) : [specifier]));
}

beforeAll(async () => {
  await ensureBuilt();
  bridge = await createBridge({ token: TOKEN, redis: REDIS_URL });
  const bundled = await build({
    stdin: { contents: WORKER, resolveDir: ROOT, loader: 'js' },
    bundle: true,
    format: 'esm',
    platform: 'neutral',
    conditions: ['workerd', 'worker', 'import'],
    write: false,
  });
  worker = new Miniflare({
    modules: true,
    script: bundled.outputFiles[0]!.text,
    compatibilityDate: '2026-04-20',
    bindings: { BRIDGE_URL: bridge.url, BRIDGE_TOKEN: TOKEN, PREFIX },
    host: '127.0.0.1',
    port: 0,
    cf: false,
  });
  base = (await worker.ready).toString().replace(/\/$/, '');
}, 120_000);

afterAll(async () => {
  await worker?.dispose();
  await store.close();
  await bridge?.close();
  const redis = new Redis(REDIS_URL);
  await deleteKeysWithPrefix(redis, PREFIX);
  redis.disconnect();
});

it('dist/resumable.js and the chunks it loads import no Node module', () => {
  const imports = importsOf(join(ROOT, 'dist', 'resumable.js'));
  expect(imports.filter((specifier) => specifier.startsWith('node:') || builtinModules.includes(specifier))).toEqual([]);
});

it('in workerd: the first client leaves mid-answer, waitUntil keeps the producer going, another request resumes it all', async () => {
  const id = `workers-${randomBytes(4).toString('hex')}`;
  const expected = Array.from({ length: 40 }, (_, n) => `w${n} `).join('');
  expect((await fetch(`${base}/resume?id=${id}`)).status).toBe(404);
  const aborter = new AbortController();
  const first = await fetch(`${base}/create?id=${id}`, { signal: aborter.signal });
  const reader = first.body!.getReader();
  let seen = '';
  while (!seen.includes('w3 ')) seen += new TextDecoder().decode((await reader.read()).value);
  aborter.abort(); // the client reloaded
  const resumed = await fetch(`${base}/resume?id=${id}`);
  const [endedYet] = await store.tail([`resumable-stream/${id}~end`], 0);
  expect(endedYet!.head).toBe('0-0'); // the answer was still being produced when its client left
  expect(resumed.status).toBe(200);
  expect(await resumed.text()).toBe(expected);
  expect((await fetch(`${base}/resume?id=${id}`)).status).toBe(422); // done: null, as resumable-stream
  // A second create of the same id resumes (or answers done), never runs the source again.
  expect((await fetch(`${base}/create?id=${id}`)).status).toBe(422);
});
