/**
 * edge-sse/node — run any fetch-style handler (Request → Response) on node:http.
 *
 * Streams response bodies chunk by chunk with backpressure and no buffering, so SSE
 * bytes reach the client as soon as they are produced, and turns a client disconnect
 * into `request.signal` aborting plus the response body being cancelled.
 *
 * edge-sse's own stream handler is served more directly still, through the seam for adapters
 * that own the socket (src/server/socket-adapter.ts): no Request, Response or web stream per
 * connection, its frames written straight to the socket, and its client's leaving heard from it.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { TLSSocket } from 'node:tls';
import type { StreamHandler } from '../server/handler.js';
import { listen } from './listen.js';
import { type AttachedStream, type Incoming, type ServeSocket, type SocketSink, attachToBody } from '../server/socket-adapter.js';

export type FetchHandler = (request: Request) => Response | Promise<Response>;
export type NodeHandler = (req: IncomingMessage, res: ServerResponse) => Promise<void>;

export interface NodeHandlerOptions {
  /** Origin (optionally with a path prefix) used to build `request.url`, e.g. behind a proxy.
   *  Defaults to the request's Host header over http (https on a TLS socket). */
  baseUrl?: string;
  /** Called with errors thrown by the handler or by the response body. Defaults to console.error. */
  onError?: (error: unknown) => void;
}

export interface ServeOptions extends NodeHandlerOptions {
  /** 0 (the default) picks a free port. */
  port?: number;
  /** Defaults to 127.0.0.1. */
  hostname?: string;
}

export interface RunningServer {
  url: string;
  /** Stops listening and ends every open connection, including open event streams. */
  close(): Promise<void>;
}

const REQUEST_BODY_HIGH_WATER_MARK = 64 * 1024;

export function toNodeHandler(handler: FetchHandler, options: NodeHandlerOptions = {}): NodeHandler {
  const onError = options.onError ?? ((error: unknown) => console.error('edge-sse/node:', error));
  const { serveSocket } = handler as Partial<StreamHandler>;

  return async (req, res) => {
    // Late socket errors (EPIPE, ECONNRESET) after a disconnect are expected, not fatal.
    res.on('error', ignore);
    try {
      if (typeof serveSocket === 'function') await answerOnSocket(serveSocket, req, res, options.baseUrl);
      else await answerWithFetch(handler, req, res, options.baseUrl);
    } catch (error) {
      if (error instanceof BadRequest) return sendPlainText(res, 400, 'Bad Request');
      onError(error);
      if (res.headersSent) res.destroy();
      else sendPlainText(res, 500, 'Internal Server Error');
    }
  };
}

class BadRequest extends Error {}

async function answerWithFetch(handler: FetchHandler, req: IncomingMessage, res: ServerResponse, baseUrl?: string): Promise<void> {
  const clientGone = abortWhenClientLeaves(res);
  let request: Request;
  try {
    request = toWebRequest(req, clientGone, baseUrl);
  } catch {
    throw new BadRequest();
  }
  await writeWebResponse(await handler(request), req, res, clientGone);
}

/**
 * edge-sse's own handler, answered without a Request or Response (the direct path): an open stream
 * then costs its session and its socket, nothing more (the web objects are built only if
 * authorize or hooks ask).
 */
async function answerOnSocket(serveSocket: ServeSocket, req: IncomingMessage, res: ServerResponse, baseUrl?: string): Promise<void> {
  const answer = await serveSocket(new NodeIncoming(req, res, baseUrl), (headers) => {
    res.writeHead(200, headers);
    res.flushHeaders(); // an event stream may not produce a byte for a while
    return new ResponseSink(res);
  });
  if (answer instanceof Response) await writeWebResponse(answer, req, res, abortWhenClientLeaves(res));
  else reportSocket(res, answer);
}

/** 'close' on the response fires when the socket goes away; before writableFinished that means the client left early. */
function abortWhenClientLeaves(res: ServerResponse): AbortSignal {
  const clientGone = new AbortController();
  if (res.destroyed) {
    clientGone.abort();
  } else {
    res.on('close', () => {
      if (!res.writableFinished) clientGone.abort();
    });
  }
  return clientGone.signal;
}

/** The one place an attached stream hears of its socket: its buffer draining, and its client leaving. */
function reportSocket(res: ServerResponse, stream: AttachedStream): void {
  if (res.destroyed) return stream.clientLeft();
  res.on('drain', () => stream.drained());
  res.once('close', () => stream.clientLeft());
}

class NodeIncoming implements Incoming {
  readonly method: string;
  readonly url: string;
  private request: Request | undefined;

  constructor(
    private req: IncomingMessage,
    private res: ServerResponse,
    private baseUrl: string | undefined,
  ) {
    this.method = req.method ?? 'GET';
    try {
      this.url = requestUrl(req, baseUrl);
    } catch {
      throw new BadRequest();
    }
  }

  header(name: string): string | null {
    const value = this.req.headers[name.toLowerCase()];
    if (value === undefined) return null;
    return Array.isArray(value) ? value.join(', ') : value;
  }

  toRequest(): Request {
    return (this.request ??= toWebRequest(this.req, abortWhenClientLeaves(this.res), this.baseUrl));
  }
}

/** Writes straight to the response: methods on the prototype, nothing per connection but the instance. */
class ResponseSink implements SocketSink {
  constructor(private res: ServerResponse) {}

  write(chunk: Uint8Array): boolean {
    return this.res.write(chunk);
  }

  get bufferedBytes(): number {
    return this.res.writableLength;
  }

  end(): void {
    this.res.end();
  }

  destroy(): void {
    this.res.destroy();
  }
}

function ignore(): void {}

export async function serve(handler: FetchHandler, options: ServeOptions = {}): Promise<RunningServer> {
  const { port = 0, hostname = '127.0.0.1', ...handlerOptions } = options;
  const server = createServer(toNodeHandler(handler, handlerOptions));

  const close = () =>
    new Promise<void>((resolve, reject) => {
      server.close((error) => (error ? reject(error) : resolve()));
      server.closeAllConnections();
    });

  const { url } = await listen(server, port, hostname);
  return { url, close };
}

function toWebRequest(req: IncomingMessage, signal: AbortSignal, baseUrl?: string): Request {
  const method = req.method ?? 'GET';
  const init: RequestInit & { duplex?: 'half' } = {
    method,
    headers: copyRequestHeaders(req.rawHeaders),
    signal,
  };
  if (method !== 'GET' && method !== 'HEAD') {
    init.body = requestBodyStream(req, signal);
    init.duplex = 'half'; // required by undici for streamed request bodies
  }
  return new Request(requestUrl(req, baseUrl), init);
}

function requestUrl(req: IncomingMessage, baseUrl?: string): string {
  const base = baseUrl ? baseUrl.replace(/\/+$/, '') : `${requestProtocol(req)}://${req.headers.host ?? 'localhost'}`;
  const target = req.url ?? '/';
  // Concatenate rather than resolve: `new URL('//evil.example/x', base)` would change the host.
  const path = target.startsWith('/') ? target : pathOfAbsoluteForm(target);
  return new URL(base + path).href;
}

/** `GET http://host/path HTTP/1.1` (proxy form) or `OPTIONS *`. */
function pathOfAbsoluteForm(target: string): string {
  try {
    const { pathname, search } = new URL(target);
    return pathname + search;
  } catch {
    return '/';
  }
}

function requestProtocol(req: IncomingMessage): 'http' | 'https' {
  return (req.socket as Partial<TLSSocket>).encrypted ? 'https' : 'http';
}

function copyRequestHeaders(rawHeaders: string[]): Headers {
  const headers = new Headers();
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
    const name = rawHeaders[i]!;
    if (name.startsWith(':')) continue; // HTTP/2 pseudo-headers are not headers
    headers.append(name, rawHeaders[i + 1]!);
  }
  return headers;
}

/** A pull-based web stream over the request body: reads from the socket only as fast as the handler consumes. */
function requestBodyStream(req: IncomingMessage, signal: AbortSignal): ReadableStream<Uint8Array> {
  let settled = false;
  return new ReadableStream<Uint8Array>(
    {
      start(controller) {
        const fail = (error: unknown) => {
          if (settled) return;
          settled = true;
          controller.error(error);
        };
        req.pause();
        req.on('data', (chunk: Buffer) => {
          controller.enqueue(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength));
          if ((controller.desiredSize ?? 0) <= 0) req.pause();
        });
        req.once('end', () => {
          if (settled) return;
          settled = true;
          controller.close();
        });
        req.once('error', fail);
        signal.addEventListener('abort', () => fail(signal.reason), { once: true });
      },
      pull() {
        req.resume();
      },
      cancel() {
        settled = true;
        req.removeAllListeners('data');
        req.resume(); // discard the rest so the connection can still carry the response
      },
    },
    { highWaterMark: REQUEST_BODY_HIGH_WATER_MARK, size: (chunk) => chunk.byteLength },
  );
}

async function writeWebResponse(response: Response, req: IncomingMessage, res: ServerResponse, clientGone: AbortSignal): Promise<void> {
  res.statusCode = response.status;
  if (response.statusText) res.statusMessage = response.statusText;
  copyResponseHeaders(response.headers, res);

  const body = response.body;
  if (!body || req.method === 'HEAD') {
    await body?.cancel().catch(() => {});
    res.end();
    return;
  }

  // Send the status line and headers now: an event stream may not produce a byte for a while.
  res.flushHeaders();
  if (attachDirectly(body, res)) return;
  await pipeBody(body, res, clientGone);
}

/**
 * edge-sse's bodies take the socket directly (the wrapped path): no reader and no promise per
 * chunk, which is what a broadcast to thousands of connections spends most of its time on.
 */
function attachDirectly(body: ReadableStream<Uint8Array>, res: ServerResponse): boolean {
  const stream = attachToBody(body, new ResponseSink(res));
  if (stream) reportSocket(res, stream);
  return stream !== undefined;
}

function copyResponseHeaders(headers: Headers, res: ServerResponse): void {
  for (const [name, value] of headers) {
    if (name !== 'set-cookie') res.setHeader(name, value);
  }
  const cookies = headers.getSetCookie();
  if (cookies.length > 0) res.setHeader('set-cookie', cookies);
}

async function pipeBody(body: ReadableStream<Uint8Array>, res: ServerResponse, clientGone: AbortSignal): Promise<void> {
  const reader = body.getReader();
  // Cancelling runs the stream's cancel(), which is how the library learns to stop its work.
  const cancelBody = () => void reader.cancel(clientGone.reason).catch(() => {});
  if (clientGone.aborted) {
    cancelBody();
    return;
  }
  clientGone.addEventListener('abort', cancelBody, { once: true });
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done || clientGone.aborted) break;
      if (!res.write(value)) await drainOrClose(res);
    }
    if (!clientGone.aborted) res.end();
  } finally {
    clientGone.removeEventListener('abort', cancelBody);
    reader.releaseLock();
  }
}

function drainOrClose(res: ServerResponse): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      res.off('drain', done);
      res.off('close', done);
      resolve();
    };
    res.on('drain', done);
    res.on('close', done);
  });
}

function sendPlainText(res: ServerResponse, status: number, text: string): void {
  if (res.headersSent || res.destroyed) return;
  for (const name of res.getHeaderNames()) res.removeHeader(name); // drop any half-copied response headers
  res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}
