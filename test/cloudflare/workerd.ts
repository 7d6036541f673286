/**
 * Runs test/cloudflare/fixture-worker.ts in real workerd (miniflare), bundled from src/ by
 * esbuild, its Redis behind the project's bridge (over the real Redis) and a TCP proxy that a
 * test can cut, to play an Upstash outage. The bridge counts every request the Worker makes.
 */
import { randomBytes } from 'node:crypto';
import { type Server, type Socket, connect, createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { Miniflare } from 'miniflare';
import { type Bridge, createBridge } from '../../src/bridge/index.ts';
import { REDIS_URL } from '../helpers/redis.ts';

export interface Workerd {
  url: string;
  /** What the Worker and its objects printed (console.log) so far. */
  logs(): string;
  dispose(): Promise<void>;
}

export async function bundleFixture(): Promise<string> {
  const result = await build({
    entryPoints: [fileURLToPath(new URL('./fixture-worker.ts', import.meta.url))],
    bundle: true,
    format: 'esm',
    platform: 'neutral',
    target: 'es2022',
    conditions: ['workerd', 'worker', 'browser'],
    external: ['cloudflare:workers'],
    write: false,
    logLevel: 'silent',
  });
  return result.outputFiles[0]!.text;
}

export async function startWorkerd(script: string, bindings: Record<string, string>): Promise<Workerd> {
  let logs = '';
  const mf = new Miniflare({
    modules: [{ type: 'ESModule', path: 'worker.js', contents: script }],
    compatibilityDate: '2026-04-20',
    compatibilityFlags: ['enable_request_signal'],
    durableObjects: {
      SSE: 'StreamObject',
      SHORT: 'ShortObject',
      LINGER: 'LingerObject',
      TIGHT: 'TightObject',
      BROKEN: 'BrokenObject',
      SHARED: 'SharedObject',
    },
    bindings,
    host: '127.0.0.1',
    port: 0,
    cf: false,
    structuredWorkerdLogs: true,
    handleStructuredLogs: ({ message }: { message: string }) => {
      logs += `${message}\n`;
    },
  });
  const url = (await mf.ready).toString().replace(/\/$/, '');
  return { url, logs: () => logs, dispose: () => mf.dispose() };
}

export const TOKEN = randomBytes(16).toString('hex');

export function startBridge(): Promise<Bridge> {
  return createBridge({ token: TOKEN, redis: REDIS_URL });
}

/** A TCP proxy: `cut()` drops every open connection, `down()` refuses new ones until `up()`. */
export interface Proxy {
  url: string;
  cut(): void;
  down(): void;
  up(): void;
  close(): Promise<void>;
}

export async function startProxy(target: Bridge): Promise<Proxy> {
  const sockets = new Set<Socket>();
  let refusing = false;
  const server: Server = createServer((client) => {
    if (refusing) return void client.destroy();
    const upstream = connect(target.port, '127.0.0.1');
    for (const socket of [client, upstream]) {
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
      socket.on('error', () => undefined);
    }
    client.pipe(upstream).pipe(client);
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  const cut = () => {
    for (const socket of sockets) socket.destroy();
  };
  return {
    url: `http://127.0.0.1:${port}`,
    cut,
    down: () => {
      refusing = true;
      cut();
    },
    up: () => {
      refusing = false;
    },
    close: () => {
      cut();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}
