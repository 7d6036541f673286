/**
 * The server side of the scale benchmark, one contender per process (`bench/scale.ts` spawns it
 * with `--expose-gc` and a raised file limit): edge-sse through `serve` from edge-sse/node on the
 * memory, Redis (TCP) or Upstash (REST, through the bridge) backend, the memory one also behind a
 * wrapper function (`serve((request) => sse.handler(request))`); better-sse on node:http
 * (its native adapter); or the socket floor (`socket-floor.ts`: the same frames straight to each socket).
 *
 * Every contender answers `GET /events?channel=scale` with an event stream and publishes each
 * event its usual way; the payload carries `"seq":N`, which the clients look for.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createChannel, createSession } from 'better-sse';
import type { CloseReason } from '../src/server/session.js';
import { core, node, redis, upstash } from './subject.js';
import { EVENT_TYPE, makeEvents } from './events.js';
import { startSocketFloor } from './socket-floor.js';
import type { Memory, ServerCommand, ServerConfig, ServerReady, ServerReply, ServerStats } from './scale-protocol.js';

const CHANNEL = 'scale';
const PATH = `/events?channel=${CHANNEL}`;
/** Long enough that no stream reaches its deadline during a run (edge-sse's default is 4 min). */
const MAX_DURATION_MS = 3_600_000;

interface Subject {
  port: number;
  publish(payload: object): void;
  stats(): ServerStats;
  close(): Promise<void>;
}

const config = JSON.parse(process.argv[2]!) as ServerConfig;
const now = () => performance.timeOrigin + performance.now();
const events = makeEvents();

function gc(): void {
  const collect = (globalThis as { gc?: () => void }).gc;
  if (!collect) throw new Error('scale-server needs --expose-gc');
  collect();
  collect();
}

async function edge(): Promise<Subject> {
  const backend =
    config.contender === 'edge-sse redis'
      ? redis.redisBackend({ url: config.redisUrl, prefix: config.prefix })
      : config.contender === 'edge-sse upstash'
        ? upstash.upstashBackend({ url: config.bridgeUrl!, token: config.token!, prefix: config.prefix, mode: 'subscribe' })
        : core.memoryBackend();
  let closedSlow = 0;
  const sse = core.createSSE({
    backend,
    maxDurationMs: MAX_DURATION_MS,
    onDisconnect: (_info, reason: CloseReason) => {
      if (reason === 'slow-client') closedSlow++;
    },
  });
  // Wrapped, the handler is reached through the fetch contract (a Request per stream), as behind a router.
  const handler = config.contender === 'edge-sse memory (wrapped)' ? (request: Request) => sse.handler(request) : sse.handler;
  const server = await node.serve(handler, { onError: () => {} });
  return {
    port: Number(new URL(server.url).port),
    publish: (payload) => void sse.sendEvent(EVENT_TYPE, payload, { channel: CHANNEL }).catch(console.error),
    stats: () => {
      const stats = sse.handler.stats();
      return { open: stats.openStreams, backendRequests: stats.backendRequests, closedSlow };
    },
    close: async () => {
      await server.close();
      await backend.close();
    },
  };
}

async function better(): Promise<Subject> {
  const channel = createChannel();
  const server = createServer((req, res) => {
    // createSession resolves once the session is connected (head and retry sent).
    void createSession(req, res).then((session) => channel.register(session));
  });
  return listening(server, {
    publish: (payload) => void channel.broadcast(payload, EVENT_TYPE),
    stats: () => ({ open: channel.sessionCount, backendRequests: 0, closedSlow: 0 }),
  });
}

async function floor(): Promise<Subject> {
  const floor = await startSocketFloor();
  return {
    port: floor.port,
    publish: (payload) => floor.publish(EVENT_TYPE, payload),
    stats: () => ({ open: floor.open(), backendRequests: 0, closedSlow: 0 }),
    close: floor.close,
  };
}

function listening(server: ReturnType<typeof createServer>, subject: Pick<Subject, 'publish' | 'stats'>): Promise<Subject> {
  server.keepAliveTimeout = 0;
  return new Promise((resolve) => {
    server.listen({ port: 0, host: '127.0.0.1', backlog: 4096 }, () => {
      resolve({
        ...subject,
        port: (server.address() as AddressInfo).port,
        close: () =>
          new Promise<void>((done) => {
            server.close(() => done());
            server.closeAllConnections();
          }),
      });
    });
  });
}

function memory(): Memory {
  gc();
  const { heapUsed, rss, external, arrayBuffers } = process.memoryUsage();
  return { heapUsed, rss, external, arrayBuffers };
}

async function main(): Promise<void> {
  const subject = config.contender === 'better-sse' ? await better() : config.contender === 'socket floor' ? await floor() : await edge();
  const reply = (message: ServerReply) => process.send!(message);
  process.on('message', (message: ServerCommand) => {
    const { id } = message;
    switch (message.type) {
      case 'clock':
        return reply({ id, type: 'clock', now: now() });
      case 'memory':
        return reply({ id, type: 'memory', ...memory() });
      case 'stats':
        return reply({ id, type: 'stats', ...subject.stats() });
      case 'publish': {
        const event = events[message.seq % events.length]!;
        const payload = message.padBytes
          ? { seq: message.seq, ...event.object, pad: 'x'.repeat(message.padBytes) }
          : { seq: message.seq, ...event.object };
        const at = now();
        subject.publish(payload);
        return reply({ id, type: 'published', at });
      }
      case 'close':
        void subject.close().finally(() => {
          reply({ id, type: 'closed' });
          setTimeout(() => process.exit(0), 50);
        });
        return;
    }
  });
  process.on('disconnect', () => process.exit(0));
  process.send!({ type: 'listening', port: subject.port, path: PATH } satisfies ServerReady);
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
