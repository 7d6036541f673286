/**
 * The edge-sse demo: `npm run demo`, then open the printed URL.
 *
 *   GET  /        the page (demo/page.html)
 *   GET  /stream  the library's stream handler (?channel=…, Last-Event-ID)
 *   POST /send    publish { type, data, channel } → { id }, or 400 { error }
 *
 * PORT (default 3000; 0 picks a free one) and HOST (default 127.0.0.1) set where it listens.
 */
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type Backend, type SSE, type SSEOptions, ValidationError, createSSE } from '../src/index.ts';
import { type RunningServer, serve } from '../src/adapters/node.ts';
import { bridgedBackend, pickBackend } from './backend.ts';

export interface DemoOptions {
  /** 0 picks a free port. Default 3000. */
  port?: number;
  /** Default 127.0.0.1. */
  hostname?: string;
  /** Default: pickBackend(process.env). A backend passed in is not closed by close(). */
  backend?: Backend;
  /** Stream and publish options, e.g. a short maxDurationMs or a small maxLength for tests. */
  handlerOptions?: Omit<SSEOptions, 'backend'>;
}

export interface RunningDemo extends RunningServer {
  backend: Backend;
}

/** The types page.html listens for from the start; it learns others from an announcement event. */
const BUILT_IN_TYPES = new Set(['message', 'greeting', 'alert']);
const TYPE_ANNOUNCEMENT = 'demo:type';

/** Larger than any event the library accepts (64 KiB by default), small enough to refuse junk early. */
const MAX_SEND_BODY_BYTES = 256 * 1024;

export async function startDemo(options: DemoOptions = {}): Promise<RunningDemo> {
  const backend = options.backend ?? pickBackend(process.env);
  const sse = createSSE({ ...options.handlerOptions, backend });
  const page = await readFile(new URL('./page.html', import.meta.url), 'utf8');
  const server = await serve(demoHandler(sse, page), {
    port: options.port ?? 3000,
    hostname: options.hostname ?? '127.0.0.1',
  });
  return {
    url: server.url,
    backend,
    async close() {
      await server.close();
      if (!options.backend) await backend.close();
    },
  };
}

export function demoHandler(sse: SSE, page: string): (request: Request) => Promise<Response> {
  return async (request) => {
    const { pathname } = new URL(request.url);
    switch (pathname) {
      case '/':
        return allowOnly(request, ['GET', 'HEAD']) ?? pageResponse(page);
      case '/stream':
        return sse.handler(request);
      case '/send':
        return allowOnly(request, ['POST']) ?? publish(sse, request);
      default:
        return json(404, { error: `Not found: ${pathname}` });
    }
  };
}

function pageResponse(page: string): Response {
  return new Response(page, {
    headers: { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' },
  });
}

async function publish(sse: SSE, request: Request): Promise<Response> {
  const body = await readSendBody(request);
  if (typeof body === 'string') return json(400, { error: body });
  const { type, data, channel } = body as { type: string; data: unknown; channel?: string };
  try {
    // EventSource only hands a page the types it listens for: announce a new one just before it.
    const event = { type, data, channel };
    const announce = typeof type === 'string' && !BUILT_IN_TYPES.has(type);
    // sendEvents checks both before publishing either: a bad event is refused with its own reason.
    const events = announce ? [{ type: TYPE_ANNOUNCEMENT, data: type, channel }, event] : [event];
    const ids = await sse.sendEvents(events);
    return json(200, { id: ids.at(-1) });
  } catch (error) {
    if (error instanceof ValidationError) return json(400, { error: error.message });
    throw error; // a backend failure: the Node adapter answers 500 and logs it
  }
}

/** The parsed `{ type, data, channel }` object, or why it is not one. The library validates the fields. */
async function readSendBody(request: Request): Promise<Record<string, unknown> | string> {
  const usage = 'Send a JSON object: { "type": "greeting", "data": "hello", "channel": "sse" }';
  const text = await readTextUpTo(request, MAX_SEND_BODY_BYTES);
  if (text === undefined) return `Body too large: at most ${MAX_SEND_BODY_BYTES} bytes`;
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    return `Body is not valid JSON. ${usage}`;
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return `Body is not a JSON object. ${usage}`;
  return body as Record<string, unknown>;
}

/** The body as text, or undefined (having stopped reading) once it exceeds `maxBytes`. */
async function readTextUpTo(request: Request, maxBytes: number): Promise<string | undefined> {
  if (!request.body) return '';
  const reader = request.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (let chunk = await reader.read(); !chunk.done; chunk = await reader.read()) {
    size += chunk.value.byteLength;
    if (size > maxBytes) {
      await reader.cancel();
      return undefined;
    }
    chunks.push(chunk.value);
  }
  return new TextDecoder().decode(Buffer.concat(chunks));
}

function allowOnly(request: Request, methods: string[]): Response | undefined {
  if (methods.includes(request.method)) return undefined;
  return json(405, { error: `Method ${request.method} is not allowed here` }, { allow: methods.join(', ') });
}

function json(status: number, body: unknown, headers: Record<string, string> = {}): Response {
  return Response.json(body, { status, headers: { 'cache-control': 'no-store', ...headers } });
}

function portFromEnv(value: string | undefined): number {
  if (value === undefined || value === '') return 3000;
  const port = Number(value);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new Error(`PORT must be a whole number from 0 to 65535, got ${JSON.stringify(value)}`);
  }
  return port;
}

async function main(): Promise<void> {
  const bridged = process.argv.includes('--bridge') ? await bridgedBackend() : undefined;
  const demo = await startDemo({
    port: portFromEnv(process.env.PORT),
    hostname: process.env.HOST || undefined,
    backend: bridged?.backend,
  });
  console.log(`edge-sse demo on ${demo.url} (backend: ${bridged?.describe ?? demo.backend.name})`);
  const shutDown = () => {
    Promise.all([demo.close(), bridged?.backend.close(), bridged?.bridge.close()]).then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.once('SIGINT', shutDown);
  process.once('SIGTERM', shutDown);
}

function isEntryPoint(): boolean {
  const script = process.argv[1];
  return script !== undefined && resolve(script) === fileURLToPath(import.meta.url);
}

if (isEntryPoint()) {
  main().catch((error: unknown) => {
    console.error(`edge-sse demo could not start: ${error instanceof Error ? error.message : String(error)}`);
    process.exit(1);
  });
}
