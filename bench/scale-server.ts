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
import type { CloseReason } from '../src/server/session.js';
import { core, node, redis, upstash } from './subject.js';
import { EVENT_TYPE } from './events.js';
import type { ServerConfig } from './scale-protocol.js';
import { type Subject, betterSse, serveDriver, socketFloor } from './server-process.ts';

const CHANNEL = 'scale';
const PATH = `/events?channel=${CHANNEL}`;
/** Long enough that no stream reaches its deadline during a run (edge-sse's default is 4 min). */
const MAX_DURATION_MS = 3_600_000;

const config = JSON.parse(process.argv[2]!) as ServerConfig;

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

async function main(): Promise<void> {
  const subject =
    config.contender === 'better-sse' ? await betterSse() : config.contender === 'socket floor' ? await socketFloor() : await edge();
  serveDriver(subject, { path: PATH });
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
