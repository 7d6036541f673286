/**
 * What the benchmarks' server processes share (`scale-server.ts` under Node, `paths-server.ts`
 * under Node, Bun and Deno): the contenders that are not edge-sse, listening on node:http, the
 * memory reading and the IPC loop the driver talks to. Runtime-neutral: node:http and Node's IPC
 * channel exist in all three.
 */
import { EVENT_TYPE, makeEvents } from './events.ts';
import type { Memory, ServerCommand, ServerReady, ServerReply, ServerStats } from './scale-protocol.ts';
import { startSocketFloor } from './socket-floor.ts';

export interface Subject {
  port: number;
  publish(payload: object): void;
  stats(): ServerStats;
  close(): Promise<void>;
}

export type Listening = Pick<Subject, 'port' | 'close'>;

interface NodeServer {
  listen(options: { port: number; host: string; backlog: number }, callback: () => void): unknown;
  address(): unknown;
  close(callback: () => void): unknown;
  closeAllConnections?(): void;
}

/** Listens on 127.0.0.1 with a backlog that takes the clients' bursts of connections. */
export function listenNode(server: NodeServer): Promise<Listening> {
  return new Promise((resolve) => {
    server.listen({ port: 0, host: '127.0.0.1', backlog: 4096 }, () => {
      resolve({ port: (server.address() as { port: number }).port, close: () => closeNode(server) });
    });
  });
}

export function closeNode(server: Pick<NodeServer, 'close' | 'closeAllConnections'>): Promise<void> {
  return new Promise((done) => {
    server.close(() => done());
    server.closeAllConnections?.();
  });
}

/** better-sse on node:http, its native adapter: one channel, every session registered on it. */
export async function betterSse(): Promise<Subject> {
  const { createChannel, createSession } = await import('better-sse');
  const { createServer } = await import('node:http');
  const channel = createChannel();
  const server = createServer((req, res) => {
    // createSession resolves once the session is connected (head and retry sent).
    void createSession(req, res).then((session) => channel.register(session));
  });
  return {
    ...(await listenNode(server)),
    publish: (payload) => void channel.broadcast(payload, EVENT_TYPE),
    stats: () => ({ open: channel.sessionCount, backendRequests: 0, closedSlow: 0 }),
  };
}

/** The same frames written straight to each socket, no HTTP library (`socket-floor.ts`). */
export async function socketFloor(): Promise<Subject> {
  const floor = await startSocketFloor();
  return {
    port: floor.port,
    publish: (payload) => floor.publish(EVENT_TYPE, payload),
    stats: () => ({ open: floor.open(), backendRequests: 0, closedSlow: 0 }),
    close: floor.close,
  };
}

const runtime = globalThis as { Bun?: { gc(force: boolean): void }; gc?: () => void };

function collectGarbage(): void {
  if (runtime.Bun) return runtime.Bun.gc(true);
  if (!runtime.gc) throw new Error('bench servers need gc: node --expose-gc, deno --v8-flags=--expose-gc');
  runtime.gc();
  runtime.gc();
}

function memory(): Memory {
  collectGarbage();
  const { heapUsed, rss, external, arrayBuffers } = process.memoryUsage();
  return { heapUsed, rss, external, arrayBuffers };
}

/** Answers the driver's commands for `subject` until it says close, after announcing where it listens. */
export function serveDriver(subject: Subject, ready: Omit<ServerReady, 'type' | 'port'>): void {
  const events = makeEvents();
  const now = () => performance.timeOrigin + performance.now();
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
  process.send!({ type: 'listening', port: subject.port, ...ready } satisfies ServerReady);
}
