// The built package (dist/, plain file imports: nothing for Deno or Bun to download) served by
// Deno.serve or Bun.serve, whichever runtime runs this file, with each runtime's defaults.
//   GET  /stream/<backend>?channel=…   the stream handler (no options beyond the backend)
//   POST /send/<backend>               { type, data, channel } → sendEvent → { id }
//   GET  /stats/<backend>              the handler's stats()
// Backends: memory, upstash (BRIDGE_URL, BRIDGE_TOKEN) and redis (REDIS_URL, TCP through ioredis),
// both under PREFIX; and quiet, a memory backend of its own for a stream that nothing is sent to.
// Prints `listening <port>` once it accepts connections.
import { ValidationError, createStreamHandler, memoryBackend, sendEvent } from '../../dist/index.js';
import { redisBackend } from '../../dist/redis.js';
import { upstashBackend } from '../../dist/upstash.js';

const env = globalThis.Deno ? Deno.env.toObject() : process.env;
const prefix = env.PREFIX;

const backends = {
  memory: memoryBackend(),
  upstash: upstashBackend({ url: env.BRIDGE_URL, token: env.BRIDGE_TOKEN, prefix }),
  redis: redisBackend({ url: env.REDIS_URL, prefix }),
  quiet: memoryBackend(),
};
const streams = Object.fromEntries(Object.entries(backends).map(([name, backend]) => [name, createStreamHandler({ backend })]));

async function send(request, backend) {
  try {
    const { type, data, channel } = await request.json();
    return Response.json({ id: await sendEvent(type, data, { backend, channel }) });
  } catch (error) {
    if (error instanceof ValidationError) return Response.json({ error: error.message, code: error.code }, { status: 400 });
    throw error;
  }
}

function route(request) {
  const [, action, name] = new URL(request.url).pathname.split('/');
  const backend = backends[name];
  if (!backend) return new Response('Not found', { status: 404 });
  if (action === 'stream') return streams[name](request);
  if (action === 'send' && request.method === 'POST') return send(request, backend);
  if (action === 'stats') return Response.json(streams[name].stats());
  return new Response('Not found', { status: 404 });
}

const listening = (port) => console.log(`listening ${port}`);
if (globalThis.Deno) {
  Deno.serve({ hostname: '127.0.0.1', port: 0, onListen: ({ port }) => listening(port) }, route);
} else {
  listening(Bun.serve({ hostname: '127.0.0.1', port: 0, fetch: route }).port);
}
