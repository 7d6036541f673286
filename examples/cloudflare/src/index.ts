/**
 * edge-sse on Cloudflare Workers.
 *
 *   GET  /stream?channel=news   server-sent events (Last-Event-ID resumes)
 *   POST /send                  { "type": "message", "data": …, "channel": "news" } → { "id": … }
 *
 * Events live in Redis Streams behind Upstash's REST API: set UPSTASH_REDIS_REST_URL and
 * UPSTASH_REDIS_REST_TOKEN (`wrangler secret put …`).
 *
 * Streams go through a Durable Object per channel (set): the Worker checks the request, the
 * object holds the channel's one upstream reader and fans it out to every listener.
 * STREAM_READERS = "per-connection" serves each stream in the Worker instead, reading for itself.
 */
import { ValidationError, createStreamHandler, sendEvent, type StreamHandler } from 'edge-sse';
import { createDurableStreamHandler, createStreamObject, type StreamObjectNamespace } from 'edge-sse/cloudflare';
import { upstashBackend } from 'edge-sse/upstash';
import type { Backend } from 'edge-sse';

export interface Env {
  UPSTASH_REDIS_REST_URL: string;
  UPSTASH_REDIS_REST_TOKEN: string;
  /** The Durable Object binding (wrangler.toml). */
  SSE: StreamObjectNamespace;
  /** "object" (default): one reader per channel, in its Durable Object. "per-connection": each stream reads for itself. */
  STREAM_READERS?: string;
  /**
   * Per-connection streams only: most requests to Redis one stream may make before it ends and the
   * client resumes (nothing is lost). The Free plan allows 50 subrequests per invocation.
   */
  MAX_REQUESTS?: string;
}

const FREE_PLAN_MAX_REQUESTS = 40;

// Workers keep a request alive as long as the client stays, but deploys and restarts end it:
// ending the stream now and then keeps reconnections spread out.
const MAX_DURATION_MS = 240_000;

/**
 * The Durable Object class (bound as SSE in wrangler.toml). Each object makes its own backend,
 * here, inside the function: objects must not share I/O, so neither may they share a backend.
 */
export const StreamObject = createStreamObject<Env>((env) => ({
  backend: upstashBackend({ url: env.UPSTASH_REDIS_REST_URL, token: env.UPSTASH_REDIS_REST_TOKEN, shareable: true }),
  namespace: env.SSE,
  maxDurationMs: MAX_DURATION_MS,
  // Visible in `wrangler tail`. 'client' needs the enable_request_signal flag (see wrangler.toml).
  onDisconnect: (_stream, reason) => console.log(`edge-sse: stream closed (${reason})`),
}));

interface App {
  backend: Backend;
  stream: (request: Request) => Promise<Response>;
}

// One backend and handler per isolate and configuration (the Worker's own: for /send, and for
// streams when they are served per connection).
let app: { env: Env; app: App } | undefined;

function appFor(env: Env): App {
  if (app?.env === env) return app.app;
  const backend = upstashBackend({ url: env.UPSTASH_REDIS_REST_URL, token: env.UPSTASH_REDIS_REST_TOKEN });
  const stream = env.STREAM_READERS === 'per-connection' ? perConnection(backend, env) : createDurableStreamHandler({ namespace: env.SSE });
  app = { env, app: { backend, stream } };
  return app.app;
}

/** Each stream reads for itself (Workers forbid one request using another's I/O), within a budget. */
function perConnection(backend: Backend, env: Env): StreamHandler {
  return createStreamHandler({
    backend,
    maxRequests: env.MAX_REQUESTS ? Number(env.MAX_REQUESTS) : FREE_PLAN_MAX_REQUESTS,
    maxDurationMs: MAX_DURATION_MS,
    onDisconnect: (_stream, reason) => console.log(`edge-sse: stream closed (${reason})`),
  });
}

export default {
  async fetch(request: Request, env: Env): Promise<Response> {
    const { pathname } = new URL(request.url);
    if (pathname === '/stream') return appFor(env).stream(request);
    if (pathname === '/send') {
      if (request.method !== 'POST') return Response.json({ error: 'POST a JSON event' }, { status: 405, headers: { allow: 'POST' } });
      return publish(appFor(env).backend, request);
    }
    return Response.json({ error: `Not found: ${pathname}. Try GET /stream or POST /send` }, { status: 404 });
  },
} satisfies ExportedHandler<Env>;

/** This demo lets anyone publish: check who is calling before you deploy it for real. */
async function publish(backend: Backend, request: Request): Promise<Response> {
  let body: { type?: unknown; data?: unknown; channel?: unknown };
  try {
    body = await request.json();
  } catch {
    return Response.json({ error: 'Send a JSON object: { "type": "message", "data": "hello", "channel": "sse" }' }, { status: 400 });
  }
  if (typeof body !== 'object' || body === null) return Response.json({ error: 'Send a JSON object' }, { status: 400 });
  try {
    const id = await sendEvent(body.type as string, body.data, {
      backend,
      channel: typeof body.channel === 'string' && body.channel !== '' ? body.channel : undefined,
    });
    return Response.json({ id });
  } catch (error) {
    if (error instanceof ValidationError) return Response.json({ error: error.message }, { status: 400 });
    throw error;
  }
}
