/**
 * Commands to a Redis Cluster through ioredis's `Cluster`, which sends each to the master serving
 * its key's slot and follows MOVED, ASK, TRYAGAIN and failovers. One "pipeline" of commands on
 * keys of several slots becomes one request per master (auto-pipelining: the commands to one node
 * leave together), sent at once; replies come back in order.
 */
import type { Cluster } from 'ioredis';
import { BackendError, backendTimeout } from '../../../common/errors.js';
import { describeCommands, within } from '../../deadline.js';
import { READY_TIMEOUT_MS, whenReady } from '../connect.js';
import { slotOfKey } from './slots.js';
import type { RedisCommand, RedisReply, RedisTransport } from '../../redis-streams/transport.js';
import type { CallOptions } from '../../contract.js';

/** Replies that mean the cluster could not serve the slot now (it is moving, failing over or down). */
const UNSERVED = /^(CLUSTERDOWN|TRYAGAIN|MOVED|ASK|LOADING|MASTERDOWN)\b/;

export class ClusterTransport implements RedisTransport {
  requests = 0;

  constructor(
    readonly cluster: Cluster,
    /** The seed nodes, for messages (without passwords). */
    readonly seeds: string,
    readonly timeoutMs: number,
  ) {}

  async pipeline(commands: RedisCommand[], options: CallOptions = {}): Promise<(RedisReply | Error)[]> {
    for (let node = this.nodesOf(commands); node > 0; node--) {
      options.onRequest?.();
      this.requests++;
    }
    const called = describeCommands(commands);
    try {
      return await this.bounded(this.send(commands), called.names, called.publishes);
    } catch (error) {
      throw error instanceof BackendError ? error : this.unreachable(error);
    }
  }

  /** `work` on the cluster, failing with BACKEND_TIMEOUT after `timeoutMs` (its reply, if it comes, is dropped). */
  bounded<T>(work: Promise<T>, what: string, publishes = false, ms = this.timeoutMs): Promise<T> {
    return within(work, ms, () => backendTimeout(`Redis Cluster at ${this.seeds} (${what})`, ms, publishes));
  }

  /** The master serving `slot` as `host:port`, once the cluster's slot map is known. */
  masterOf(slot: number): string | undefined {
    return this.cluster.slots[slot]?.[0];
  }

  /** Waits (briefly) for the cluster's slot map: commands are not queued before it. */
  async ready(): Promise<void> {
    try {
      await whenReady(this.cluster, Math.min(READY_TIMEOUT_MS, this.timeoutMs));
    } catch (error) {
      throw this.unreachable(error);
    }
  }

  unreachable(cause: unknown): BackendError {
    return new BackendError('BACKEND_UNAVAILABLE', `Redis Cluster is unreachable at ${this.seeds}: ${(cause as Error).message}`, { cause });
  }

  private async send(commands: RedisCommand[]): Promise<(RedisReply | Error)[]> {
    await this.ready();
    return Promise.all(
      commands.map(([name, ...args]) =>
        (this.cluster.call(String(name), ...args) as Promise<RedisReply>).then(
          (reply) => reply,
          (error: Error) => this.toReply(error),
        ),
      ),
    );
  }

  /** Redis's own refusal is a reply; anything else (no connection, a slot nobody serves) fails the call. */
  private toReply(error: Error): Error {
    if (error.name === 'ReplyError' && !UNSERVED.test(error.message)) return error;
    throw this.unreachable(error);
  }

  /** How many masters the commands go to: one request each. */
  private nodesOf(commands: readonly RedisCommand[]): number {
    const nodes = new Set<string>();
    for (const command of commands) {
      const key = keyOf(command);
      const slot = key === undefined ? -1 : slotOfKey(key);
      nodes.add((slot >= 0 && this.masterOf(slot)) || `slot ${slot}`);
    }
    return nodes.size;
  }
}

/** The (first) key a command edge-sse sends names: where the cluster routes it. */
function keyOf([name, ...args]: RedisCommand): string | undefined {
  switch (String(name).toUpperCase()) {
    case 'XINFO':
      return args[1] === undefined ? undefined : String(args[1]);
    case 'XREAD': {
      const streams = args.findIndex((arg) => String(arg).toUpperCase() === 'STREAMS');
      return streams === -1 ? undefined : String(args[streams + 1]);
    }
    case 'EVAL':
    case 'EVALSHA':
      return Number(args[1]) > 0 ? String(args[2]) : undefined;
    default:
      return args[0] === undefined ? undefined : String(args[0]);
  }
}
