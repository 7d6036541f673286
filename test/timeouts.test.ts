/**
 * A hung store (Redis stopped with SIGSTOP, an HTTP endpoint that accepts and never answers) must
 * fail calls within `timeoutMs` with a BackendError that says what timed out — not hold
 * `sendEvent` or a new stream's response for as long as the stall lasts. Once the store answers
 * again, streams resume with nothing lost.
 */
import { type Server, type ServerResponse, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { type Bridge, createBridge } from '../src/bridge/index.js';
import { redisBackend } from '../src/backends/redis/index.js';
import { upstashBackend } from '../src/backends/upstash/index.js';
import { type Backend, BackendError, type CloseReason, createSSE } from '../src/index.js';
import { useBridge } from './helpers/bridge.js';
import { type OwnRedis, startOwnRedis } from './helpers/redis-server.js';
import { SSEReader, streamRequest } from './helpers/sse.js';
import { untilResolved, waitUntil } from './helpers/wait.js';

const TIMEOUT_MS = 1500;
const TOKEN = 'timeouts-token';

async function rejection(promise: Promise<unknown>): Promise<{ error: BackendError; ms: number }> {
  const started = Date.now();
  const error = await promise.then(
    () => {
      throw new Error('expected a rejection');
    },
    (failure: unknown) => failure,
  );
  expect(error).toBeInstanceOf(BackendError);
  return { error: error as BackendError, ms: Date.now() - started };
}

describe.each([
  ['redis (TCP)', 'tcp'],
  ['upstash subscribe, through the bridge', 'subscribe'],
  ['upstash poll, through the bridge', 'poll'],
] as const)('a hung Redis: %s', (_, mode) => {
  let redis: OwnRedis;
  let bridge: Bridge | undefined;
  let backend: Backend;

  beforeAll(async () => {
    redis = await startOwnRedis();
    if (mode === 'tcp') backend = redisBackend({ url: redis.url, timeoutMs: TIMEOUT_MS, blockMs: 1000 });
    else {
      bridge = await createBridge({ token: TOKEN, redis: redis.url });
      backend = upstashBackend({ url: bridge.url, token: TOKEN, mode, pollIntervalMs: 200, timeoutMs: TIMEOUT_MS });
    }
  });

  afterAll(async () => {
    redis.resume();
    await backend.close();
    await bridge?.close();
    await redis.dispose();
  });

  it('fails publishing and new streams within timeoutMs, then resumes with nothing lost', async () => {
    const errors: unknown[] = [];
    const reasons: CloseReason[] = [];
    const sse = createSSE({
      backend,
      backendRetryMs: 1000,
      onError: (error) => errors.push(error),
      onDisconnect: (_, reason) => reasons.push(reason),
    });
    const live = new SSEReader(await sse.handler(streamRequest('?channel=hung')));
    await live.waitForReady();
    await sse.sendEvent('n', 'before', { channel: 'hung' });
    await live.waitForMessages(1);

    redis.pause();
    const publish = await rejection(sse.sendEvent('n', 'during', { channel: 'hung' }));
    expect(publish.error.code).toBe('BACKEND_TIMEOUT');
    expect(publish.error.message).toMatch(new RegExp(`\\(EVALSHA\\) did not answer within ${TIMEOUT_MS} ms \\(option timeoutMs\\)`));
    expect(publish.error.message).toMatch(/may still have been stored; retry with the same idempotencyKey/);
    expect(publish.ms).toBeGreaterThanOrEqual(TIMEOUT_MS - 50);
    expect(publish.ms).toBeLessThan(TIMEOUT_MS * 3);

    // A stream on a channel nobody reads yet needs the store to start: its answer comes, and ends
    // with a retry hint, instead of the request hanging.
    const started = Date.now();
    const fresh = new SSEReader(await sse.handler(streamRequest('?channel=fresh')));
    await fresh.waitForEnd(TIMEOUT_MS * 3);
    expect(Date.now() - started).toBeLessThan(TIMEOUT_MS * 3);
    expect(fresh.retries.at(-1)).toBeGreaterThanOrEqual(1000);
    expect(fresh.comments).toContain('backend unavailable');
    const starting = /(XREVRANGE\)|\/subscribe\/\S+ \(until the subscription is confirmed\)) did not answer within 1500 ms/;
    expect(errors.some((error) => (error as BackendError).code === 'BACKEND_TIMEOUT' && starting.test((error as Error).message))).toBe(
      true,
    );

    // A live stream's feed is bounded too: polling fails its XREAD, the TCP feed its blocking read
    // (blockMs + timeoutMs); both end the stream with a retry hint. An idle subscription has
    // nothing to wait for, and stays.
    if (mode !== 'subscribe') await live.waitForEnd(1000 + TIMEOUT_MS * 3);
    expect(reasons.filter((reason) => reason === 'backend')).toHaveLength(mode === 'subscribe' ? 1 : 2);
    await live.cancel();

    redis.resume();
    await untilResolved(() => sse.sendEvent('n', 'after', { channel: 'hung' }), 5000);
    const resumed = new SSEReader(await sse.handler(streamRequest('?channel=hung', { 'Last-Event-ID': live.lastId! })));
    await resumed.waitFor(() => resumed.messages.some((m) => m.data === 'after'), 'the event published after the stall');
    // The timed-out publish reached Redis before it stopped answering: it was stored, once.
    expect([...live.messages, ...resumed.messages].map((m) => m.data)).toEqual(['before', 'during', 'after']);
    await resumed.cancel();
  }, 30_000);

  if (mode === 'tcp') {
    it('bounds a blocking read by blockMs + timeoutMs: the live stream ends, it does not wait on the stall', async () => {
      const reasons: CloseReason[] = [];
      const errors: unknown[] = [];
      const sse = createSSE({
        backend,
        backendRetryMs: 1000,
        onError: (error) => errors.push(error),
        onDisconnect: (_, reason) => reasons.push(reason),
      });
      const live = new SSEReader(await sse.handler(streamRequest('?channel=blocked')));
      await live.waitForReady();
      await waitUntil(() => backend.stats().subscriptions === 1); // the XREAD BLOCK is waiting on Redis
      redis.pause();
      try {
        await live.waitForEnd(1000 + TIMEOUT_MS * 3);
        expect(reasons).toEqual(['backend']);
        expect((errors[0] as BackendError).code).toBe('BACKEND_TIMEOUT');
        expect((errors[0] as Error).message).toMatch(/XREAD BLOCK 1000\) did not answer within 2500 ms/);
      } finally {
        redis.resume();
      }
    }, 30_000);
  }
});

/** Accepts every request and answers nothing, or only the status line and headers. */
async function silentServer(mode: 'nothing' | 'headers only'): Promise<{ url: string; held(): number; close(): Promise<void> }> {
  const held: ServerResponse[] = [];
  const server: Server = createServer((_, res) => {
    held.push(res);
    if (mode === 'headers only') {
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.write('[{"result":');
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    held: () => held.length,
    async close() {
      for (const res of held) res.destroy();
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

describe.each(['nothing', 'headers only'] as const)('an HTTP endpoint that answers %s', (answer) => {
  let endpoint: Awaited<ReturnType<typeof silentServer>>;

  beforeAll(async () => {
    endpoint = await silentServer(answer);
  });
  afterAll(() => endpoint.close());

  afterEach(() => void vi.useRealTimers());

  /**
   * Starts `call` once the fake clock runs the bounds' timers, and advances it to timeoutMs: the
   * call must still be waiting 1 ms before, and be settled at it.
   */
  async function settledAtTimeout<T>(call: () => Promise<T>): Promise<{ value?: T; error?: unknown }> {
    const held = endpoint.held();
    const outcome: { settled: boolean; value?: T; error?: unknown } = { settled: false };
    call().then(
      (value) => Object.assign(outcome, { settled: true, value }),
      (error: unknown) => Object.assign(outcome, { settled: true, error }),
    );
    await waitUntil(() => endpoint.held() > held); // at the endpoint: its bound is running
    await vi.advanceTimersByTimeAsync(TIMEOUT_MS - 1);
    await new Promise((resolve) => setImmediate(resolve));
    expect(outcome.settled, `settled before timeoutMs (${TIMEOUT_MS} ms)`).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    await waitUntil(() => outcome.settled, 2000); // no more fake time: only the abort has to reach the call
    return outcome;
  }

  for (const mode of ['subscribe', 'poll'] as const) {
    it(`fails sendEvent and a new stream (${mode}) at timeoutMs`, async () => {
      // Only the bounds' timers are fake: the sockets, and this test's polls, run on real time.
      vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
      const errors: unknown[] = [];
      const backend = upstashBackend({ url: endpoint.url, token: 't', mode, timeoutMs: TIMEOUT_MS });
      const sse = createSSE({ backend, backendRetryMs: 1000, onError: (error) => errors.push(error) });

      const publish = (await settledAtTimeout(() => sse.sendEvent('n', 'lost?'))).error;
      expect(publish).toBeInstanceOf(BackendError);
      expect((publish as BackendError).code).toBe('BACKEND_TIMEOUT');
      expect((publish as Error).message).toContain(`POST ${endpoint.url}/pipeline (EVALSHA) did not answer within ${TIMEOUT_MS} ms`);

      // The stream's answer waits for the store, and comes, ending with a retry hint, at timeoutMs.
      const reader = new SSEReader((await settledAtTimeout(() => sse.handler(streamRequest('?channel=silent')))).value!);
      await reader.waitForEnd();
      expect(reader.retries.at(-1)).toBeGreaterThanOrEqual(1000);
      expect((errors[0] as BackendError).code).toBe('BACKEND_TIMEOUT');
      // Subscribe mode's first request is the subscription or a command before it (whichever the
      // feed sends first); either way the stream is told which one timed out.
      const called =
        mode === 'subscribe'
          ? '(subscribe/\\S+ \\(until the subscription is confirmed\\)|pipeline \\([A-Z, ]+\\))'
          : 'pipeline \\(XREVRANGE\\)';
      expect((errors[0] as Error).message).toMatch(new RegExp(`POST ${endpoint.url}/${called} did not answer within ${TIMEOUT_MS} ms`));
      await backend.close();
    });
  }

  it("a caller's own signal still aborts first", async () => {
    const backend = upstashBackend({ url: endpoint.url, token: 't', timeoutMs: 60_000 });
    const aborter = new AbortController();
    const held = endpoint.held();
    const tail = backend.tail(['x'], 0, { signal: aborter.signal });
    await waitUntil(() => endpoint.held() > held); // the request is at the endpoint, waiting for an answer
    aborter.abort(new Error('caller gave up'));
    await expect(tail).rejects.toThrow('caller gave up');
  });
});

describe('a subscription that is answered but never confirmed', () => {
  const shared = useBridge('timeouts');
  let server: Server;
  let url: string;

  beforeAll(async () => {
    // Commands reach the real Redis through the bridge; /subscribe answers with headers and a
    // comment, and never the confirmation.
    server = createServer(async (req, res) => {
      if (req.url!.startsWith('/subscribe/')) {
        res.writeHead(200, { 'Content-Type': 'text/event-stream' });
        res.write(': hello\n\n');
        return;
      }
      const chunks: Buffer[] = [];
      for await (const chunk of req) chunks.push(chunk as Buffer);
      const answer = await fetch(shared.bridge.url + req.url, {
        method: 'POST',
        headers: { Authorization: `Bearer ${shared.token}`, 'Content-Type': 'application/json' },
        body: Buffer.concat(chunks),
      });
      res.writeHead(answer.status, { 'Content-Type': 'application/json' }).end(await answer.text());
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });

  it('is bounded by timeoutMs until confirmed: the new stream ends with a retry hint', async () => {
    const errors: unknown[] = [];
    const backend = upstashBackend({ url, token: shared.token, prefix: shared.prefix(), timeoutMs: TIMEOUT_MS });
    const sse = createSSE({ backend, backendRetryMs: 1000, onError: (error) => errors.push(error) });
    const reader = new SSEReader(await sse.handler(streamRequest('?channel=unconfirmed')));
    await reader.waitForEnd(TIMEOUT_MS * 3);
    expect(reader.retries.at(-1)).toBeGreaterThanOrEqual(1000);
    expect((errors[0] as BackendError).code).toBe('BACKEND_TIMEOUT');
    expect((errors[0] as Error).message).toMatch(
      new RegExp(`POST ${url}/subscribe/\\S+ \\(until the subscription is confirmed\\) did not answer within ${TIMEOUT_MS} ms`),
    );
    await backend.close();
  });
});
