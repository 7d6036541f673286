import { request as httpRequest, type IncomingMessage } from 'node:http';
import { createRequire } from 'node:module';
import { afterEach, describe, expect, it } from 'vitest';
import { BackendError, createSSE, memoryBackend, type StreamInfo } from '../src/index.ts';
import { serve, type FetchHandler, type RunningServer, type ServeOptions } from '../src/adapters/node.ts';
import { ensureBuilt } from './examples/helpers.ts';
import { SSEReader } from './helpers/sse.ts';
import { waitUntil } from './helpers/wait.ts';
import { failingToFollow, spyBackend } from './helpers/spy-backend.ts';

const running: RunningServer[] = [];

afterEach(async () => {
  await Promise.all(running.splice(0).map((server) => server.close()));
});

async function start(handler: FetchHandler, options: ServeOptions = {}): Promise<RunningServer> {
  const server = await serve(handler, { hostname: '127.0.0.1', onError: () => {}, ...options });
  running.push(server);
  return server;
}

function deferred<T = void>() {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

/** A raw node:http GET, for what fetch cannot do: exact paths, repeated headers, hanging up mid-response. */
function rawGet(url: string, path: string, headers: Record<string, string | string[]> = {}): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(new URL(url), { path, headers }, resolve);
    req.on('error', reject);
    req.end();
  });
}

function firstChunk(res: IncomingMessage): Promise<string> {
  return new Promise((resolve) => res.once('data', (chunk: Buffer) => resolve(chunk.toString())));
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

describe('toNodeHandler / serve', () => {
  it('passes status, status text, headers and body through', async () => {
    const { url } = await start(
      () =>
        new Response('hello', {
          status: 201,
          statusText: 'Made It',
          headers: { 'content-type': 'text/x-test', 'x-answer': '42' },
        }),
    );
    const res = await fetch(`${url}/anything`);
    expect(res.status).toBe(201);
    expect(res.statusText).toBe('Made It');
    expect(res.headers.get('content-type')).toBe('text/x-test');
    expect(res.headers.get('x-answer')).toBe('42');
    expect(res.headers.get('content-encoding')).toBeNull();
    expect(await res.text()).toBe('hello');
  });

  it('builds an absolute request URL from the Host header, keeping method and query', async () => {
    let seen: Request | undefined;
    const { url } = await start((request) => {
      seen = request;
      return new Response(null, { status: 204 });
    });
    const res = await fetch(`${url}/stream?channel=a&channel=b`, { method: 'DELETE' });
    expect(res.status).toBe(204);
    expect(seen?.method).toBe('DELETE');
    expect(seen?.url).toBe(`${url}/stream?channel=a&channel=b`);
    expect(new URL(seen!.url).searchParams.getAll('channel')).toEqual(['a', 'b']);
  });

  it('uses baseUrl when given, and a path starting with // never changes the host', async () => {
    const urls: string[] = [];
    const { url } = await start(
      (request) => {
        urls.push(request.url);
        return new Response('ok');
      },
      { baseUrl: 'https://example.com/' },
    );
    (await rawGet(url, '/x?y=1')).resume();
    (await rawGet(url, '//evil.example/path')).resume();
    expect(urls).toEqual(['https://example.com/x?y=1', 'https://example.com//evil.example/path']);
  });

  it('delivers a POST body to the handler', async () => {
    const { url } = await start(async (request) => {
      const body = await request.text();
      return Response.json({ method: request.method, type: request.headers.get('content-type'), body });
    });
    const res = await fetch(`${url}/send`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ type: 'greeting', data: 'hi' }),
    });
    expect(await res.json()).toEqual({
      method: 'POST',
      type: 'application/json',
      body: '{"type":"greeting","data":"hi"}',
    });
  });

  it('delivers a large POST body intact', async () => {
    const { url } = await start(async (request) => {
      const bytes = new Uint8Array(await request.arrayBuffer());
      const sum = bytes.reduce((acc, byte) => (acc + byte) % 1_000_003, 0);
      return Response.json({ length: bytes.length, sum });
    });
    const payload = new Uint8Array(3 * 1024 * 1024).map((_, i) => (i * 31) % 251);
    const expectedSum = payload.reduce((acc, byte) => (acc + byte) % 1_000_003, 0);
    const res = await fetch(`${url}/upload`, { method: 'PUT', body: payload });
    expect(await res.json()).toEqual({ length: payload.length, sum: expectedSum });
  });

  it('keeps repeated request headers and multiple Set-Cookie response headers', async () => {
    let multi: string | null = null;
    const { url } = await start((request) => {
      multi = request.headers.get('x-multi');
      const headers = new Headers();
      headers.append('set-cookie', 'a=1; Path=/');
      headers.append('set-cookie', 'b=2; Path=/');
      headers.append('vary', 'accept');
      headers.append('vary', 'origin');
      return new Response('ok', { headers });
    });
    const res = await rawGet(url, '/', { 'x-multi': ['one', 'two'] });
    res.resume();
    expect(multi).toBe('one, two');
    expect(res.headers['set-cookie']).toEqual(['a=1; Path=/', 'b=2; Path=/']);
    expect(res.headers.vary).toBe('accept, origin');
  });

  it('streams the body chunk by chunk: the first chunk arrives before the stream ends', async () => {
    const releaseSecond = deferred();
    let streamEnded = false;
    const { url } = await start(
      () =>
        new Response(
          new ReadableStream<Uint8Array>({
            async start(controller) {
              controller.enqueue(encoder.encode('data: first\n\n'));
              await releaseSecond.promise;
              controller.enqueue(encoder.encode('data: second\n\n'));
              streamEnded = true;
              controller.close();
            },
          }),
          { headers: { 'content-type': 'text/event-stream' } },
        ),
    );
    const res = await fetch(`${url}/stream`);
    expect(res.headers.get('content-type')).toBe('text/event-stream');
    const reader = res.body!.getReader();
    const first = await reader.read();
    expect(decoder.decode(first.value)).toBe('data: first\n\n');
    expect(streamEnded).toBe(false);

    releaseSecond.resolve();
    let rest = '';
    for (let chunk = await reader.read(); !chunk.done; chunk = await reader.read()) rest += decoder.decode(chunk.value);
    expect(rest).toBe('data: second\n\n');
    expect(streamEnded).toBe(true);
  });

  it('sends headers at once, before the body produces its first byte', async () => {
    const { url } = await start(
      () => new Response(new ReadableStream({ start() {} }), { headers: { 'content-type': 'text/event-stream' } }),
    );
    // fetch resolves on the status line and headers; the body never produces anything.
    const res = await fetch(`${url}/quiet`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('text/event-stream');
    await res.body!.cancel();
  });

  it('applies backpressure: a client that stops reading stops the body from being pulled', async () => {
    const chunk = new Uint8Array(64 * 1024).fill(120);
    const total = 2000; // 128 MiB if nothing held the producer back
    let pulled = 0;
    const { url } = await start(
      () =>
        new Response(
          new ReadableStream<Uint8Array>({
            pull(controller) {
              if (pulled === total) return controller.close();
              pulled++;
              controller.enqueue(chunk);
            },
          }),
        ),
    );
    const res = await rawGet(url, '/big');
    res.pause();
    // Wait until the producer stalls (socket buffers full); without backpressure it would run to `total`.
    // A stall is the absence of pulls: nothing announces it, so it takes 200 ms without one.
    for (let before = -1; pulled !== before; ) {
      before = pulled;
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    expect(pulled).toBeLessThan(total / 4);

    let received = 0;
    res.on('data', (data: Buffer) => (received += data.length));
    res.resume();
    await new Promise((resolve) => res.once('end', resolve));
    expect(received).toBe(total * chunk.length);
  });

  it('on client disconnect, aborts request.signal and cancels the body stream', async () => {
    const aborted = deferred<unknown>();
    const cancelled = deferred<unknown>();
    const { url } = await start((request) => {
      request.signal.addEventListener('abort', () => aborted.resolve(request.signal.reason));
      return new Response(
        new ReadableStream<Uint8Array>({
          start(controller) {
            controller.enqueue(encoder.encode(': hello\n\n'));
          },
          cancel(reason) {
            cancelled.resolve(reason);
          },
        }),
        { headers: { 'content-type': 'text/event-stream' } },
      );
    });
    const res = await rawGet(url, '/stream');
    expect(await firstChunk(res)).toBe(': hello\n\n');
    res.destroy();

    const [abortReason, cancelReason] = await Promise.all([aborted.promise, cancelled.promise]);
    expect(abortReason).toBeInstanceOf(DOMException);
    expect((abortReason as DOMException).name).toBe('AbortError');
    expect(cancelReason).toBe(abortReason);
  });

  it('aborts request.signal when the client leaves before the handler has answered', async () => {
    const aborted = deferred();
    const handlerEntered = deferred();
    const { url } = await start(async (request) => {
      handlerEntered.resolve();
      await new Promise((resolve) => request.signal.addEventListener('abort', resolve));
      aborted.resolve();
      return new Response('too late');
    });
    const req = httpRequest(new URL(`${url}/slow`));
    req.on('error', () => {});
    req.end();
    await handlerEntered.promise;
    req.destroy();
    await expect(aborted.promise).resolves.toBeUndefined();
  });

  it('answers 500 when the handler throws or rejects, reports the error, and keeps serving', async () => {
    const errors: unknown[] = [];
    const { url } = await start(
      (request) => {
        const path = new URL(request.url).pathname;
        if (path === '/throw') throw new Error('sync boom');
        if (path === '/reject') return Promise.reject(new Error('async boom'));
        return new Response('still here');
      },
      { onError: (error) => errors.push(error) },
    );
    for (const path of ['/throw', '/reject']) {
      const res = await fetch(url + path);
      expect(res.status).toBe(500);
      expect(await res.text()).toBe('Internal Server Error');
    }
    expect(errors.map((error) => (error as Error).message)).toEqual(['sync boom', 'async boom']);

    const ok = await fetch(`${url}/fine`);
    expect(ok.status).toBe(200);
    expect(await ok.text()).toBe('still here');
  });

  it('cuts the connection when the body stream errors after headers were sent', async () => {
    const errors: unknown[] = [];
    const { url } = await start(
      () =>
        new Response(
          new ReadableStream<Uint8Array>({
            start(controller) {
              controller.enqueue(encoder.encode('partial'));
            },
            pull(controller) {
              // Asked for more once 'partial' was taken, after the headers went out.
              controller.error(new Error('backend died'));
            },
          }),
        ),
      { onError: (error) => errors.push(error) },
    );
    const res = await fetch(`${url}/fragile`);
    expect(res.status).toBe(200);
    await expect(res.text()).rejects.toThrow();
    expect((errors[0] as Error).message).toBe('backend died');
  });

  it('HEAD gets headers without a body, and the body stream is cancelled', async () => {
    const cancelled = deferred();
    const { url } = await start(
      () =>
        new Response(new ReadableStream({ cancel: () => cancelled.resolve() }), {
          headers: { 'x-kind': 'stream' },
        }),
    );
    const res = await fetch(`${url}/stream`, { method: 'HEAD' });
    expect(res.status).toBe(200);
    expect(res.headers.get('x-kind')).toBe('stream');
    expect(await res.text()).toBe('');
    await expect(cancelled.promise).resolves.toBeUndefined();
  });

  it('close() ends open streams and stops listening', async () => {
    const cancelled = deferred();
    const server = await serve(
      () =>
        new Response(
          new ReadableStream<Uint8Array>({
            start(controller) {
              controller.enqueue(encoder.encode(': open\n\n'));
            },
            cancel: () => cancelled.resolve(),
          }),
        ),
      { hostname: '127.0.0.1' },
    );
    const res = await rawGet(server.url, '/stream');
    expect(await firstChunk(res)).toBe(': open\n\n');
    const clientSawClose = new Promise((resolve) => res.once('close', resolve));

    await server.close();
    await Promise.all([cancelled.promise, clientSawClose]);
    await expect(fetch(server.url)).rejects.toThrow();
  });

  it('reports a busy port as a rejected promise', async () => {
    const { url } = await start(() => new Response('first'));
    const port = Number(new URL(url).port);
    await expect(serve(() => new Response('second'), { port, hostname: '127.0.0.1' })).rejects.toMatchObject({
      code: 'EADDRINUSE',
    });
  });
});

describe("serve with edge-sse's own streams (the direct path)", () => {
  it('writes frames straight to the socket: the body is never read through a reader', async () => {
    const sse = createSSE({ backend: memoryBackend() });
    const bodies: ReadableStream[] = [];
    const server = await start(async (request) => {
      const response = await sse.handler(request);
      bodies.push(response.body!);
      return response;
    });
    const reader = new SSEReader(await fetch(`${server.url}/?channel=direct`));
    await reader.waitForReady();
    await sse.sendEvent('n', 'one', { channel: 'direct' });
    await reader.waitForMessages(1);
    expect(reader.messages[0]!.data).toBe('one');
    expect(bodies[0]!.locked).toBe(false);
    await reader.cancel();
  });

  it('attaches across builds: a body from the CJS build, served by the ESM edge-sse/node', async () => {
    await ensureBuilt();
    const cjs = createRequire(import.meta.url)('../dist/index.cjs') as typeof import('../src/index.ts');
    const esmNode = (await import('../dist/node.js' as string)) as typeof import('../src/adapters/node.ts');
    const sse = cjs.createSSE({ backend: cjs.memoryBackend() });
    const bodies: ReadableStream[] = [];
    const server = await esmNode.serve(
      async (request) => {
        const response = await sse.handler(request);
        bodies.push(response.body!);
        return response;
      },
      { onError: () => {} },
    );
    running.push(server);
    const reader = new SSEReader(await fetch(`${server.url}/?channel=builds`));
    await reader.waitForReady();
    await sse.sendEvent('n', 'one', { channel: 'builds' });
    await reader.waitForMessages(1);
    expect(bodies[0]!.locked).toBe(false);
    await reader.cancel();
  });

  it("serves across builds: the CJS build's handler itself, through the ESM edge-sse/node's direct path", async () => {
    await ensureBuilt();
    const cjs = createRequire(import.meta.url)('../dist/index.cjs') as typeof import('../src/index.ts');
    const esmNode = (await import('../dist/node.js' as string)) as typeof import('../src/adapters/node.ts');
    const sse = cjs.createSSE({ backend: cjs.memoryBackend() });
    const serveSocket = sse.handler.serveSocket;
    let served = 0;
    sse.handler.serveSocket = (incoming, openSink) => (served++, serveSocket(incoming, openSink));
    const server = await esmNode.serve(sse.handler, { onError: () => {} });
    running.push(server);
    const reader = new SSEReader(await fetch(`${server.url}/?channel=builds`));
    await reader.waitForReady();
    await sse.sendEvent('n', 'one', { channel: 'builds' });
    await reader.waitForMessages(1);
    expect(served).toBe(1);
    await reader.cancel();
  });

  it('ends the session when the client disconnects', async () => {
    const reasons: string[] = [];
    const sse = createSSE({ backend: memoryBackend(), onDisconnect: (_, reason) => reasons.push(reason) });
    const server = await start(sse.handler);
    const response = await rawGet(server.url, '/?channel=gone');
    await new Promise((resolve) => response.once('data', resolve));
    response.destroy();
    await waitUntil(() => reasons.length > 0);
    expect(reasons).toEqual(['client']);
    expect(sse.handler.stats()).toMatchObject({ openStreams: 0, timers: 0, readers: 0 });
  });

  it('drops a client that stops reading once maxQueuedBytes is exceeded, and closes its connection', async () => {
    const reasons: string[] = [];
    const sse = createSSE({ backend: memoryBackend(), maxQueuedBytes: 64 * 1024, onDisconnect: (_, reason) => reasons.push(reason) });
    const server = await start(sse.handler);
    const response = await rawGet(server.url, '/?channel=stalled');
    await new Promise((resolve) => response.once('data', resolve));
    response.pause(); // stop reading: the socket's buffers fill, then the server's
    const closed = new Promise((resolve) => response.socket.once('close', resolve));
    for (let n = 0; n < 400 && reasons.length === 0; n++) {
      await sse.sendEvent('big', 'x'.repeat(16 * 1024), { channel: 'stalled' });
      await new Promise((resolve) => setImmediate(resolve));
    }
    expect(reasons).toEqual(['slow-client']);
    response.resume(); // drain what the kernel holds: the connection then ends
    await closed;
  });

  it("serves edge-sse's own handler without building a Request unless authorize or a hook reads one", async () => {
    const connected: number[] = [];
    const sse = createSSE({ backend: memoryBackend(), onConnect: (info) => connected.push(info.id) });
    const server = await start(sse.handler);
    const RealRequest = globalThis.Request;
    let built = 0;
    globalThis.Request = class extends RealRequest {
      constructor(...args: ConstructorParameters<typeof Request>) {
        super(...args);
        built++;
      }
    };
    try {
      const response = await rawGet(server.url, '/?channel=lean');
      expect(response.statusCode).toBe(200);
      expect(response.headers['content-type']).toBe('text/event-stream; charset=utf-8');
      expect(await firstChunk(response)).toContain('retry: 1000');
      response.destroy();
      expect(connected).toHaveLength(1);
    } finally {
      globalThis.Request = RealRequest;
    }
    expect(built).toBe(0);
  });

  it('gives authorize and hooks a real Request, whose signal aborts when the client leaves', async () => {
    const seen: Request[] = [];
    const infos: StreamInfo[] = [];
    const sse = createSSE({
      backend: memoryBackend(),
      authorize: (request) => {
        seen.push(request);
        return request.headers.get('authorization') === 'Bearer ok';
      },
      onConnect: (info) => infos.push(info),
    });
    const server = await start(sse.handler);

    const refused = await rawGet(server.url, '/?channel=private');
    expect(refused.statusCode).toBe(403);
    refused.resume();

    const allowed = await rawGet(server.url, '/?channel=private&x=1', { authorization: 'Bearer ok' });
    expect(allowed.statusCode).toBe(200);
    await firstChunk(allowed);
    const request = seen[1]!;
    expect(request).toBeInstanceOf(Request);
    expect(new URL(request.url).search).toBe('?channel=private&x=1');
    expect(infos[0]!.request).toBe(request);
    expect(request.signal.aborted).toBe(false);
    allowed.destroy();
    await waitUntil(() => request.signal.aborted);
  });

  it('answers errors, preflight and CORS headers on the direct path', async () => {
    const sse = createSSE({ backend: memoryBackend(), cors: { origin: ['https://app.example'] } });
    const server = await start(sse.handler);
    const origin = { Origin: 'https://app.example' };

    const bad = await fetch(`${server.url}/?channel=${encodeURIComponent('a b')}`, { headers: origin });
    expect(bad.status).toBe(400);
    expect(bad.headers.get('access-control-allow-origin')).toBe('https://app.example');
    expect((await bad.json()).error).toMatch(/channel/i);

    const post = await fetch(server.url, { method: 'POST', body: 'x' });
    expect(post.status).toBe(405);
    expect(post.headers.get('allow')).toBe('GET, OPTIONS');
    await post.body?.cancel();

    const preflight = await fetch(server.url, {
      method: 'OPTIONS',
      headers: { ...origin, 'Access-Control-Request-Method': 'GET' },
    });
    expect(preflight.status).toBe(204);
    expect(preflight.headers.get('access-control-allow-methods')).toBe('GET, OPTIONS');

    const stream = await fetch(`${server.url}/?channel=cors`, { headers: origin });
    expect(stream.headers.get('access-control-allow-origin')).toBe('https://app.example');
    await stream.body?.cancel();
  });

  it('releases a stream whose client left while it was being opened', async () => {
    let authorizing!: (request: Request) => void;
    const entered = new Promise<Request>((resolve) => (authorizing = resolve));
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    const sse = createSSE({
      backend: memoryBackend(),
      authorize: async (request) => {
        authorizing(request);
        await held;
        return true;
      },
    });
    const server = await start(sse.handler);
    const client = httpRequest(new URL(`${server.url}/?channel=early`));
    client.on('error', () => {});
    client.end();
    const request = await entered;
    client.destroy();
    await waitUntil(() => request.signal.aborted); // the server saw the socket close
    release();
    await waitUntil(() => sse.handler.stats().openStreams === 0);
    expect(sse.handler.stats()).toMatchObject({ openStreams: 0, readers: 0, timers: 0 });
  });

  it('sends the retry hint and ends when the backend fails while the stream opens', async () => {
    const failing = spyBackend(memoryBackend(), failingToFollow(new BackendError('BACKEND_UNAVAILABLE', 'Redis is unreachable'))).backend;
    const sse = createSSE({ backend: failing, backendRetryMs: 2000 });
    const server = await start(sse.handler);
    const response = await rawGet(server.url, '/?channel=down');
    let body = '';
    response.on('data', (chunk: Buffer) => (body += chunk.toString()));
    await new Promise((resolve) => response.once('end', resolve));
    expect(body).toMatch(/^retry: 1000\n/);
    expect(body).toMatch(/retry: (2\d{3}|3000)\n/);
    expect(sse.handler.stats().openStreams).toBe(0);
  });
});
