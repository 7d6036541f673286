import type { Redis } from 'ioredis';
import { BackendError } from '../../common/errors.js';
import { backendFailure } from '../redis-streams/commands/command.js';
import { xread } from '../redis-streams/commands/xread.js';
import type { KeySpace } from '../redis-streams/keys.js';
import type { RedisReply } from '../redis-streams/transport.js';
import { quiet } from './connect.js';
import type { XreadRound, XreadWait } from '../redis-streams/xread-feed.js';
import { type FeedOptions, READ_BATCH } from '../contract.js';

/** What the wait needs of the backend's command transport: its request count and its deadlines. */
export interface BlockingTransport {
  requests: number;
  /** `work`, failing with BACKEND_TIMEOUT after `ms`. */
  bounded<T>(work: Promise<T>, what: string, publishes?: boolean, ms?: number): Promise<T>;
}

export interface BlockingTiming {
  blockMs: number;
  timeoutMs: number;
}

interface BlockedRead {
  asked: ReadonlyMap<string, string>;
  /** Settles when its reply (or failure) is in. */
  ended: Promise<void>;
}

/**
 * Waits in Redis: one `XREAD BLOCK` over every followed channel on a connection of its own.
 * Following a new channel interrupts the read with `CLIENT UNBLOCK` (on the command connection)
 * so that it is made again with the new set.
 */
export class BlockingWait implements XreadWait {
  private connection: Redis | undefined;
  private connectionId: number | undefined;
  /** The read waiting on Redis now. */
  private reading: BlockedRead | undefined;
  private interrupting = false;
  private closed = false;

  constructor(
    private commands: Redis,
    private transport: BlockingTransport,
    private keys: KeySpace,
    private timing: BlockingTiming,
    private call: FeedOptions,
    private onClose: () => void,
  ) {}

  /** Whether a blocking read is waiting on Redis now. */
  get isReading(): boolean {
    return this.reading !== undefined;
  }

  async read(followed: ReadonlyMap<string, string>): Promise<XreadRound | undefined> {
    const connection = await this.blockingConnection();
    if (this.closed || followed.size === 0) return undefined;
    // Taken once connected: a channel followed while connecting is in this read, not the next.
    const asked = new Map(followed);
    let ended!: () => void;
    this.reading = { asked, ended: new Promise((resolve) => (ended = resolve)) };
    let reply: RedisReply;
    try {
      reply = await this.blockingRead(connection, asked);
    } finally {
      this.reading = undefined;
      ended();
    }
    this.transport.requests++;
    return { asked, reply };
  }

  following(followed: ReadonlyMap<string, string>): void {
    void this.interrupt(followed);
  }

  idle(followed: ReadonlyMap<string, string>): void {
    void this.interrupt(followed);
  }

  delivered(): void {
    // The next XREAD BLOCK answers at once if more is there.
  }

  failure(error: unknown): BackendError {
    const failure = error instanceof BackendError ? error : backendFailure(error as Error);
    this.connection?.disconnect();
    this.connection = undefined;
    return failure.code === 'BACKEND_ERROR' && /closed|ECONNREFUSED|ECONNRESET/i.test(failure.message)
      ? new BackendError('BACKEND_UNAVAILABLE', `Redis went away: ${failure.message}`, { cause: error })
      : failure;
  }

  close(): void {
    this.closed = true;
    this.connection?.disconnect();
    this.connection = undefined;
    this.onClose();
  }

  /** Bounded by the block itself plus `timeoutMs`; past that the connection is dropped. */
  private async blockingRead(connection: Redis, asked: ReadonlyMap<string, string>): Promise<RedisReply> {
    const { blockMs, timeoutMs } = this.timing;
    const [name, ...args] = xread(this.keys, asked, READ_BATCH, blockMs).args;
    this.call.onRequest?.();
    try {
      return (await this.transport.bounded(
        connection.call(String(name), ...args),
        `XREAD BLOCK ${blockMs}`,
        false,
        blockMs + timeoutMs,
      )) as RedisReply;
    } catch (error) {
      if (error instanceof BackendError && error.code === 'BACKEND_TIMEOUT') this.dropConnection(connection);
      throw error;
    }
  }

  private async blockingConnection(): Promise<Redis> {
    if (this.connection && this.connection.status === 'ready' && this.connectionId !== undefined) return this.connection;
    this.connection?.disconnect();
    this.connectionId = undefined;
    const connection = (this.connection = quiet(this.commands.duplicate({ lazyConnect: true, retryStrategy: () => null })));
    const connecting = (async () => {
      await connection.connect();
      return Number(await connection.call('CLIENT', 'ID'));
    })();
    try {
      this.connectionId = await this.transport.bounded(connecting, 'connecting for XREAD BLOCK');
    } catch (error) {
      this.dropConnection(connection);
      throw error;
    }
    return connection;
  }

  private dropConnection(connection: Redis): void {
    connection.disconnect();
    if (this.connection !== connection) return;
    this.connection = undefined;
    this.connectionId = undefined;
  }

  /**
   * Wakes the blocked read so it restarts with the current channels. The UNBLOCK may overtake the
   * XREAD on its way to Redis; then it finds nothing to unblock and is sent again, until that
   * read has ended (it is bounded, so this is too). Then the next read is checked the same way.
   */
  private async interrupt(followed: ReadonlyMap<string, string>): Promise<void> {
    if (this.interrupting) return; // the loop running now looks at the current channels each time
    this.interrupting = true;
    try {
      for (let attempt = 1; this.reading && isStale(this.reading.asked, followed); attempt++) {
        const read = this.reading;
        const id = this.connectionId;
        const unblock = id === undefined ? Promise.resolve(0) : this.commands.call('CLIENT', 'UNBLOCK', id);
        const unblocked = await this.transport.bounded(unblock, 'CLIENT UNBLOCK').catch(() => 0);
        this.transport.requests++;
        if (Number(unblocked) === 1) {
          await read.ended;
          attempt = 0;
        } else {
          await Promise.race([read.ended, new Promise((resolve) => setTimeout(resolve, Math.min(2 * attempt, 50)))]);
        }
      }
    } finally {
      this.interrupting = false;
    }
  }
}

/** Whether the read in flight misses a followed channel or position, or has nobody left to read for. */
function isStale(reading: ReadonlyMap<string, string>, followed: ReadonlyMap<string, string>): boolean {
  if (followed.size === 0) return true;
  for (const [channel, position] of followed) if (reading.get(channel) !== position) return true;
  return false;
}
