/**
 * The Worker's side: admits a stream request exactly as `createStreamHandler` does (channels,
 * `Last-Event-ID`, CORS, `authorize`, channel tokens) before any object is touched, then hands the
 * stream to the Durable Object of its channel set and passes its body through untouched. The
 * Worker reads nothing from Redis, so no subrequest budget applies to the stream.
 */
import { type CorsOption, corsHeaders } from '../server/cors.js';
import { invalidOption } from '../common/errors.js';
import { EVENT_STREAM_HEADERS } from '../common/responses.js';
import { type Authorize, createAdmission } from '../server/handler.js';
import { formatRetry } from '../wire/frames.js';
import type { StreamStats } from '../server/observe.js';
import { DEFAULT_CHANNEL } from '../wire/names.js';
import { wholeNumber } from '../common/options.js';
import { EXPIRES_AT_HEADER, type StreamObjectNamespace, stubFor } from './routing.js';

export interface DurableStreamHandlerOptions {
  /** The binding of the class `createStreamObject` made (`env.SSE`). */
  namespace: StreamObjectNamespace;
  authorize?: Authorize;
  /** Channels one connection may listen to (default 16). */
  maxChannels?: number;
  cors?: CorsOption;
  /** The `retry:` given when the object cannot be reached, plus up to 50% jitter (default 5000). */
  backendRetryMs?: number;
  /** The object could not be reached (the client was told to come back later). */
  onError?(error: unknown): void;
}

export interface DurableStreamHandler {
  (request: Request): Promise<Response>;
  /** The `stats()` of the object serving these channels (default: the `sse` channel). */
  stats(channels?: readonly string[]): Promise<StreamStats>;
}

export function createDurableStreamHandler(options: DurableStreamHandlerOptions): DurableStreamHandler {
  const namespace = options?.namespace;
  if (typeof namespace?.idFromName !== 'function' || typeof namespace.get !== 'function') {
    throw invalidOption(
      'createDurableStreamHandler needs { namespace }: the Durable Object binding of your createStreamObject class, e.g. env.SSE',
    );
  }
  const admit = createAdmission(options);
  const backendRetryMs = wholeNumber('backendRetryMs', options.backendRetryMs, 5000, 0);

  const handler = async (request: Request): Promise<Response> => {
    const admission = await admit(request);
    if (admission instanceof Response) return admission;
    const cors = corsHeaders(options.cors, request.headers.get('Origin'));
    let response: Response;
    try {
      response = await stubFor(namespace, admission.channels).fetch(forwarded(request, admission.expiresAt));
    } catch (error) {
      try {
        options.onError?.(error);
      } catch {
        // A failing hook must not turn the retry hint into an error status.
      }
      return comeBackLater(backendRetryMs, cors);
    }
    return withHeaders(response, cors);
  };
  const stats = async (channels: readonly string[] = []): Promise<StreamStats> => {
    const named = channels.length > 0 ? [...new Set(channels)].sort() : [DEFAULT_CHANNEL];
    const stub = stubFor(namespace, named) as unknown as { stats(): Promise<StreamStats> };
    return stub.stats();
  };
  return Object.assign(handler, { stats });
}

/** The client's request, as the object needs it: with the expiry `authorize` granted, and only that. */
function forwarded(request: Request, expiresAt: number | undefined): Request {
  const headers = new Headers(request.headers);
  headers.delete(EXPIRES_AT_HEADER);
  if (expiresAt !== undefined) headers.set(EXPIRES_AT_HEADER, String(expiresAt));
  return new Request(request.url, { method: 'GET', headers });
}

/** Passes the object's answer on (the body streams through untouched), with the CORS headers added. */
function withHeaders(response: Response, cors: Record<string, string>): Response {
  if (Object.keys(cors).length === 0) return response;
  const headers = new Headers(response.headers);
  for (const [name, value] of Object.entries(cors)) headers.set(name, value);
  return new Response(response.body, { status: response.status, statusText: response.statusText, headers });
}

/**
 * An EventSource gives up on an error status but reconnects after a stream ends: so an object that
 * cannot be reached (restarting, overloaded) answers with a stream that only says when to retry.
 */
function comeBackLater(backendRetryMs: number, cors: Record<string, string>): Response {
  const retry = backendRetryMs + Math.round(backendRetryMs * Math.random() * 0.5);
  return new Response(formatRetry(retry, 'stream object unavailable'), { headers: { ...EVENT_STREAM_HEADERS, ...cors } });
}
