/**
 * Follows channels on a Redis Cluster. Redis refuses one XREAD over keys of several slots
 * (CROSSSLOT), even on one node, so one blocking read per node cannot be; one per slot would
 * cost a connection per channel. Instead, per master serving followed channels, one connection
 * subscribes (`SSUBSCRIBE`) to their wake-up shard channels, and a wake-up makes the feed read:
 * one non-blocking XREAD per slot, all of a master's in one request, each master at once.
 *
 * Nothing published is missed: a channel is read from its position once its subscription is
 * confirmed (what came before), and again on each wake-up (what came after). A subscription lost
 * to a slot moving or a failover is made again on the slot's new master, then read. As a net for
 * any loss not seen, every `auditMs` each connection subscribes again and every channel is read.
 */
import { BackendError } from '../../../common/errors.js';
import { compareIds } from '../../../wire/ids.js';
import { deliverRead } from '../../id-order.js';
import { slotOfChannel } from './slots.js';
import { type Moved, NodeSubscription, type SubscriptionSettings, movedTo } from './subscription.js';
import { backendFailure } from '../../redis-streams/commands/command.js';
import { xread } from '../../redis-streams/commands/xread.js';
import type { RedisReply } from '../../redis-streams/transport.js';
import { type FeedListener, type FeedOptions, type LiveFeed, READ_BATCH, type StoredEvent } from '../../contract.js';
import type { HeadFirst } from '../../head-first.js';

const ID = /^\d+-\d+$/;
const RECHECK_DELAY_MS = 50;
/** Subscribing where a MOVED answer points, at most this often in a row. */
const PLACE_ATTEMPTS = 3;

export interface ClusterFeedSettings extends SubscriptionSettings {
  /** How often subscriptions are made again and every channel read, in case a wake-up was lost. */
  auditMs: number;
}

export class ClusterFeed implements LiveFeed {
  private positions = new Map<string, string>();
  /** The subscription of each followed channel: on the master serving its slot, when last looked. */
  private placed = new Map<string, NodeSubscription>();
  private subscriptionsByNode = new Map<string, NodeSubscription>();
  private dirty = new Set<string>();
  private reading = false;
  private remapping: Promise<void> | undefined;
  private auditTimer: ReturnType<typeof setInterval> | undefined;
  private recheckTimer: ReturnType<typeof setTimeout> | undefined;
  private closed = false;

  constructor(
    private settings: ClusterFeedSettings,
    private listener: FeedListener,
    private starts: HeadFirst,
    private onClose: () => void,
    private call: FeedOptions = {},
  ) {}

  /** Subscribed connections open now (one per master with followed channels). */
  get connections(): number {
    return this.subscriptionsByNode.size;
  }

  follow(channel: string, from: string | 'head'): void {
    this.starts.start(channel, from, (position) => {
      this.positions.set(channel, position);
      this.auditTimer ??= setInterval(() => void this.audit(), this.settings.auditMs);
      const subscription = this.placed.get(channel);
      if (subscription?.confirmed(channel)) this.markDirty(channel);
      else void this.place(channel);
    });
  }

  unfollow(channel: string): void {
    this.starts.cancel(channel);
    this.positions.delete(channel);
    this.dirty.delete(channel);
    const subscription = this.placed.get(channel);
    this.placed.delete(channel);
    subscription?.remove(channel);
    if (this.positions.size === 0) this.stopAudit();
  }

  close(): void {
    this.closed = true;
    this.starts.clear();
    this.positions.clear();
    this.placed.clear();
    this.stopAudit();
    for (const subscription of this.subscriptionsByNode.values()) subscription.close();
    this.subscriptionsByNode.clear();
    this.onClose();
  }

  private stopAudit(): void {
    clearInterval(this.auditTimer);
    clearTimeout(this.recheckTimer);
    this.auditTimer = undefined;
    this.recheckTimer = undefined;
  }

  /**
   * Subscribes on the master serving the channel's slot (by the cluster's slot map, or `node`, where
   * a MOVED answer pointed), then reads the channel.
   */
  private async place(channel: string, attempt = 1, node?: string): Promise<void> {
    const { transport } = this.settings;
    let subscription: NodeSubscription | undefined;
    try {
      await transport.ready();
      if (!this.positions.has(channel)) return;
      const target = node ?? transport.masterOf(slotOfChannel(channel));
      if (!target) throw transport.unreachable(new Error(`no master serves the slot of channel ${channel}`));
      const previous = this.placed.get(channel);
      if (previous && previous.node !== target) previous.remove(channel);
      subscription = this.subscriptionOn(target);
      this.placed.set(channel, subscription);
      await subscription.add(channel);
      if (this.placed.get(channel) === subscription && this.positions.has(channel)) this.markDirty(channel);
    } catch (error) {
      if (this.closed || !this.positions.has(channel)) return;
      if (subscription && this.placed.get(channel) !== subscription) return; // placed anew meanwhile
      const elsewhere = movedTo(error);
      if (elsewhere && attempt < PLACE_ATTEMPTS) {
        transport.cluster.refreshSlotsCache(); // for ioredis's map too
        return this.place(channel, attempt + 1, elsewhere);
      }
      this.failChannels([channel], error);
    }
  }

  private moveAll(moved: readonly Moved[]): void {
    for (const { channel, node } of moved) void this.place(channel, 1, node);
  }

  /**
   * The cluster's slot map was refreshed (after a MOVED, say). The map ioredis got may be older
   * than what a node knows, so besides following it, every connection subscribes again: a node
   * that no longer serves a channel's slot answers MOVED, and the channel moves on. Refreshes come
   * in bursts while a slot moves: one check for each burst.
   */
  slotsChanged(): void {
    if (this.closed || this.positions.size === 0 || this.recheckTimer) return;
    this.recheckTimer = setTimeout(() => {
      this.recheckTimer = undefined;
      void this.recheck();
    }, RECHECK_DELAY_MS);
  }

  private async recheck(): Promise<void> {
    if (this.closed || this.positions.size === 0) return;
    await this.remap(false);
    const moved = await Promise.all([...this.subscriptionsByNode.values()].map((subscription) => subscription.resubscribe()));
    this.moveAll(moved.flat());
  }

  private subscriptionOn(node: string): NodeSubscription {
    let subscription = this.subscriptionsByNode.get(node);
    if (!subscription) {
      subscription = new NodeSubscription(node, this.settings, {
        onRequest: () => {
          this.settings.transport.requests++;
          this.call.onRequest?.();
        },
        onWakeUp: (name, payload) => this.onWakeUp(name, payload),
        onResubscribed: (channels) => channels.forEach((channel) => this.markDirty(channel)),
        onDropped: () => void this.remap(true, subscription),
        onEmpty: () => {
          if (this.subscriptionsByNode.get(node) === subscription) this.subscriptionsByNode.delete(node);
        },
      });
      this.subscriptionsByNode.set(node, subscription);
    }
    return subscription;
  }

  /** A hint: the channel has news up to `payload`. Any message only makes the feed read. */
  private onWakeUp(name: string, payload: string): void {
    const channel = this.settings.keys.channelOf(name);
    const position = this.positions.get(channel);
    if (position === undefined) return;
    if (ID.test(payload) && compareIds(payload, position) <= 0) return; // read already
    this.markDirty(channel);
  }

  private markDirty(channel: string): void {
    if (this.closed || !this.positions.has(channel)) return;
    this.dirty.add(channel);
    void this.read();
  }

  /** Reads the channels marked, one XREAD per slot, until none is left marked. */
  private async read(): Promise<void> {
    if (this.reading) return;
    this.reading = true;
    try {
      while (!this.closed && this.dirty.size > 0) {
        const asked = new Map<string, string>();
        for (const channel of this.dirty) {
          const position = this.positions.get(channel);
          if (position !== undefined) asked.set(channel, position);
        }
        this.dirty.clear();
        if (asked.size > 0) await this.readOnce(asked);
      }
    } finally {
      this.reading = false;
    }
  }

  private async readOnce(asked: Map<string, string>): Promise<void> {
    const reads = bySlot(asked).map((group) => ({ channels: [...group.keys()], xread: xread(this.settings.keys, group, READ_BATCH) }));
    let replies: (RedisReply | Error)[];
    try {
      replies = await this.settings.transport.pipeline(
        reads.map((read) => read.xread.args),
        this.call,
      );
    } catch (error) {
      return this.failChannels([...asked.keys()], error);
    }
    const byChannel = new Map<string, StoredEvent[]>();
    reads.forEach((read, index) => {
      try {
        for (const [channel, events] of read.xread.decode(replies[index] as RedisReply | Error)) byChannel.set(channel, events);
      } catch (error) {
        this.failChannels(read.channels, error);
      }
    });
    this.deliver(byChannel, asked);
  }

  private deliver(byChannel: Map<string, StoredEvent[]>, asked: Map<string, string>): void {
    // A full read may have more, and events after the earliest full one's were held back for order.
    if (!deliverRead(byChannel, asked, READ_BATCH, this.positions, this.listener)) return;
    for (const channel of byChannel.keys()) if (this.positions.has(channel)) this.dirty.add(channel);
  }

  /**
   * Moves subscriptions to the masters serving their slots now (after asking the cluster, with
   * `refresh`); `suspect`'s channels are subscribed again where they are, in case they were dropped.
   */
  private async remap(refresh: boolean, suspect?: NodeSubscription): Promise<void> {
    this.remapping ??= (async () => {
      try {
        if (refresh) await this.refreshSlots();
        for (const channel of this.positions.keys()) {
          const node = this.settings.transport.masterOf(slotOfChannel(channel));
          if (this.placed.get(channel)?.node !== node) void this.place(channel);
        }
      } finally {
        this.remapping = undefined;
      }
    })();
    await this.remapping;
    if (suspect && !this.closed) this.moveAll(await suspect.resubscribe());
  }

  private refreshSlots(): Promise<void> {
    const { transport } = this.settings;
    const refreshed = new Promise<void>((resolve) => transport.cluster.refreshSlotsCache(() => resolve()));
    return transport.bounded(refreshed, 'CLUSTER SLOTS').catch(() => undefined);
  }

  /** The safety net: subscribe everything again where it should be, and read every channel. */
  private async audit(): Promise<void> {
    await this.recheck();
    for (const channel of this.positions.keys()) this.markDirty(channel);
  }

  private failChannels(channels: readonly string[], error: unknown): void {
    const failure = error instanceof BackendError ? error : backendFailure(error as Error);
    for (const channel of channels) {
      if (!this.positions.has(channel)) continue;
      this.unfollow(channel);
      this.listener.onError(channel, failure);
    }
  }
}

function bySlot(positions: ReadonlyMap<string, string>): Map<string, string>[] {
  const groups = new Map<number, Map<string, string>>();
  for (const [channel, position] of positions) {
    const slot = slotOfChannel(channel);
    let group = groups.get(slot);
    if (!group) groups.set(slot, (group = new Map()));
    group.set(channel, position);
  }
  return [...groups.values()];
}
