/**
 * edge-sse/cloudflare — one upstream reader per channel on Cloudflare Workers, through Durable
 * Objects: the Worker admits each stream request and routes it to the object of its channel set,
 * which reads the channels once and fans them out to all its listeners.
 *
 *   export const StreamObject = createStreamObject((env) => ({
 *     backend: upstashBackend({ url: env.UPSTASH_REDIS_REST_URL, token: env.UPSTASH_REDIS_REST_TOKEN, shareable: true }),
 *     namespace: env.SSE,
 *   }));
 *   export default { fetch: (request, env) => createDurableStreamHandler({ namespace: env.SSE })(request) };
 */
export {
  createStreamObject,
  type StreamObjectClass,
  type StreamObjectInstance,
  type StreamObjectOptions,
} from './object.js';
export { createDurableStreamHandler, type DurableStreamHandler, type DurableStreamHandlerOptions } from './worker.js';
export { objectName, type StreamObjectNamespace } from './routing.js';
