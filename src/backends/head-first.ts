import { BackendError } from '../common/errors.js';
import type { Backend, FeedListener, FeedOptions } from './contract.js';

interface Start {
  /** Follows the channel from `position`, once it is known. */
  begin(position: string): void;
}

/**
 * Starts following for a feed that cannot find a channel's head once listening (memory, XREAD,
 * a cluster's reads): `'head'` is read first — the channels followed in one turn together, in
 * one request — and followed from there; an id is followed at once. Either way the start is
 * reported (`onFollowing`) before the feed follows it.
 */
export class HeadFirst {
  /** Channels whose head is being read, with what to do once it is known. */
  private pending = new Map<string, Start>();
  private batch: Set<string> | undefined;

  constructor(
    private tail: Backend['tail'],
    private listener: Pick<FeedListener, 'onFollowing' | 'onError'>,
    private options: FeedOptions,
  ) {}

  start(channel: string, from: string | 'head', begin: (position: string) => void): void {
    this.pending.delete(channel);
    if (from !== 'head') {
      this.listener.onFollowing(channel, from);
      return begin(from);
    }
    this.pending.set(channel, { begin });
    if (!this.batch) {
      this.batch = new Set();
      queueMicrotask(() => void this.readHeads());
    }
    this.batch.add(channel);
  }

  /** The channel is no longer followed: its head, if being read, is dropped. */
  cancel(channel: string): void {
    this.pending.delete(channel);
  }

  clear(): void {
    this.pending.clear();
  }

  private async readHeads(): Promise<void> {
    const channels = [...(this.batch as Set<string>)];
    this.batch = undefined;
    const starts = channels.map((channel) => this.pending.get(channel));
    try {
      const tails = await this.tail(channels, 0, this.options);
      channels.forEach((channel, index) => {
        if (!this.stillPending(channel, starts[index])) return;
        const head = (tails[index] as { head: string }).head;
        this.listener.onFollowing(channel, head);
        (starts[index] as Start).begin(head);
      });
    } catch (error) {
      const failure =
        error instanceof BackendError ? error : new BackendError('BACKEND_ERROR', 'Reading the head failed', { cause: error });
      channels.forEach((channel, index) => {
        if (this.stillPending(channel, starts[index])) this.listener.onError(channel, failure);
      });
    }
  }

  /** Whether `start` is still the channel's latest, and takes it off the list if so. */
  private stillPending(channel: string, start: Start | undefined): boolean {
    if (!start || this.pending.get(channel) !== start) return false;
    this.pending.delete(channel);
    return true;
  }
}
