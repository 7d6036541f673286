/**
 * The server side of the paths benchmark, one contender per process (`bench/paths.ts` spawns it).
 * Runs unchanged under Node (through tsx), Bun and Deno, and speaks the scale benchmark's IPC
 * protocol (Bun and Deno implement Node's IPC channel). edge-sse is the built package, its stream
 * handler on the memory backend, reached along each path a user might take:
 *
 * - `edge-sse/node direct`: `serve(handler)` from edge-sse/node, frames written straight to `res`;
 * - `@hono/node-server`: its `serve({ fetch })`, which reads the Response body's web stream;
 * - `Readable.fromWeb`: a hand-written node:http adapter piping `Readable.fromWeb(body)` into `res`;
 * - `Bun.serve` and `Deno.serve` with their defaults;
 *
 * beside better-sse on node:http (its native adapter) and two floors: a `net` server that writes
 * the status line and then the same frames (`id:`, `event:`, `data:`) straight to each socket, and
 * the least a web-stream server can do on @hono/node-server: one ReadableStream per connection,
 * each frame enqueued into every stream's controller.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { EVENT_TYPE } from './events.ts';
import type { PathsContender } from './scale-protocol.ts';
import { type Listening, type Subject, betterSse, closeNode, listenNode, serveDriver, socketFloor } from './server-process.ts';
import { nextFloorId } from './socket-floor.ts';

interface BunRuntime {
  version: string;
  serve(options: { hostname: string; port: number; fetch: (request: Request) => Response | Promise<Response> }): {
    port: number;
    stop(force: boolean): void;
  };
}
interface DenoRuntime {
  version: { deno: string };
  serve(
    options: { hostname: string; port: number; onListen(address: { port: number }): void },
    handler: (request: Request) => Response | Promise<Response>,
  ): { shutdown(): Promise<void> };
}
const runtime = globalThis as { Bun?: BunRuntime; Deno?: DenoRuntime };

const CHANNEL = 'paths';
const PATH = `/events?channel=${CHANNEL}`;
/** Long enough that no stream reaches its deadline during a run. */
const MAX_DURATION_MS = 3_600_000;

const { contender, dist: otherBuild } = JSON.parse(process.argv.at(-1)!) as { contender: PathsContender; dist?: string };
/** This package's dist/, or another build's (an absolute directory: `BENCH_PATHS_BASELINE`). */
const distDirectory = otherBuild ? `file://${otherBuild.replace(/\/?$/, '/')}` : new URL('../dist/', import.meta.url).href;
const dist = (entry: string) => new URL(`${entry}.js`, distDirectory).href;

async function edge(): Promise<Subject> {
  const core = (await import(dist('index'))) as typeof import('../src/index.js');
  const backend = core.memoryBackend();
  const handler = core.createStreamHandler({ backend, maxDurationMs: MAX_DURATION_MS });
  const listening = await serveEdge(handler);
  return {
    ...listening,
    publish: (payload) => void core.sendEvent(EVENT_TYPE, payload, { backend, channel: CHANNEL }).catch(console.error),
    stats: () => ({ open: handler.stats().openStreams, backendRequests: 0, closedSlow: 0 }),
  };
}

type Fetch = (request: Request) => Promise<Response>;

async function serveEdge(handler: Fetch): Promise<Listening> {
  switch (contender) {
    case 'edge-sse/node direct': {
      const node = (await import(dist('node'))) as typeof import('../src/adapters/node.js');
      const server = await node.serve(handler, { onError: () => {} });
      return { port: Number(new URL(server.url).port), close: server.close };
    }
    case 'edge-sse @hono/node-server': {
      const { serve } = await import('@hono/node-server');
      // A wrapper, as `app.fetch` of a router would be.
      const server = serve({ fetch: (request: Request) => handler(request), hostname: '127.0.0.1', port: 0 });
      await new Promise((resolve) => server.once('listening', resolve));
      return { port: (server.address() as { port: number }).port, close: () => closeNode(server) };
    }
    case 'edge-sse Readable.fromWeb':
      return fromWebAdapter(handler);
    case 'edge-sse Bun.serve': {
      const server = runtime.Bun!.serve({ hostname: '127.0.0.1', port: 0, fetch: handler });
      return { port: server.port, close: async () => server.stop(true) };
    }
    case 'edge-sse Deno.serve': {
      let port!: (value: number) => void;
      const bound = new Promise<number>((resolve) => (port = resolve));
      const server = runtime.Deno!.serve({ hostname: '127.0.0.1', port: 0, onListen: (address) => port(address.port) }, handler);
      return { port: await bound, close: () => server.shutdown() };
    }
    default:
      throw new Error(`not an edge-sse contender: ${contender}`);
  }
}

/** The adapter many apps write by hand: a Request in, the Response body piped through Readable.fromWeb. */
async function fromWebAdapter(handler: Fetch): Promise<Listening> {
  const { createServer } = await import('node:http');
  const { Readable, pipeline } = await import('node:stream');
  const server = createServer(async (req: IncomingMessage, res: ServerResponse) => {
    const clientGone = new AbortController();
    res.once('close', () => clientGone.abort());
    const headers = new Headers();
    for (let index = 0; index < req.rawHeaders.length; index += 2) headers.append(req.rawHeaders[index]!, req.rawHeaders[index + 1]!);
    const response = await handler(new Request(`http://${req.headers.host}${req.url}`, { headers, signal: clientGone.signal }));
    res.writeHead(response.status, Object.fromEntries(response.headers));
    res.flushHeaders();
    if (!response.body) return void res.end();
    pipeline(Readable.fromWeb(response.body as import('node:stream/web').ReadableStream), res, () => {});
  });
  return listenNode(server);
}

/** The cheapest web-stream server: what any library answering with a ReadableStream pays on this adapter. */
async function webStreamFloor(): Promise<Subject> {
  const { serve } = await import('@hono/node-server');
  const controllers = new Set<ReadableStreamDefaultController<Uint8Array>>();
  const encoder = new TextEncoder();
  const server = serve({
    fetch: () => {
      let own: ReadableStreamDefaultController<Uint8Array>;
      const body = new ReadableStream<Uint8Array>({
        start(controller) {
          own = controller;
          controller.enqueue(encoder.encode('retry: 1000\n: edge-sse\n\n'));
          controllers.add(controller);
        },
        cancel: () => void controllers.delete(own),
      });
      return new Response(body, { headers: { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' } });
    },
    hostname: '127.0.0.1',
    port: 0,
  });
  await new Promise((resolve) => server.once('listening', resolve));
  return {
    port: (server.address() as { port: number }).port,
    close: () => closeNode(server),
    publish: (payload) => {
      const frame = encoder.encode(`id: ${nextFloorId()}\nevent: ${EVENT_TYPE}\ndata: ${JSON.stringify(payload)}\n\n`);
      for (const controller of controllers) controller.enqueue(frame);
    },
    stats: () => ({ open: controllers.size, backendRequests: 0, closedSlow: 0 }),
  };
}

/** What this process runs on, as the runtime itself says (the driver checks it against the binary it asked for). */
function runtimeVersion(): string {
  if (runtime.Bun) return `Bun ${runtime.Bun.version}`;
  if (runtime.Deno) return `Deno ${runtime.Deno.version.deno}`;
  return `node ${process.version}`;
}

async function main(): Promise<void> {
  const subject =
    contender === 'socket floor'
      ? await socketFloor()
      : contender === 'web-stream floor (@hono/node-server)'
        ? await webStreamFloor()
        : contender === 'better-sse'
          ? await betterSse()
          : await edge();
  serveDriver(subject, { path: PATH, runtime: runtimeVersion() });
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
