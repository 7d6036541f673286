import { createHash } from 'node:crypto';
import { type IncomingMessage, type Server, createServer, request as httpRequest } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Client } from '@upstash/qstash';
import { SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Backend, BackendError, ValidationError, createSSE, memoryBackend } from '../src/index.js';
import {
  DEFAULT_IDEMPOTENCY_SECONDS,
  type PublishHandler,
  type PublishHandlerOptions,
  createPublishHandler,
  scheduleEvent,
} from '../src/qstash/index.js';
import { serve } from '../src/adapters/node.js';
import { SSEReader, streamRequest } from './helpers/sse.js';
import { waitUntil } from './helpers/wait.js';

const CURRENT_KEY = 'sig_current_4b9Qm2Lx7Vd1';
const NEXT_KEY = 'sig_next_8Hc3Nw5Rz0Tp';
const ENDPOINT = 'https://app.example.com/api/sse/publish';

interface Claims {
  iss?: string;
  sub?: string;
  body?: string;
  iat?: number;
  nbf?: number;
  exp?: number;
}

/** QStash's body claim: base64url SHA-256 of the raw body, padded as QStash sends it. */
function bodyHash(body: string): string {
  const hash = createHash('sha256').update(body).digest('base64url');
  return hash.padEnd(Math.ceil(hash.length / 4) * 4, '=');
}

/** Signs the way QStash does: HS256 JWT, issuer Upstash, sub = destination, 5-minute lifetime. */
async function sign(body: string, { key = CURRENT_KEY, url = ENDPOINT, claims = {} as Claims } = {}): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  const payload = { iss: 'Upstash', sub: url, body: bodyHash(body), iat: now, nbf: now, exp: now + 300, ...claims };
  return new SignJWT({ ...payload, jti: `jwt_${crypto.randomUUID()}` })
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .sign(new TextEncoder().encode(key));
}

interface Delivery {
  body?: string;
  messageId?: string | null;
  signature?: string | null;
  requestUrl?: string;
  method?: string;
}

let nextMessage = 0;
const newMessageId = () => `msg_test_${++nextMessage}`;

/** A request as QStash delivers it; the signature covers `body` unless one is given. */
async function delivery({ body = event(), messageId, signature, requestUrl = ENDPOINT, method = 'POST' }: Delivery = {}) {
  const headers = new Headers({ 'Content-Type': 'application/json', 'Upstash-Retried': '0' });
  const id = messageId === undefined ? newMessageId() : messageId;
  if (id !== null) headers.set('Upstash-Message-Id', id);
  const jwt = signature === undefined ? await sign(body) : signature;
  if (jwt !== null) headers.set('Upstash-Signature', jwt);
  return new Request(requestUrl, { method, headers, body: method === 'GET' ? undefined : body });
}

function event(fields: Record<string, unknown> = {}): string {
  return JSON.stringify({ type: 'digest', data: { unread: 3 }, channel: 'news', ...fields });
}

function setup(options: Partial<PublishHandlerOptions> = {}) {
  const backend = (options.backend as Backend | undefined) ?? memoryBackend();
  const handler = createPublishHandler({ currentSigningKey: CURRENT_KEY, nextSigningKey: NEXT_KEY, env: {}, ...options, backend });
  const stored = async (channel = 'news') => (await backend.read([{ channel, after: '0-0' }], 100))[0]!.events;
  return { backend, handler, stored };
}

async function errorOf(response: Response, status: number): Promise<string> {
  expect(response.status).toBe(status);
  return ((await response.json()) as { error: string }).error;
}

async function rejection(response: Response): Promise<string> {
  expect(response.headers.get('Upstash-NonRetryable-Error')).toBe('true');
  return errorOf(response, 489);
}

describe('createPublishHandler: signatures, checked by the real Receiver', () => {
  it('publishes a validly signed message and answers its event id', async () => {
    const { handler, stored } = setup();
    const response = await handler(await delivery());
    expect(response.status).toBe(200);
    const { id } = (await response.json()) as { id: string };
    expect(await stored()).toEqual([{ id, type: 'digest', data: '{"unread":3}', json: true }]);
  });

  it('refuses a request without a signature with 401', async () => {
    const { handler, stored } = setup();
    expect(await errorOf(await handler(await delivery({ signature: null })), 401)).toMatch(/Upstash-Signature header is missing/);
    expect(await stored()).toEqual([]);
  });

  it('refuses an expired signature', async () => {
    const { handler, stored } = setup();
    const now = Math.floor(Date.now() / 1000);
    const signature = await sign(event(), { claims: { iat: now - 900, nbf: now - 900, exp: now - 600 } });
    expect(await errorOf(await handler(await delivery({ signature })), 401)).toMatch(/"exp"/);
    expect(await stored()).toEqual([]);
  });

  it('refuses a signature that is not valid yet, beyond the clock tolerance', async () => {
    const { handler } = setup();
    const now = Math.floor(Date.now() / 1000);
    const signature = await sign(event(), { claims: { nbf: now + 60 } });
    expect(await errorOf(await handler(await delivery({ signature })), 401)).toMatch(/"nbf"/);
  });

  it('tolerates a few seconds of clock difference', async () => {
    const { handler } = setup();
    const now = Math.floor(Date.now() / 1000);
    const signature = await sign(event(), { claims: { nbf: now + 2, iat: now + 2 } });
    expect((await handler(await delivery({ signature }))).status).toBe(200);
  });

  it('refuses a signature made with another key', async () => {
    const { handler, stored } = setup();
    const signature = await sign(event(), { key: 'sig_someone_else' });
    expect(await errorOf(await handler(await delivery({ signature })), 401)).toMatch(/signature verification failed/);
    expect(await stored()).toEqual([]);
  });

  it('refuses a token from another issuer', async () => {
    const { handler } = setup();
    const signature = await sign(event(), { claims: { iss: 'Mallory' } });
    expect(await errorOf(await handler(await delivery({ signature })), 401)).toMatch(/"iss"/);
  });

  it('accepts the next key while keys rotate, and the old current key no longer once they have', async () => {
    const during = setup();
    const byNext = await sign(event(), { key: NEXT_KEY });
    expect((await during.handler(await delivery({ signature: byNext }))).status).toBe(200);

    const after = setup({ currentSigningKey: NEXT_KEY, nextSigningKey: 'sig_brand_new_key' });
    expect((await after.handler(await delivery({ signature: await sign(event(), { key: NEXT_KEY }) }))).status).toBe(200);
    const byOldCurrent = await sign(event(), { key: CURRENT_KEY });
    expect((await after.handler(await delivery({ signature: byOldCurrent }))).status).toBe(401);
  });

  it('refuses a body that is not the one signed', async () => {
    const { handler, stored } = setup();
    const signature = await sign(event());
    const tampered = event({ data: { unread: 3000 } });
    expect(await errorOf(await handler(await delivery({ body: tampered, signature })), 401)).toMatch(/body hash does not match/);
    expect(await stored()).toEqual([]);
  });

  it('refuses a signature for another URL', async () => {
    const { handler } = setup();
    const signature = await sign(event(), { url: 'https://other.example.com/api/sse/publish' });
    expect(await errorOf(await handler(await delivery({ signature })), 401)).toMatch(/invalid subject/);
  });

  it('checks against the url option when a proxy changes the URL the handler sees', async () => {
    const internal = 'http://10.0.0.7:3000/api/sse/publish';
    const plain = setup();
    expect((await plain.handler(await delivery({ requestUrl: internal }))).status).toBe(401);
    const behindProxy = setup({ url: ENDPOINT });
    expect((await behindProxy.handler(await delivery({ requestUrl: internal }))).status).toBe(200);
  });

  it('compares URLs in normal form (a bare origin gets its slash)', async () => {
    const { handler } = setup({ url: 'https://app.example.com' });
    const signature = await sign(event(), { url: 'https://app.example.com/' });
    expect((await handler(await delivery({ signature, requestUrl: 'http://internal/' }))).status).toBe(200);
  });

  // The token's sub is the destination exactly as it was published; the request's URL is normalised.
  it.each([
    ['a bare origin', 'https://app.example.com', 'https://app.example.com/'],
    ['an upper-case scheme and host', 'HTTPS://APP.Example.COM/api/sse/publish', ENDPOINT],
    ['a trailing ?', `${ENDPOINT}?`, ENDPOINT],
    ['a default port', 'https://app.example.com:443/api/sse/publish', ENDPOINT],
    ['a fragment', `${ENDPOINT}#top`, ENDPOINT],
  ])('accepts a destination published with %s', async (_, published, requestUrl) => {
    const plain = setup();
    const signature = await sign(event(), { url: published });
    expect((await plain.handler(await delivery({ signature, requestUrl }))).status).toBe(200);
    // The same through the url option, given as it was published.
    const behindProxy = setup({ url: published });
    const again = await sign(event(), { url: published });
    expect((await behindProxy.handler(await delivery({ signature: again, requestUrl: 'http://10.0.0.7/x' }))).status).toBe(200);
  });

  it('still refuses another path or query once normalised', async () => {
    const { handler } = setup();
    for (const other of [
      `${ENDPOINT}?x=1`,
      `${ENDPOINT}/`,
      'https://app.example.com/api/sse/Publish',
      'http://app.example.com/api/sse/publish',
    ]) {
      const signature = await sign(event(), { url: other });
      expect(await errorOf(await handler(await delivery({ signature })), 401), other).toMatch(/invalid subject/);
    }
  });

  it('answers 405 to anything but POST', async () => {
    const { handler } = setup();
    const response = await handler(await delivery({ method: 'GET' }));
    expect(await errorOf(response, 405)).toMatch(/POST/);
    expect(response.headers.get('Allow')).toBe('POST');
  });
});

describe('createPublishHandler: message bodies', () => {
  async function deliverBody(body: string, options: Partial<PublishHandlerOptions> = {}) {
    const { handler, stored } = setup(options);
    return { response: await handler(await delivery({ body })), stored };
  }

  it('publishes string data verbatim and anything else as JSON, to channel sse by default', async () => {
    const { handler, stored } = setup();
    await handler(await delivery({ body: JSON.stringify({ type: 'note', data: 'plain text' }) }));
    await handler(await delivery({ body: JSON.stringify({ type: 'note', data: [1, 'two'] }) }));
    await handler(await delivery({ body: JSON.stringify({ type: 'note', data: null }) }));
    const events = await stored('sse');
    expect(events.map(({ data, json }) => ({ data, json }))).toEqual([
      { data: 'plain text', json: false },
      { data: '[1,"two"]', json: true },
      { data: 'null', json: true },
    ]);
  });

  it.each([
    ['not JSON', '{"type": "digest",', /not JSON/],
    ['an array', '[{"type":"digest","data":1}]', /is an array/],
    ['a string', '"digest"', /is string/],
    ['without data', '{"type":"digest"}', /no "data"/],
    ['with a misspelt field', '{"type":"digest","data":1,"chanel":"news"}', /unknown field\(s\) "chanel"/],
    ['without a type', '{"data":1}', /Invalid event type/],
    ['with a reserved type', '{"type":"sse:ready","data":1}', /reserved/],
    ['with a bad channel', '{"type":"digest","data":1,"channel":"no spaces"}', /Invalid channel/],
    ['with a null channel', '{"type":"digest","data":1,"channel":null}', /Invalid channel null/],
  ])('refuses a body %s with 489 and Upstash-NonRetryable-Error, saying why', async (_, body, reason) => {
    const { response, stored } = await deliverBody(body);
    expect(await rejection(response)).toMatch(reason);
    expect(await stored()).toEqual([]);
  });

  it('refuses data over maxEventBytes as not retryable', async () => {
    const { response } = await deliverBody(event({ data: 'x'.repeat(101) }), { maxEventBytes: 100 });
    expect(await rejection(response)).toMatch(/101 bytes; the limit is 100/);
  });

  it('refuses a delivery without Upstash-Message-Id rather than publish without idempotency', async () => {
    const { handler, stored } = setup();
    expect(await rejection(await handler(await delivery({ messageId: null })))).toMatch(/Upstash-Message-Id header is missing/);
    expect(await stored()).toEqual([]);
  });

  it('leaves nothing behind for a body it refuses: the message id is not taken', async () => {
    const { handler, stored } = setup();
    expect((await handler(await delivery({ messageId: 'msg_fixed', body: '{"type":"digest"}' }))).status).toBe(489);
    const response = await handler(await delivery({ messageId: 'msg_fixed' }));
    expect(await response.json()).toEqual({ id: expect.stringMatching(/^\d+-\d+$/) });
    expect(await stored()).toHaveLength(1);
  });

  it('refuses a message id that cannot be a key, as not retryable', async () => {
    const { handler, stored } = setup();
    expect(await rejection(await handler(await delivery({ messageId: 'm'.repeat(250) })))).toMatch(/not 1–249 printable ASCII/);
    expect(await rejection(await handler(await delivery({ messageId: 'msg_\u00e9' })))).toMatch(/Upstash-Message-Id/);
    expect((await handler(await delivery({ messageId: 'm'.repeat(249) }))).status).toBe(200);
    expect(await stored()).toHaveLength(1);
  });
});

describe('createPublishHandler: body size', () => {
  const MiB = 1024 * 1024;

  /**
   * Peak growth of the process from now: rss and heap + buffers, sampled whenever `sample` is
   * called (as each chunk of a body is made, and on a timer) and at the end.
   */
  function memoryGrowth() {
    const base = process.memoryUsage();
    const peak = { rss: 0, heap: 0 };
    const sample = () => {
      const now = process.memoryUsage();
      peak.rss = Math.max(peak.rss, now.rss - base.rss);
      peak.heap = Math.max(peak.heap, now.heapUsed + now.arrayBuffers - base.heapUsed - base.arrayBuffers);
    };
    const timer = setInterval(sample, 2);
    return {
      sample,
      stop() {
        clearInterval(timer);
        sample();
        return peak;
      },
    };
  }

  /** A body of `total` bytes made as it is read, counting what was read. */
  function lazyBody(total: number, sample: () => void) {
    const chunk = new Uint8Array(MiB).fill(0x61);
    const source = { pulled: 0 };
    const stream = new ReadableStream<Uint8Array>({
      pull(controller) {
        sample();
        if (source.pulled >= total) return controller.close();
        source.pulled += chunk.byteLength;
        controller.enqueue(chunk.slice());
      },
    });
    return { stream, source };
  }

  it('refuses a 256 MiB body with a bogus signature with 413, reading no more than the cap', async () => {
    const { handler, stored } = setup();
    const growth = memoryGrowth();
    const { stream, source } = lazyBody(256 * MiB, growth.sample);
    const request = new Request(ENDPOINT, {
      method: 'POST',
      headers: { 'Upstash-Signature': 'bogus', 'Upstash-Message-Id': newMessageId() },
      body: stream,
      duplex: 'half',
    } as RequestInit);
    const response = await handler(request);
    const peak = growth.stop();
    expect(await errorOf(response, 413)).toMatch(/over 397312 bytes/);
    expect(source.pulled).toBeLessThanOrEqual(397_312 + 2 * MiB);
    expect(peak.heap).toBeLessThan(8 * MiB);
    expect(peak.rss).toBeLessThan(32 * MiB);
    expect(await stored()).toEqual([]);
  });

  it('through HTTP: answers 413 (from Content-Length, or at the cap) without growing the process', async () => {
    const { handler } = setup();
    const server = await serve(handler, { port: 0 });
    const url = new URL(server.url);
    const send = (withLength: boolean, sample: () => void) =>
      new Promise<{ status: number; written: number }>((resolve, reject) => {
        const chunk = Buffer.alloc(MiB, 0x61);
        let written = 0;
        const req = httpRequest({
          host: url.hostname,
          port: url.port,
          method: 'POST',
          path: '/api/sse/publish',
          headers: { 'Upstash-Signature': 'bogus', ...(withLength ? { 'Content-Length': String(256 * MiB) } : {}) },
        });
        req.on('response', (res) => {
          res.resume();
          req.destroy();
          resolve({ status: res.statusCode ?? 0, written });
        });
        req.on('error', (error) => (written > 0 ? undefined : reject(error)));
        const pump = () => {
          while (written < 256 * MiB && !req.destroyed) {
            sample();
            written += MiB;
            if (!req.write(chunk)) return void req.once('drain', pump);
          }
          if (!req.destroyed) req.end();
        };
        pump();
      });
    try {
      for (const withLength of [true, false]) {
        const growth = memoryGrowth();
        const { status, written } = await send(withLength, growth.sample);
        const peak = growth.stop();
        const what = `${withLength ? 'with' : 'without'} Content-Length, ${written / MiB} MiB sent`;
        expect(status, what).toBe(413);
        expect(peak.heap, what).toBeLessThan(16 * MiB);
        expect(peak.rss, what).toBeLessThan(48 * MiB);
      }
    } finally {
      await server.close();
    }
  }, 60_000);

  it('takes any valid message: the cap follows maxEventBytes, for data that escaping makes 6 times longer', async () => {
    const { handler, stored } = setup({ maxEventBytes: 1000 });
    const body = JSON.stringify({ type: 't'.repeat(128), data: '\u0001'.repeat(1000), channel: 'c'.repeat(128) });
    expect(body.length).toBeGreaterThan(6000);
    expect((await handler(await delivery({ body }))).status).toBe(200);
    expect(await stored('c'.repeat(128))).toHaveLength(1);
    const tooBig = await handler(await delivery({ body: ' '.repeat(6 * 1000 + 4097) }));
    expect(await errorOf(tooBig, 413)).toMatch(/over 10096 bytes/);
  });

  it('maxBodyBytes sets the cap', async () => {
    const { handler } = setup({ maxBodyBytes: 100 });
    expect((await handler(await delivery({ body: event({ data: 'x'.repeat(40) }) }))).status).toBe(200);
    expect((await handler(await delivery({ body: event({ data: 'x'.repeat(100) }) }))).status).toBe(413);
  });
});

describe('createPublishHandler: idempotent across QStash retries', () => {
  it('publishes a message id once and answers repeats with its id and duplicate: true', async () => {
    const { handler, stored } = setup();
    const first = await handler(await delivery({ messageId: 'msg_repeat' }));
    const { id } = (await first.json()) as { id: string };
    const again = await handler(await delivery({ messageId: 'msg_repeat' }));
    expect(again.status).toBe(200);
    expect(await again.json()).toEqual({ id, duplicate: true });
    expect((await stored()).map((stored) => stored.id)).toEqual([id]);
  });

  it('publishes distinct message ids with the same body separately', async () => {
    const { handler, stored } = setup();
    await handler(await delivery());
    await handler(await delivery());
    expect(await stored()).toHaveLength(2);
  });

  it('publishes once when the same message arrives concurrently', async () => {
    const { handler, stored } = setup();
    const requests = await Promise.all(Array.from({ length: 5 }, () => delivery({ messageId: 'msg_burst' })));
    const bodies = await Promise.all((await Promise.all(requests.map(handler))).map((response) => response.json()));
    expect(bodies.filter((body) => !('duplicate' in body))).toHaveLength(1);
    expect(new Set(bodies.map((body) => body.id)).size).toBe(1);
    expect(await stored()).toHaveLength(1);
  });

  it('publishes with the idempotency key qstash:<message id> for idempotencySeconds (2 days by default)', async () => {
    const keys: Array<[string | undefined, number | undefined]> = [];
    const inner = memoryBackend();
    const spy = (ttl?: number) => {
      const backend: Backend = {
        ...inner,
        append: (events, retention, options) => (
          keys.push([options?.idempotency?.key, options?.idempotency?.ttlSeconds]), inner.append(events, retention, options)
        ),
      };
      return setup({ backend, idempotencySeconds: ttl }).handler;
    };
    await spy()(await delivery({ messageId: 'msg_a' }));
    await spy(3600)(await delivery({ messageId: 'msg_b' }));
    expect(DEFAULT_IDEMPOTENCY_SECONDS).toBe(172_800);
    expect(keys).toEqual([
      ['qstash:msg_a', 172_800],
      ['qstash:msg_b', 3600],
    ]);
  });

  it('forgets a message id once the window has passed', async () => {
    let now = Date.now();
    const { handler, stored } = setup({ backend: memoryBackend({ now: () => now }), idempotencySeconds: 60 });
    await handler(await delivery({ messageId: 'msg_late' }));
    now += 59_000;
    expect(await (await handler(await delivery({ messageId: 'msg_late' }))).json()).toMatchObject({ duplicate: true });
    now += 2_000;
    expect(await (await handler(await delivery({ messageId: 'msg_late' }))).json()).not.toHaveProperty('duplicate');
    expect(await stored()).toHaveLength(2);
  });

  it('an attempt that died before it published (a platform timeout) does not stop the retry from publishing', async () => {
    const inner = memoryBackend();
    let attempts = 0;
    // The first attempt's function is killed while its publish is on its way: it never returns.
    const backend: Backend = {
      ...inner,
      append: (events, retention, options) =>
        attempts++ === 0 ? new Promise<string[]>(() => {}) : inner.append(events, retention, options),
    };
    const { handler, stored } = setup({ backend });
    void handler(await delivery({ messageId: 'msg_killed' }));
    await waitUntil(() => attempts === 1); // its publish is on its way, and never comes back
    const retry = await handler(await delivery({ messageId: 'msg_killed' }));
    expect(await retry.json()).toEqual({ id: expect.stringMatching(/^\d+-\d+$/) });
    expect(await stored()).toHaveLength(1);
  });

  it('a publish stored but whose answer was lost: 503, and the retry answers its id without publishing again', async () => {
    const inner = memoryBackend();
    let answers = 0;
    const backend: Backend = {
      ...inner,
      append: async (events, retention, options) => {
        const ids = await inner.append(events, retention, options);
        if (answers++ === 0) throw new BackendError('BACKEND_UNAVAILABLE', 'the answer was lost');
        return ids;
      },
    };
    const { handler, stored } = setup({ backend });
    expect(await errorOf(await handler(await delivery({ messageId: 'msg_lost' })), 503)).toBe('the answer was lost');
    const retry = await handler(await delivery({ messageId: 'msg_lost' }));
    const [event] = await stored();
    expect(await retry.json()).toEqual({ id: event!.id, duplicate: true });
    expect(await stored()).toHaveLength(1);
  });

  it('answers 503 when the backend fails, publishing nothing, and the retry publishes', async () => {
    const inner = memoryBackend();
    let failures = 1;
    const backend: Backend = {
      ...inner,
      append: (events, retention, options) =>
        failures-- > 0
          ? Promise.reject(new BackendError('BACKEND_UNAVAILABLE', 'Redis is down'))
          : inner.append(events, retention, options),
    };
    const { handler, stored } = setup({ backend });
    expect(await errorOf(await handler(await delivery({ messageId: 'msg_retry' })), 503)).toBe('Redis is down');
    expect(await stored()).toEqual([]);
    expect(await (await handler(await delivery({ messageId: 'msg_retry' }))).json()).not.toHaveProperty('duplicate');
    expect(await stored()).toHaveLength(1);
  });

  it('rethrows an unexpected error, for the platform to log', async () => {
    const inner = memoryBackend();
    const { handler } = setup({ backend: { ...inner, append: () => Promise.reject(new TypeError('a bug')) } });
    await expect(handler(await delivery({ messageId: 'msg_bug' }))).rejects.toThrow('a bug');
  });
});

describe('createPublishHandler: options', () => {
  const backend = memoryBackend();

  function creationError(options: Partial<PublishHandlerOptions>): ValidationError {
    try {
      createPublishHandler({ backend, env: {}, ...options });
    } catch (error) {
      expect(error).toBeInstanceOf(ValidationError);
      expect((error as ValidationError).code).toBe('INVALID_OPTION');
      return error as ValidationError;
    }
    throw new Error('expected createPublishHandler to throw');
  }

  it('names the environment variables when the signing keys are missing', () => {
    expect(creationError({}).message).toMatch(
      /missing currentSigningKey \(or QSTASH_CURRENT_SIGNING_KEY\) and nextSigningKey \(or QSTASH_NEXT_SIGNING_KEY\)/,
    );
    expect(creationError({ currentSigningKey: CURRENT_KEY }).message).toMatch(/missing nextSigningKey \(or QSTASH_NEXT_SIGNING_KEY\)\./);
    expect(creationError({ currentSigningKey: '', nextSigningKey: NEXT_KEY }).message).toMatch(/missing currentSigningKey/);
  });

  it('reads the signing keys from the environment', async () => {
    const handler = createPublishHandler({
      backend: memoryBackend(),
      env: { QSTASH_CURRENT_SIGNING_KEY: CURRENT_KEY, QSTASH_NEXT_SIGNING_KEY: NEXT_KEY },
    });
    expect((await handler(await delivery())).status).toBe(200);
  });

  it('refuses bad options when created, not on every delivery', () => {
    const keys = { currentSigningKey: CURRENT_KEY, nextSigningKey: NEXT_KEY };
    expect(creationError({ ...keys, url: '/api/sse/publish' }).message).toMatch(/Option url must be the absolute http\(s\) URL/);
    expect(creationError({ ...keys, url: 'ftp://example.com/' }).message).toMatch(/Option url/);
    expect(creationError({ ...keys, idempotencySeconds: 0 }).message).toMatch(/idempotencySeconds/);
    expect(creationError({ ...keys, clockToleranceSeconds: -1 }).message).toMatch(/clockToleranceSeconds/);
    expect(creationError({ ...keys, maxLength: 1.5 }).message).toMatch(/maxLength/);
    expect(creationError({ ...keys, ttlSeconds: 0 }).message).toMatch(/ttlSeconds/);
    expect(creationError({ ...keys, maxEventBytes: 0 }).message).toMatch(/maxEventBytes/);
    expect(creationError({ ...keys, maxBodyBytes: 0 }).message).toMatch(/maxBodyBytes/);
    expect(creationError({ ...keys, backend: undefined }).message).toMatch(/needs a backend/);
  });
});

/**
 * A stand-in for QStash on a local port: records what the Client sends, answers as QStash does,
 * and delivers messages, signed, to the publish handler.
 */
interface Recorded {
  method: string;
  path: string;
  headers: IncomingMessage['headers'];
  body: string;
}

class FakeQStash {
  readonly requests: Recorded[] = [];
  private server: Server = createServer((req, res) => this.answer(req, res));
  private count = 0;
  url = '';

  async start(): Promise<void> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  stop(): Promise<void> {
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  client(): Client {
    return new Client({ baseUrl: this.url, token: 'qstash-test-token', retry: false, enableTelemetry: false, devMode: false });
  }

  /** What QStash would do when the message is due (or a schedule ticks): POST it, signed. */
  async deliver(recorded: Recorded, handler: PublishHandler, messageId = `msg_${++this.count}`): Promise<Response> {
    const destination = recorded.path.replace(/^\/v2\/(publish|schedules)\//, '');
    const request = new Request(destination, {
      method: 'POST',
      headers: {
        'Content-Type': String(recorded.headers['content-type']),
        'Upstash-Message-Id': messageId,
        'Upstash-Signature': await sign(recorded.body, { url: destination }),
      },
      body: recorded.body,
    });
    return handler(request);
  }

  private answer(req: IncomingMessage, res: import('node:http').ServerResponse): void {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (chunk: string) => (body += chunk));
    req.on('end', () => {
      const path = req.url ?? '';
      this.requests.push({ method: req.method ?? '', path, headers: req.headers, body });
      const id = ++this.count;
      const reply = path.startsWith('/v2/schedules/')
        ? { scheduleId: req.headers['upstash-schedule-id'] ?? `scd_${id}` }
        : { messageId: `msg_${id}`, url: path.slice('/v2/publish/'.length) };
      res.writeHead(201, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify(reply));
    });
  }
}

describe('scheduleEvent through QStash to the publish handler', () => {
  const qstash = new FakeQStash();
  beforeAll(() => qstash.start());
  afterAll(() => qstash.stop());

  function app() {
    const backend = memoryBackend();
    const sse = createSSE({ backend });
    const handler = createPublishHandler({ backend, currentSigningKey: CURRENT_KEY, nextSigningKey: NEXT_KEY, env: {} });
    return { sse, handler };
  }

  async function listen(sse: ReturnType<typeof createSSE>, channel: string): Promise<SSEReader> {
    const reader = new SSEReader(await sse.handler(streamRequest(`?channel=${channel}`)));
    await reader.waitFor(() => reader.events.some((event) => event.event === 'sse:ready'), 'sse:ready');
    return reader;
  }

  const lastRequest = () => qstash.requests.at(-1) as Recorded;

  it('sends a delayed event, which reaches a live stream once however often it is delivered', async () => {
    const { sse, handler } = app();
    const reader = await listen(sse, 'reminders');
    const id = await scheduleEvent(
      'reminder',
      { text: 'Stand-up in 5 minutes' },
      {
        channel: 'reminders',
        delay: 90,
        url: ENDPOINT,
        qstash: qstash.client(),
        env: {},
      },
    );

    const sent = lastRequest();
    expect(sent.method).toBe('POST');
    expect(sent.path).toBe(`/v2/publish/${ENDPOINT}`);
    expect(sent.headers.authorization).toBe('Bearer qstash-test-token');
    expect(sent.headers['upstash-delay']).toBe('90s');
    expect(sent.headers['upstash-method']).toBe('POST');
    expect(sent.headers['content-type']).toBe('application/json');
    expect(sent.headers['upstash-not-before']).toBeUndefined();
    expect(JSON.parse(sent.body)).toEqual({ type: 'reminder', data: { text: 'Stand-up in 5 minutes' }, channel: 'reminders' });
    expect(id).toMatch(/^msg_\d+$/);

    const first = await qstash.deliver(sent, handler, id);
    expect(first.status).toBe(200);
    const again = await qstash.deliver(sent, handler, id);
    expect(await again.json()).toEqual({ id: ((await first.json()) as { id: string }).id, duplicate: true });

    await sse.sendEvent('last', 'x', { channel: 'reminders' }); // a repeated delivery would arrive before it
    await reader.waitForMessages(2);
    expect(reader.messages.map(({ event, data }) => ({ event, data }))).toEqual([
      { event: 'reminder', data: '{"text":"Stand-up in 5 minutes"}' },
      { event: 'last', data: 'x' },
    ]);
    expect(reader.messages[0]!.id).toBeDefined();
    await reader.cancel();
  });

  it('passes a duration string as Upstash-Delay', async () => {
    await scheduleEvent('reminder', 'soon', { delay: '10m', url: ENDPOINT, qstash: qstash.client(), env: {} });
    expect(lastRequest().headers['upstash-delay']).toBe('10m');
  });

  it('sends notBefore as Unix seconds in Upstash-Not-Before', async () => {
    const at = new Date('2031-05-04T09:00:00.500Z');
    await scheduleEvent('reminder', 'later', { notBefore: at, url: ENDPOINT, qstash: qstash.client(), env: {} });
    expect(lastRequest().headers['upstash-not-before']).toBe(String(Math.ceil(at.getTime() / 1000)));
    expect(lastRequest().headers['upstash-delay']).toBeUndefined();
    await scheduleEvent('reminder', 'later', { notBefore: 1_950_000_000, url: ENDPOINT, qstash: qstash.client(), env: {} });
    expect(lastRequest().headers['upstash-not-before']).toBe('1950000000');
  });

  it('creates a cron schedule whose every tick publishes, each tick once', async () => {
    const { sse, handler } = app();
    const reader = await listen(sse, 'digest');
    const scheduleId = await scheduleEvent(
      'digest',
      { period: 'daily' },
      {
        channel: 'digest',
        cron: 'CRON_TZ=Europe/Paris 0 9 * * *',
        scheduleId: 'daily-digest',
        url: ENDPOINT,
        qstash: qstash.client(),
        env: {},
      },
    );
    expect(scheduleId).toBe('daily-digest');

    const sent = lastRequest();
    expect(sent.method).toBe('POST');
    expect(sent.path).toBe(`/v2/schedules/${ENDPOINT}`);
    expect(sent.headers['upstash-cron']).toBe('CRON_TZ=Europe/Paris 0 9 * * *');
    expect(sent.headers['upstash-schedule-id']).toBe('daily-digest');
    expect(sent.headers['content-type']).toBe('application/json');
    expect(JSON.parse(sent.body)).toEqual({ type: 'digest', data: { period: 'daily' }, channel: 'digest' });

    await qstash.deliver(sent, handler, 'msg_monday');
    await qstash.deliver(sent, handler, 'msg_tuesday');
    await qstash.deliver(sent, handler, 'msg_tuesday');
    await sse.sendEvent('last', 'x', { channel: 'digest' }); // a repeated tick would arrive before it
    await reader.waitForMessages(3);
    expect(reader.messages.map(({ event }) => event)).toEqual(['digest', 'digest', 'last']);
    await reader.cancel();
  });

  it('publishes now without a delay, e.g. from a place without Redis credentials', async () => {
    const { sse, handler } = app();
    const reader = await listen(sse, 'sse');
    const id = await scheduleEvent('notice', 'Deploy finished', { url: ENDPOINT, qstash: qstash.client(), env: {} });
    const sent = lastRequest();
    expect(sent.headers['upstash-delay']).toBeUndefined();
    expect(sent.headers['upstash-not-before']).toBeUndefined();
    expect(JSON.parse(sent.body)).toEqual({ type: 'notice', data: 'Deploy finished', channel: 'sse' });
    await qstash.deliver(sent, handler, id);
    await reader.waitForMessages(1);
    expect(reader.messages[0]).toMatchObject({ event: 'notice', data: 'Deploy finished' });
    await reader.cancel();
  });

  it('takes the URL, token and QStash URL from the environment', async () => {
    const env = { EDGE_SSE_PUBLISH_URL: 'https://env.example.com/publish', QSTASH_TOKEN: 'env-token', QSTASH_URL: qstash.url };
    await scheduleEvent('notice', 1, { env });
    expect(lastRequest().path).toBe('/v2/publish/https://env.example.com/publish');
    expect(lastRequest().headers.authorization).toBe('Bearer env-token');
    await scheduleEvent('notice', 1, { env: { ...env, QSTASH_TOKEN: undefined }, qstash: 'given-token' });
    expect(lastRequest().headers.authorization).toBe('Bearer given-token');
  });

  it('validates everything before calling QStash', async () => {
    const base = { url: ENDPOINT, qstash: qstash.client(), env: {} };
    const cases: Array<[string, () => Promise<string>, RegExp, string]> = [
      ['type', () => scheduleEvent('', 1, base), /Invalid event type/, 'INVALID_EVENT_TYPE'],
      ['reserved type', () => scheduleEvent('sse:end', 1, base), /reserved/, 'INVALID_EVENT_TYPE'],
      ['channel', () => scheduleEvent('x', 1, { ...base, channel: 'a b' }), /Invalid channel/, 'INVALID_CHANNEL'],
      ['size', () => scheduleEvent('x', 'y'.repeat(11), { ...base, maxEventBytes: 10 }), /limit is 10/, 'EVENT_TOO_LARGE'],
      ['data', () => scheduleEvent('x', 10n, base), /JSON cannot serialise/, 'INVALID_DATA'],
      [
        'two timings',
        () => scheduleEvent('x', 1, { ...base, delay: 5, cron: '* * * * *' }),
        /at most one of delay, notBefore and cron; got delay and cron/,
        'INVALID_OPTION',
      ],
      ['delay', () => scheduleEvent('x', 1, { ...base, delay: -1 }), /Option delay/, 'INVALID_OPTION'],
      ['delay unit', () => scheduleEvent('x', 1, { ...base, delay: '5 minutes' as never }), /Option delay/, 'INVALID_OPTION'],
      ['notBefore ms', () => scheduleEvent('x', 1, { ...base, notBefore: Date.now() }), /looks like milliseconds/, 'INVALID_OPTION'],
      ['notBefore', () => scheduleEvent('x', 1, { ...base, notBefore: new Date('nope') }), /Option notBefore/, 'INVALID_OPTION'],
      ['cron', () => scheduleEvent('x', 1, { ...base, cron: 'every day' }), /five-field cron/, 'INVALID_OPTION'],
      ['scheduleId without cron', () => scheduleEvent('x', 1, { ...base, scheduleId: 'a' }), /pass it with cron/, 'INVALID_OPTION'],
      ['url', () => scheduleEvent('x', 1, { ...base, url: undefined }), /url \(or EDGE_SSE_PUBLISH_URL\)/, 'INVALID_OPTION'],
      ['relative url', () => scheduleEvent('x', 1, { ...base, url: '/api/publish' }), /absolute http\(s\) URL/, 'INVALID_OPTION'],
      ['token', () => scheduleEvent('x', 1, { ...base, qstash: undefined }), /set QSTASH_TOKEN/, 'INVALID_OPTION'],
      ['client', () => scheduleEvent('x', 1, { ...base, qstash: {} as never }), /set QSTASH_TOKEN/, 'INVALID_OPTION'],
    ];
    const before = qstash.requests.length;
    for (const [what, call, message, code] of cases) {
      const error = await call().then(
        () => new Error(`${what}: expected a rejection`),
        (error: unknown) => error,
      );
      expect(error, what).toBeInstanceOf(ValidationError);
      expect((error as ValidationError).message, what).toMatch(message);
      expect((error as ValidationError).code, what).toBe(code);
    }
    expect(qstash.requests.length).toBe(before);
  });
});
