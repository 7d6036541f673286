/** IPC messages between the multi-process benchmarks (`scale.ts`, `paths.ts`) and their server and client processes. */

export type Contender =
  | 'socket floor'
  | 'better-sse'
  | 'edge-sse memory'
  | 'edge-sse memory (wrapped)'
  | 'edge-sse redis'
  | 'edge-sse upstash';

/** The paths benchmark's servers (`paths-server.ts`): edge-sse along each path, better-sse, the floor. */
export type PathsContender =
  | 'socket floor'
  | 'web-stream floor (@hono/node-server)'
  | 'edge-sse/node direct'
  | 'edge-sse @hono/node-server'
  | 'edge-sse Readable.fromWeb'
  | 'edge-sse Bun.serve'
  | 'edge-sse Deno.serve'
  | 'better-sse';

export interface ServerConfig {
  contender: Contender;
  /** Key prefix for the Redis backends (deleted afterwards by the parent). */
  prefix: string;
  redisUrl: string;
  /** The bridge in front of Redis, for `edge-sse upstash`. */
  bridgeUrl?: string;
  token?: string;
}

type WithId<T> = T & { id: number };

export type ClientCommand = WithId<ClientRequest>;
export type ClientRequest =
  | { type: 'clock' }
  | {
      type: 'open';
      count: number;
      port: number;
      path: string;
      sourceAddresses: string[];
      inFlight: number;
      /** Stop reading after the status line. */
      stall?: boolean;
      timeoutMs: number;
    }
  | { type: 'watch'; seq: number }
  | { type: 'wait'; seq: number; timeoutMs: number }
  | { type: 'count' }
  | { type: 'close' };

export type ClientReply = WithId<
  | { type: 'clock'; now: number }
  | { type: 'opened'; opened: number; failed: number; total: number }
  | { type: 'watching' }
  | { type: 'arrivals'; seq: number; times: number[] }
  | { type: 'count'; open: number; total: number }
  | { type: 'closed' }
>;

export interface Memory {
  heapUsed: number;
  rss: number;
  external: number;
  arrayBuffers: number;
}

export interface ServerStats {
  /** Streams the server holds right now. */
  open: number;
  /** Requests the backend made (edge-sse's own count; 0 for the others). */
  backendRequests: number;
  /** Streams ended because their client stopped reading. */
  closedSlow: number;
}

export type ServerCommand = WithId<ServerRequest>;
export type ServerRequest =
  | { type: 'clock' }
  | { type: 'memory' }
  | { type: 'stats' }
  /** One event with `"seq":seq` (and `padBytes` of padding) to every connection. */
  | { type: 'publish'; seq: number; padBytes?: number }
  | { type: 'close' };

export type ServerReply = WithId<
  | { type: 'clock'; now: number }
  | ({ type: 'memory' } & Memory)
  | ({ type: 'stats' } & ServerStats)
  /** `at`: just before the publish call, server clock. */
  | { type: 'published'; at: number }
  | { type: 'closed' }
>;

/** Sent once, unprompted, when the server listens. */
export interface ServerReady {
  type: 'listening';
  port: number;
  path: string;
  /** The runtime the server runs on, as it reports itself (`node v22.23.5`, `Bun 1.4.5`); paths servers only. */
  runtime?: string;
}
