/**
 * One of the K server processes of `bench/processes.ts`: edge-sse/redis (one Redis or a cluster)
 * behind `serve` from edge-sse/node, answering any `GET /?channel=…` with an event stream.
 */
import { core, node, redis } from './subject.js';

export interface ProcessesServerConfig {
  url?: string;
  cluster?: string[];
  prefix: string;
}

export type ProcessesServerMessage =
  | { type: 'listening'; port: number }
  | { id: number; type: 'stats'; open: number; requests: number }
  | { id: number; type: 'closed' };

const config = JSON.parse(process.argv[2]!) as ProcessesServerConfig;
const backend = redis.redisBackend(
  config.cluster ? { cluster: config.cluster, prefix: config.prefix } : { url: config.url, prefix: config.prefix },
);
const sse = core.createSSE({ backend, maxDurationMs: 3_600_000 });
const server = await node.serve(sse.handler, { onError: () => {} });
const send = (message: ProcessesServerMessage) => process.send!(message);
send({ type: 'listening', port: Number(new URL(server.url).port) });

process.on('message', async (message: { id: number; type: 'stats' | 'close' }) => {
  if (message.type === 'stats') {
    const stats = sse.handler.stats();
    return send({ id: message.id, type: 'stats', open: stats.openStreams, requests: backend.stats().requests });
  }
  await server.close();
  await backend.close();
  send({ id: message.id, type: 'closed' });
  process.exit(0);
});
