/** Counters a test or benchmark can read to see how many Redis HTTP requests really happened. */
export interface BridgeStats {
  /** Every HTTP request received, whatever its outcome (401, 404 and 413 included). */
  requests: number;
  /** `requests`, split by the endpoint the path names. */
  byPath: {
    /** `POST /` and path-style commands (`GET /get/key`) — one command. */
    command: number;
    /** `POST /pipeline`. */
    pipeline: number;
    /** `POST /multi-exec`. */
    multiExec: number;
    /** `POST /subscribe/…` and `POST /psubscribe/…`. */
    subscribe: number;
    /** Requests with a method the bridge does not serve (answered 405). */
    other: number;
  };
  /** Redis commands forwarded to Redis (a pipeline of 3 counts 3; MULTI/EXEC are not counted). */
  commands: number;
  /** Subscription streams opened since the start (each once Redis confirmed it). */
  subscriptions: number;
  /** Subscriptions currently streaming. */
  openSubscriptions: number;
  /** `message`/`pmessage` events written to subscribers. */
  pushedMessages: number;
}

export type PathKind = keyof BridgeStats['byPath'];

export function createStats(): BridgeStats {
  return {
    requests: 0,
    byPath: { command: 0, pipeline: 0, multiExec: 0, subscribe: 0, other: 0 },
    commands: 0,
    subscriptions: 0,
    openSubscriptions: 0,
    pushedMessages: 0,
  };
}

export function snapshot(stats: BridgeStats): BridgeStats {
  return { ...stats, byPath: { ...stats.byPath } };
}
