import { type Backend, READ_BATCH } from '../backends/contract.js';
import { channelsFromUrl } from './channels.js';
import { type CorsOption, corsHeaders, preflightHeaders } from './cors.js';
import { parseCursor } from '../wire/cursor.js';
import { BackendError, EdgeSSEError, ValidationError, invalidOption } from '../common/errors.js';
import { Hub, sharedHub } from './hub.js';
import { incomingFrom } from './incoming.js';
import type { Incoming, ServeSocket } from './socket-adapter.js';
import { describe } from '../wire/names.js';
import { wholeNumber } from '../common/options.js';
import { EVENT_STREAM_HEADERS, errorResponse } from '../common/responses.js';
import { type StreamHooks, StreamRegistry, type StreamStats } from './observe.js';
import { Session } from './session.js';
import { defaultKeepAliveMs } from '../common/runtime.js';

/**
 * Decides who may listen: `true`/nothing allows, `false` answers 403, a Response is sent as is,
 * and `{ expiresAt }` (epoch ms) allows until then: the stream ends at that moment, and the client
 * must come back with fresh credentials.
 */
export type Authorize = (request: Request, channels: string[]) => AuthorizeResult | Promise<AuthorizeResult>;
export type AuthorizeResult = boolean | void | Response | { expiresAt: number };

export interface StreamHandlerOptions extends StreamHooks {
  backend: Backend;
  authorize?: Authorize;
  /** Channels one connection may listen to (default 16). */
  maxChannels?: number;
  /** Events a fresh connection (no Last-Event-ID) gets from history, per channel (default 0). */
  replay?: number;
  /** Send a comment after this much silence (default 15000; under Bun 8000, below Bun.serve's 10-s idle timeout). */
  keepAliveMs?: number;
  /** End the stream after 80–100% of this, before a platform limit kills it (default 240000). */
  maxDurationMs?: number;
  /** The `retry:` reconnection delay clients are given (default 1000). */
  retryMs?: number;
  /** The `retry:` given when the backend fails, plus up to 50% jitter (default 5000). */
  backendRetryMs?: number;
  /** A stream whose unread bytes exceed this is closed, live or catching up (default 1 MiB). */
  maxQueuedBytes?: number;
  cors?: CorsOption;
  /**
   * Share one reader per channel between the connections of this process (default: where the
   * backend is `shareable`; `upstashBackend` is not on Cloudflare Workers, which forbids one
   * request using another request's I/O).
   */
  shareReaders?: boolean;
  /**
   * Most requests to the store one stream may make before it ends (the client resumes at once,
   * losing nothing). For platforms that cap subrequests, such as Cloudflare Workers (50 on the
   * Free plan). Counts what the stream reads for itself: everything when readers are not shared.
   */
  maxRequests?: number;
}

export interface StreamHandler {
  (request: Request): Promise<Response>;
  /** Open streams, live readers, timers, subscriptions, requests and deliveries, right now. */
  stats(): StreamStats;
  /**
   * The same handler for a server adapter that owns the socket (edge-sse/node uses it): no
   * Request, Response or web stream per connection. See src/server/socket-adapter.ts.
   */
  serveSocket: ServeSocket;
}

/** A fetch-style handler that streams the requested channels as server-sent events. */
export function createStreamHandler(options: StreamHandlerOptions): StreamHandler {
  const settings = resolveOptions(options);
  const handler = async (request: Request): Promise<Response> => {
    const answer = await respond(incomingFrom(request), settings, request);
    return answer instanceof Response ? answer : new Response(answer.session.body, { headers: answer.headers });
  };
  const serveSocket: ServeSocket = async (incoming, openSink) => {
    const answer = await respond(incoming, settings);
    if (answer instanceof Response) return answer;
    try {
      return answer.session.attach(openSink(answer.headers));
    } catch (error) {
      answer.session.close('server', error);
      throw error;
    }
  };
  return Object.assign(handler, { stats: () => settings.registry.stats(), serveSocket });
}

type Settings = ReturnType<typeof resolveOptions>;

interface OpenedStream {
  session: Session;
  headers: Record<string, string>;
}

interface Admission {
  channels: string[];
  resumeFrom: string[] | undefined;
  expiresAt: number | undefined;
}

function resolveOptions(options: StreamHandlerOptions) {
  if (!options || typeof options.backend?.createFeed !== 'function') {
    throw invalidOption('createStreamHandler needs a backend, e.g. { backend: memoryBackend() }');
  }
  const shareReaders = (options.shareReaders ?? true) && options.backend.shareable;
  const hub = shareReaders ? sharedHub(options.backend) : undefined;
  return {
    hub,
    registry: new StreamRegistry(options.backend, options, hub),
    backend: options.backend,
    authorize: options.authorize,
    cors: options.cors,
    maxChannels: wholeNumber('maxChannels', options.maxChannels, 16, 1, 1000),
    replay: wholeNumber('replay', options.replay, 0, 0, 10_000),
    keepAliveMs: wholeNumber('keepAliveMs', options.keepAliveMs, defaultKeepAliveMs(), 100),
    maxDurationMs: wholeNumber('maxDurationMs', options.maxDurationMs, 240_000, 100),
    retryMs: wholeNumber('retryMs', options.retryMs, 1000, 0),
    backendRetryMs: wholeNumber('backendRetryMs', options.backendRetryMs, 5000, 0),
    maxQueuedBytes: wholeNumber('maxQueuedBytes', options.maxQueuedBytes, 1024 * 1024, 1024),
    maxRequests: wholeNumber('maxRequests', options.maxRequests, Infinity, 2, Infinity),
    readBatch: READ_BATCH,
  };
}

/**
 * Opens the stream, or answers why not. `request` is the web Request when there is one: the stream
 * then follows its signal to learn that the client left (an adapter that owns the socket tells it).
 */
async function respond(incoming: Incoming, settings: Settings, request?: Request): Promise<Response | OpenedStream> {
  try {
    const admission = await admit(incoming, settings);
    if (admission instanceof Response) return admission;
    return await openStream(incoming, settings, admission, request);
  } catch (error) {
    if (error instanceof ValidationError) return errorWithCors(400, error.message, settings.cors, incoming);
    throw error;
  }
}

async function admit(incoming: Incoming, settings: AdmissionSettings): Promise<Response | Admission> {
  if (incoming.method === 'OPTIONS' && settings.cors) {
    return new Response(null, { status: 204, headers: preflightHeaders(settings.cors, incoming.header('Origin')) });
  }
  if (incoming.method !== 'GET') {
    return errorWithCors(405, `Method ${incoming.method} is not allowed: open the stream with GET`, settings.cors, incoming, {
      Allow: settings.cors ? 'GET, OPTIONS' : 'GET',
    });
  }
  const url = new URL(incoming.url);
  const channels = channelsFromUrl(url, settings.maxChannels);
  const lastEventId = incoming.header('Last-Event-ID') ?? url.searchParams.get('lastEventId');
  const cursor = lastEventId ? parseCursor(lastEventId, channels.length) : undefined;

  const verdict = await settings.authorize?.(incoming.toRequest(), [...channels]);
  if (verdict instanceof Response) return withCors(verdict, settings.cors, incoming);
  if (verdict === false) {
    return errorWithCors(403, `Not allowed to listen to ${channels.join(', ')}`, settings.cors, incoming);
  }
  return { channels, resumeFrom: cursor?.positions, expiresAt: expiryOf(verdict) };
}

/**
 * `authorize`'s `{ expiresAt }`, checked: NaN or a string would otherwise disable the deadline.
 * A bad value is the app's bug, not the client's, so it throws rather than answering 400.
 */
function expiryOf(verdict: AuthorizeResult): number | undefined {
  if (typeof verdict !== 'object' || verdict === null) return undefined;
  const { expiresAt } = verdict as { expiresAt?: unknown };
  if (typeof expiresAt !== 'number' || !Number.isFinite(expiresAt)) {
    throw new EdgeSSEError(
      'INVALID_OPTION',
      `authorize returned { expiresAt: ${typeof expiresAt === 'string' ? describe(expiresAt) : String(expiresAt)} }; ` +
        'expiresAt must be a finite epoch time in milliseconds, such as Date.now() + 60_000',
    );
  }
  return expiresAt;
}

/** An answer of the app's own is a refusal like ours: a cross-origin page must be able to read it too. */
function withCors(response: Response, cors: CorsOption | undefined, incoming: Incoming): Response {
  const headers = corsHeaders(cors, incoming.header('Origin'));
  const missing = Object.entries(headers).filter(([name]) => !response.headers.has(name));
  if (missing.length === 0) return response;
  const merged = new Headers(response.headers);
  for (const [name, value] of missing) merged.set(name, value);
  return new Response(response.body, { status: response.status, statusText: response.statusText, headers: merged });
}

async function openStream(
  incoming: Incoming,
  settings: Settings,
  { channels, resumeFrom, expiresAt }: Admission,
  request: Request | undefined,
): Promise<OpenedStream | Response> {
  const onRequest = requestBudget(settings.maxRequests);
  let failure: unknown;
  const hub = settings.hub ?? new Hub(settings.backend, { onRequest });
  const info = settings.registry.info(incoming, channels, resumeFrom !== undefined);
  const session = new Session(settings, {
    hub,
    channels,
    resumeFrom,
    durationMs: Math.round(settings.maxDurationMs * (0.8 + 0.2 * Math.random())),
    expiresAt,
    onRequest,
    signal: request?.signal as AbortSignal | undefined,
    onClose: (reason, error) => {
      failure = error;
      if (hub !== settings.hub) hub.close();
      settings.registry.closed(stream, reason, error);
    },
  });
  // Hold the Request while the stream is open: undici's `request.signal` follows the signal it was
  // made with only as long as the Request lives (a weak reference), and it is how we hear the
  // client leave.
  const stream = { info, session, hub, request };
  settings.registry.opened(stream);

  await session.open();
  if (failure instanceof BackendError && failure.code === 'BACKEND_MISCONFIGURED') {
    // Retrying cannot help: a 5xx stops EventSource's reconnecting and says what to fix.
    return errorWithCors(500, failure.message, settings.cors, incoming);
  }
  return { session, headers: { ...EVENT_STREAM_HEADERS, ...corsHeaders(settings.cors, incoming.header('Origin')) } };
}

/** Counts a stream's requests; refuses the one past the budget, which ends the stream. */
function requestBudget(maxRequests: number): (() => void) | undefined {
  if (maxRequests === Infinity) return undefined;
  let spent = 0;
  return () => {
    if (spent >= maxRequests) {
      throw new BackendError('REQUEST_BUDGET', `This stream made its ${maxRequests} requests (option maxRequests)`);
    }
    spent++;
  };
}

/** An error answer a cross-origin page may read. */
function errorWithCors(
  status: number,
  message: string,
  cors: CorsOption | undefined,
  incoming: Incoming,
  extra: Record<string, string> = {},
): Response {
  return errorResponse(status, message, { ...corsHeaders(cors, incoming.header('Origin')), ...extra });
}

// ---- For edge-sse/cloudflare: admission alone ---------------------------------------------------

type AdmissionSettings = Pick<Settings, 'authorize' | 'cors' | 'maxChannels'>;

/** A stream request that passed admission: what it asks for. */
export type StreamAdmission = Admission;

/**
 * The handler's own admission — method, CORS preflight, channels, `Last-Event-ID`, `authorize` —
 * answering refusals exactly as the handler does, but opening no stream: edge-sse/cloudflare's
 * Worker admits a request, then hands the stream to a Durable Object.
 */
export function createAdmission(
  options: Pick<StreamHandlerOptions, 'authorize' | 'cors' | 'maxChannels'>,
): (request: Request) => Promise<Response | StreamAdmission> {
  const settings: AdmissionSettings = {
    authorize: options.authorize,
    cors: options.cors,
    maxChannels: wholeNumber('maxChannels', options.maxChannels, 16, 1, 1000),
  };
  return async (request) => {
    const incoming = incomingFrom(request);
    try {
      return await admit(incoming, settings);
    } catch (error) {
      if (error instanceof ValidationError) return errorWithCors(400, error.message, settings.cors, incoming);
      throw error;
    }
  };
}
