// edge-sse on plain node:http: GET /stream?channel=… (SSE) and POST /send { type, data, channel }.
// Needs UPSTASH_REDIS_REST_URL and UPSTASH_REDIS_REST_TOKEN; run with `node server.mjs`.
import { createServer } from 'node:http';
import { ValidationError, createStreamHandler, sendEvent } from 'edge-sse';
import { toNodeHandler } from 'edge-sse/node';
import { upstashBackend } from 'edge-sse/upstash';

const backend = upstashBackend();
// A long-lived server has no platform deadline; ending streams every few minutes still spreads
// reconnections out after a deploy. Client disconnects are detected (request.signal aborts).
const stream = createStreamHandler({ backend, maxDurationMs: 600_000 });

async function app(request) {
  const { pathname } = new URL(request.url);
  if (pathname === '/stream') return stream(request);
  if (pathname === '/send' && request.method === 'POST') {
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
  return Response.json({ error: 'Not found' }, { status: 404 });
}

const port = Number(process.env.PORT ?? 3000);
createServer(toNodeHandler(app)).listen(port, '127.0.0.1', () => {
  console.log(`edge-sse listening on http://127.0.0.1:${port}`);
});
