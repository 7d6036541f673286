import { createStreamHandler } from 'edge-sse';
import { backend } from '../../../lib/sse';

// The default Node.js runtime (the edge runtime is deprecated in Next 16).
// How long Vercel lets this function run, in seconds: 300 is the most Hobby allows.
export const maxDuration = 300;

/**
 * GET /api/stream?channel=news → text/event-stream. Vercel's Node runtime never tells the
 * function that the client left, so the stream ends itself before maxDuration (after 80–100%
 * of maxDurationMs); the browser's EventSource reconnects with Last-Event-ID and misses nothing.
 */
export const GET = createStreamHandler({
  backend,
  maxDurationMs: 280_000,
  keepAliveMs: 15_000,
});
