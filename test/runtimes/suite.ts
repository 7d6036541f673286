/**
 * The built package under another runtime's own server (test/runtimes/server.mjs under Deno.serve
 * or Bun.serve, with its defaults), driven from here over HTTP and judged by eventsource-parser:
 * on the memory backend, the Upstash backend through the bridge over the real Redis, and the TCP
 * backend (ioredis inside the runtime) over the same Redis.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { StreamStats } from '../../src/index.ts';
import { ROOT, ensureBuilt, run, sleep, until } from '../examples/helpers.ts';
import { useBridge } from '../helpers/bridge.ts';
import { REDIS_URL } from '../helpers/redis.ts';
import { SSEReader } from '../helpers/sse.ts';
import { type RuntimeName, type RuntimeServer, runtimeCommand, startRuntimeServer } from './runtimes.ts';

const BACKENDS = ['memory', 'upstash', 'redis'] as const;
type BackendName = (typeof BACKENDS)[number] | 'quiet';

/** Bun.serve closes a connection after 10 s without traffic unless told otherwise (`idleTimeout`). */
const BUN_IDLE_TIMEOUT_MS = 10_000;

interface OpenStream {
  reader: SSEReader;
  close(): Promise<void>;
}

export function runtimeSuite(runtime: RuntimeName): void {
  const redisScope = useBridge(`runtimes-${runtime}`);
  let server: RuntimeServer;
  let prefix: string;
  let redis: Redis;
  let quiet: { stream: OpenStream; openedAt: number };

  const channel = (name: string) => `${name}-${randomBytes(3).toString('hex')}`;

  async function openStream(backend: BackendName, name: string, lastEventId?: string): Promise<OpenStream> {
    const aborter = new AbortController();
    const headers: Record<string, string> = lastEventId ? { 'last-event-id': lastEventId } : {};
    const response = await fetch(`${server.base}/stream/${backend}?channel=${name}`, { headers, signal: aborter.signal });
    expect(response.status, await peekError(response)).toBe(200);
    const reader = new SSEReader(response);
    return {
      reader,
      async close() {
        await reader.cancel();
        aborter.abort();
      },
    };
  }

  async function send(backend: BackendName, body: object): Promise<{ status: number; body: { id?: string; code?: string } }> {
    const response = await fetch(`${server.base}/send/${backend}`, { method: 'POST', body: JSON.stringify(body) });
    return { status: response.status, body: (await response.json()) as { id?: string; code?: string } };
  }

  async function published(backend: BackendName, name: string, data: unknown): Promise<string> {
    const answer = await send(backend, { type: 'update', data, channel: name });
    expect(answer.status, JSON.stringify(answer.body)).toBe(200);
    return answer.body.id!;
  }

  async function stats(backend: BackendName): Promise<StreamStats> {
    return (await (await fetch(`${server.base}/stats/${backend}`)).json()) as StreamStats;
  }

  beforeAll(async () => {
    await ensureBuilt();
    prefix = redisScope.prefix();
    server = await startRuntimeServer(runtime, join(ROOT, 'test', 'runtimes', 'server.mjs'), {
      BRIDGE_URL: redisScope.bridge.url,
      BRIDGE_TOKEN: redisScope.token,
      REDIS_URL,
      PREFIX: prefix,
    });
    redis = new Redis(REDIS_URL);
    // Opened first and checked last: it is left quiet while the other tests run.
    quiet = { openedAt: Date.now(), stream: await openStream('quiet', channel('quiet')) };
    await quiet.stream.reader.waitForReady();
  }, 60_000);

  afterAll(async () => {
    await quiet?.stream.close();
    await server?.stop();
    redis?.disconnect();
  });

  for (const backend of BACKENDS) {
    describe(`${backend} backend`, () => {
      it("stops reading when the client leaves: the handler's stats() go back to zero", async () => {
        const name = channel('leave');
        const bridgeSubscriptions = redisScope.bridge.stats().openSubscriptions;
        const stream = await openStream(backend, name);
        await stream.reader.waitForReady();
        // The TCP backend's blocking read may still be connecting when sse:ready arrives.
        const reading = { openStreams: 1, readers: 1, timers: 1, subscriptions: backend === 'memory' ? 0 : 1 };
        await until(async () => matches(await stats(backend), reading), 'the stream to read');
        if (backend === 'upstash') expect(redisScope.bridge.stats().openSubscriptions).toBe(bridgeSubscriptions + 1);

        await stream.close();
        await until(async () => (await stats(backend)).openStreams === 0, `${runtime} to notice the client left`);
        // The blocking read ends a moment after its last channel is unfollowed (its BLOCK is cut short).
        const idle = { openStreams: 0, readers: 0, timers: 0, subscriptions: 0 };
        await until(async () => matches(await stats(backend), idle), 'the reads to stop');
        expect(await stats(backend)).toMatchObject(idle);
        if (backend === 'upstash') {
          await until(() => redisScope.bridge.stats().openSubscriptions === bridgeSubscriptions, 'the bridge subscription to end');
        }
      });

      it(`streams what sendEvent publishes from ${runtime}, in order`, async () => {
        const name = channel('live');
        const stream = await openStream(backend, name);
        try {
          await stream.reader.waitForReady();
          const ids: string[] = [];
          for (const n of [1, 2, 3]) ids.push(await published(backend, name, { n }));
          await stream.reader.waitForMessages(3);
          expect(stream.reader.messages.map(({ event, data }) => ({ event, data: JSON.parse(data) }))).toEqual([
            { event: 'update', data: { n: 1 } },
            { event: 'update', data: { n: 2 } },
            { event: 'update', data: { n: 3 } },
          ]);
          if (backend !== 'memory') {
            const entries = await redis.xrange(`${prefix}{${name}}`, '-', '+');
            expect(entries.map(([id]) => id)).toEqual(ids);
          }
        } finally {
          await stream.close();
        }
      });

      it('resumes from Last-Event-ID: what was sent while away, then live, nothing lost', async () => {
        const name = channel('resume');
        const first = await openStream(backend, name);
        await first.reader.waitForReady();
        await published(backend, name, 'a');
        await first.reader.waitForMessages(1);
        const lastId = first.reader.messages[0]!.id!;
        await first.close();

        await published(backend, name, 'b');
        await published(backend, name, 'c');
        const second = await openStream(backend, name, lastId);
        try {
          await second.reader.waitForMessages(2);
          await published(backend, name, 'd');
          await second.reader.waitForMessages(3);
          expect(second.reader.messages.map(({ data }) => data)).toEqual(['b', 'c', 'd']);
        } finally {
          await second.close();
        }
      });
    });
  }

  it('downloads nothing: a module that is not on disk fails to load instead of being fetched', async () => {
    const probe = mkdtempSync(join(tmpdir(), `edge-sse-${runtime}-probe-`));
    try {
      const imports =
        runtime === 'deno'
          ? ["import 'npm:is-odd@3.0.1';", "import 'jsr:@std/fmt@1/colors';", "import 'https://deno.land/std@0.224.0/fmt/colors.ts';"]
          : ["import 'is-odd';"]; // no node_modules next to it: Bun would auto-install
      for (const line of imports) {
        writeFileSync(join(probe, 'probe.mjs'), `${line}\nconsole.log('loaded');\n`);
        const { command, args, env, cleanUp } = runtimeCommand(runtime, join(probe, 'probe.mjs'));
        const result = await run(command, args, { cwd: probe, env, timeoutMs: 20_000 }).finally(cleanUp);
        expect(result.code, `${line}\n${result.output}`).not.toBe(0);
        expect(result.output).not.toContain('loaded');
      }
    } finally {
      rmSync(probe, { recursive: true, force: true });
    }
  });

  it('refuses an invalid event: sendEvent throws ValidationError, the route answers 400', async () => {
    expect(await send('memory', { type: 'bad type\n', data: 1, channel: 'x' })).toMatchObject({
      status: 400,
      body: { code: 'INVALID_EVENT_TYPE' },
    });
  });

  it(`keeps a quiet stream open past Bun.serve's ${BUN_IDLE_TIMEOUT_MS / 1000} s idle timeout, with no option set`, async () => {
    const { stream, openedAt } = quiet;
    // The claim is about time itself. Bun cuts an idle connection 10–12 s after its last byte
    // (its timers tick coarsely): a stream still open 14 s after opening has outlived that.
    await sleep(Math.max(0, openedAt + BUN_IDLE_TIMEOUT_MS + 4000 - Date.now()));
    expect(stream.reader.ended, `the ${runtime} server closed the quiet stream`).toBe(false);
    // Under Bun, a heartbeat (after the retry hint's comment) is what kept it open.
    if (runtime === 'bun') expect(stream.reader.comments.length).toBeGreaterThanOrEqual(2);
    const name = new URL(stream.reader.response.url).searchParams.get('channel')!;
    await published('quiet', name, 'still here');
    await stream.reader.waitForMessages(1);
  }, 30_000);
}

function matches(actual: object, expected: object): boolean {
  return Object.entries(expected).every(([key, value]) => (actual as Record<string, unknown>)[key] === value);
}

async function peekError(response: Response): Promise<string> {
  return response.status === 200 ? '' : await response.clone().text();
}
