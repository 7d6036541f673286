/**
 * An Upstash backend without its URL or token: creating it works (a build imports routes without
 * the secrets), and its first use says what to set, where a developer looks — the stream's answer
 * (a 500, which also stops EventSource's reconnecting), `onError`, and `sendEvent`.
 */
import { EventSource } from 'eventsource';
import { afterEach, describe, expect, it } from 'vitest';
import { upstashBackend } from '../src/backends/upstash/index.js';
import { BackendError, ValidationError, createSSE } from '../src/index.js';
import { type RunningServer, serve } from '../src/adapters/node.js';
import { streamRequest } from './helpers/sse.js';
import { waitUntil } from './helpers/wait.js';

const VARIABLES = /set UPSTASH_REDIS_REST_URL and UPSTASH_REDIS_REST_TOKEN \(or KV_REST_API_URL and KV_REST_API_TOKEN\)/;

const running: RunningServer[] = [];
afterEach(async () => {
  await Promise.all(running.splice(0).map((server) => server.close()));
});

describe.each(['subscribe', 'poll'] as const)('upstashBackend with no URL or token (%s)', (mode) => {
  it('is created without complaint', () => {
    expect(() => upstashBackend({ env: {}, mode })).not.toThrow();
  });

  it('answers a stream with a 500 naming the missing variables, and tells onError the same', async () => {
    const errors: unknown[] = [];
    const sse = createSSE({ backend: upstashBackend({ env: {}, mode }), onError: (error) => errors.push(error) });
    const response = await sse.handler(streamRequest('?channel=news'));
    expect(response.status).toBe(500);
    expect(response.headers.get('content-type')).toBe('application/json; charset=utf-8');
    const { error } = (await response.json()) as { error: string };
    expect(error).toMatch(/^upstashBackend has no REST URL and token: /);
    expect(error).toMatch(VARIABLES);
    expect(errors).toHaveLength(1);
    expect(errors[0]).toBeInstanceOf(BackendError);
    expect((errors[0] as BackendError).code).toBe('BACKEND_MISCONFIGURED');
    expect((errors[0] as Error).message).toBe(error);
    expect(sse.handler.stats()).toMatchObject({ openStreams: 0, readers: 0, timers: 0 });
  });

  it('names only what is missing', async () => {
    const sse = createSSE({ backend: upstashBackend({ env: { UPSTASH_REDIS_REST_URL: 'https://x.upstash.io' }, mode }) });
    const response = await sse.handler(streamRequest('?channel=news'));
    expect(response.status).toBe(500);
    expect(((await response.json()) as { error: string }).error).toMatch(/^upstashBackend has no REST token: /);
  });

  it('makes sendEvent throw a BackendError BACKEND_MISCONFIGURED, not a ValidationError', async () => {
    const sse = createSSE({ backend: upstashBackend({ env: {}, mode }) });
    const error = await sse.sendEvent('n', 1).catch((failure: unknown) => failure);
    expect(error).toBeInstanceOf(BackendError);
    expect(error).not.toBeInstanceOf(ValidationError);
    expect((error as BackendError).code).toBe('BACKEND_MISCONFIGURED');
    expect((error as Error).message).toMatch(VARIABLES);
  });

  it('stops EventSource: a 500, and no retry (served by edge-sse/node)', async () => {
    const sse = createSSE({ backend: upstashBackend({ env: {}, mode }) });
    const server = await serve(sse.handler, { hostname: '127.0.0.1', onError: () => {} });
    running.push(server);
    const source = new EventSource(`${server.url}/?channel=news`);
    const failure = await new Promise<{ code?: number; message?: string }>((resolve) =>
      source.addEventListener('error', (event) => resolve(event as never), { once: true }),
    );
    expect(failure.code).toBe(500);
    await waitUntil(() => source.readyState === EventSource.CLOSED);
    source.close();
  });
});

it('a URL that is not http(s) is a misconfiguration too, and its value is not echoed to clients', async () => {
  const sse = createSSE({ backend: upstashBackend({ url: 'redis://default:secret@example.com:6379', token: 't' }) });
  const response = await sse.handler(streamRequest('?channel=news'));
  expect(response.status).toBe(500);
  const { error } = (await response.json()) as { error: string };
  expect(error).toBe('The Upstash REST URL must start with https:// (or http://); it starts with "redis:"');
});
