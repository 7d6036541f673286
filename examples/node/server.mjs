// edge-sse on plain node:http: GET /stream?channel=… (SSE) and POST /send { type, data, channel }.
// Needs UPSTASH_REDIS_REST_URL and UPSTASH_REDIS_REST_TOKEN; run with `node server.mjs`.
import { createServer } from 'node:http';
import { ValidationError, createStreamHandler, sendEvent } from 'edge-sse';
import { toNodeHandler } from 'edge-sse/node';
import { upstashBackend } from 'edge-sse/upstash';

const backend = upstashBackend();
// A long-lived server has no platform deadline; ending streams every few minutes still spreads
// reconnections out after a deploy. Client disconnects are detected from the socket.
const stream = createStreamHandler({ backend, maxDurationMs: 600_000 });

async function send(request) {
  if (request.method !== 'POST') return Response.json({ error: 'Use POST' }, { status: 405 });
  try {
    const { type, data, channel } = await request.json();
    return Response.json({ id: await sendEvent(type, data, { backend, channel }) });
  } catch (error) {
    if (error instanceof ValidationError || error instanceof SyntaxError) {
      return Response.json({ error: error.message }, { status: 400 });
    }
    throw error;
  }
}

// Route before the fetch handlers: given the stream handler itself, toNodeHandler keeps no
// Request or Response per open stream (a wrapper around it works too, with ~4 KiB more each).
const routes = {
  '/stream': toNodeHandler(stream),
  '/send': toNodeHandler(send),
};
const notFound = toNodeHandler(() => Response.json({ error: 'Not found' }, { status: 404 }));

const port = Number(process.env.PORT ?? 3000);
createServer((req, res) => {
  const pathname = new URL(req.url ?? '/', 'http://localhost').pathname;
  return (routes[pathname] ?? notFound)(req, res);
}).listen(port, '127.0.0.1', () => {
  console.log(`edge-sse listening on http://127.0.0.1:${port}`);
});
