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
import type { Redis } from 'ioredis';
import { BackendError } from '../errors.js';
import { compareIds } from '../ids.js';
import { runsInIdOrder } from './id-order.js';
import { slotOfChannel } from './redis-cluster-slots.js';
import type { ClusterTransport } from './redis-cluster-transport.js';
import { type KeySpace, type RedisReply, backendFailure, fromXread, xreadCommand } from './redis-streams.js';
import type { CallOptions, FeedListener, LiveFeed, StoredEvent } from './types.js';

const READ_BATCH = 100;
const ID = /^\d+-\d+$/;
const RECHECK_DELAY_MS = 50;

export interface ClusterFeedSettings {
  transport: ClusterTransport;
  keys: KeySpace;
  /** A new connection to one master (`host:port`), made lazily, that does not resubscribe by itself. */
  connectTo(node: string): Redis;
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
    private onClose: () => void,
    private call: CallOptions = {},
  ) {}

  /** Subscribed connections open now (one per master with followed channels). */
  get connections(): number {
    return this.subscriptionsByNode.size;
  }

  follow(channel: string, after: string): void {
    this.positions.set(channel, after);
    this.auditTimer ??= setInterval(() => void this.audit(), this.settings.auditMs);
    const subscription = this.placed.get(channel);
    if (subscription?.confirmed(channel)) this.markDirty(channel);
    else void this.place(channel);
  }

  unfollow(channel: string): void {
    this.positions.delete(channel);
    this.dirty.delete(channel);
    const subscription = this.placed.get(channel);
    this.placed.delete(channel);
    subscription?.remove(channel);
    if (this.positions.size === 0) this.stopAudit();
  }

  close(): void {
    this.closed = true;
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

  /** Subscribes on the master serving the channel's slot, then reads it. */
  private async place(channel: string, attempt = 1): Promise<void> {
    const { transport } = this.settings;
    try {
      await transport.ready();
      if (!this.positions.has(channel)) return;
      const node = transport.masterOf(slotOfChannel(channel));
      if (!node) throw transport.unreachable(new Error(`no master serves the slot of channel ${channel}`));
      const previous = this.placed.get(channel);
      if (previous && previous.node !== node) previous.remove(channel);
      const subscription = this.subscriptionOn(node);
      this.placed.set(channel, subscription);
      await subscription.add(channel);
      if (this.placed.get(channel) === subscription && this.positions.has(channel)) this.markDirty(channel);
    } catch (error) {
      if (this.closed || !this.positions.has(channel)) return;
      if (isMoved(error) && attempt < 3) {
        await this.remap(true);
        return this.place(channel, attempt + 1);
      }
      this.failChannels([channel], error);
    }
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
    await Promise.all([...this.subscriptionsByNode.values()].map((subscription) => subscription.resubscribe()));
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
        onMoved: () => void this.remap(true, subscription),
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
    const groups = bySlot(asked);
    let replies: (RedisReply | Error)[];
    try {
      replies = await this.settings.transport.pipeline(
        groups.map((group) => xreadCommand(this.settings.keys, group, READ_BATCH)),
        this.call,
      );
    } catch (error) {
      return this.failChannels([...asked.keys()], error);
    }
    const byChannel = new Map<string, StoredEvent[]>();
    replies.forEach((reply, index) => {
      const group = groups[index] as Map<string, string>;
      if (reply instanceof Error) return this.failChannels([...group.keys()], backendFailure(reply));
      for (const [channel, events] of fromXread(this.settings.keys, reply)) byChannel.set(channel, events);
    });
    this.deliver(byChannel, asked);
  }

  /** Delivers in id order across channels; a channel may have been unfollowed or moved on meanwhile. */
  private deliver(byChannel: Map<string, StoredEvent[]>, asked: Map<string, string>): void {
    const fresh = new Map<string, StoredEvent[]>();
    const fullUpTo: string[] = [];
    for (const [channel, events] of byChannel) {
      const position = this.positions.get(channel);
      if (position === undefined) continue;
      if (events.length >= READ_BATCH && asked.has(channel)) fullUpTo.push((events.at(-1) as StoredEvent).id);
      fresh.set(channel, events.filter((event) => compareIds(event.id, position) > 0));
    }
    for (const { channel, events } of runsInIdOrder(fresh, fullUpTo)) {
      if (!this.positions.has(channel)) continue;
      this.positions.set(channel, (events.at(-1) as StoredEvent).id);
      this.listener.onEvents(channel, events);
    }
    // A full read may have more, and events after the earliest full one's were held back for order.
    if (fullUpTo.length > 0) for (const channel of fresh.keys()) this.dirty.add(channel);
  }

  /**
   * Moves subscriptions to the masters serving their slots now (after asking the cluster, with
   * `refresh`); `suspect`'s channels are subscribed again where they are, in case they were dropped.
   */
  private remap(refresh: boolean, suspect?: NodeSubscription): Promise<void> {
    this.remapping ??= (async () => {
      try {
        if (refresh) await this.refreshSlots();
        for (const channel of this.positions.keys()) {
          const node = this.settings.transport.masterOf(slotOfChannel(channel));
          if (this.placed.get(channel)?.node !== node) void this.place(channel);
        }
        if (suspect && !this.closed) await suspect.resubscribe();
      } finally {
        this.remapping = undefined;
      }
    })();
    return this.remapping;
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

function isMoved(error: unknown): boolean {
  const message = String((error as Error)?.message ?? '');
  return /\bMOVED\b/.test(message);
}

interface SubscriptionEvents {
  /** Before each request (a round of SSUBSCRIBE commands); throwing refuses it. */
  onRequest(): void;
  onWakeUp(name: string, payload: string): void;
  /** The connection came back and subscribed again: these channels may have missed wake-ups. */
  onResubscribed(channels: string[]): void;
  /** Redis dropped subscriptions here (their slot moved) or said they belong elsewhere. */
  onMoved(): void;
  /** The last channel left; the connection is closed. */
  onEmpty(): void;
}

/** One master's connection in subscribed mode, for the channels whose slots it serves. */
class NodeSubscription {
  private connection: Redis;
  /** Channels asked for here, and whether Redis confirmed them. */
  private channels = new Map<string, boolean>();
  private pending: { channel: string; resolve: () => void; reject: (error: unknown) => void }[] = [];
  private flushing = false;
  private connectedBefore = false;

  constructor(
    readonly node: string,
    private settings: ClusterFeedSettings,
    private events: SubscriptionEvents,
  ) {
    const connection = (this.connection = settings.connectTo(node));
    connection.on('error', (error: Error) => {
      // Failures reach the commands that hit them. But ioredis 5 takes the `sunsubscribe` Redis
      // sends when a slot left the node for a reply nobody asked for, and reports it here.
      if (/sunsubscribe/i.test(error.message)) events.onMoved();
    });
    connection.on('smessage', (name: string, payload: string) => events.onWakeUp(name, payload));
    // ioredis 6: Redis dropped subscriptions here (their slot left), or an SSUBSCRIBE was MOVED.
    connection.on('moved', () => events.onMoved());
    connection.on('ready', () => {
      if (this.connectedBefore) void this.resubscribe().then(() => events.onResubscribed([...this.channels.keys()]));
      this.connectedBefore = true;
    });
  }

  confirmed(channel: string): boolean {
    return this.channels.get(channel) === true;
  }

  /** Subscribes; channels added in one tick go in one request (a command per slot). */
  add(channel: string): Promise<void> {
    if (!this.channels.has(channel)) this.channels.set(channel, false);
    return new Promise<void>((resolve, reject) => {
      this.pending.push({ channel, resolve, reject });
      if (!this.flushing) {
        this.flushing = true;
        queueMicrotask(() => void this.flush());
      }
    });
  }

  remove(channel: string): void {
    if (!this.channels.delete(channel)) return;
    if (this.channels.size === 0) return this.close();
    this.unsubscribe([channel]);
  }

  private unsubscribe(channels: readonly string[]): void {
    if (this.connection.status === 'end') return;
    const { transport, keys } = this.settings;
    // One command each: like SSUBSCRIBE, SUNSUBSCRIBE takes channels of one slot only.
    const sent = channels.map((channel) => this.connection.call('sunsubscribe', keys.wakeUpShard(channel)));
    void transport.bounded(Promise.all(sent), 'SUNSUBSCRIBE').catch(() => undefined);
  }

  /** Subscribes every channel here again (SSUBSCRIBE of a channel already subscribed changes nothing). */
  async resubscribe(): Promise<void> {
    const channels = [...this.channels.keys()];
    if (channels.length === 0) return;
    try {
      await this.subscribe(channels);
    } catch (error) {
      if (isMoved(error)) this.events.onMoved();
    }
  }

  close(): void {
    this.channels.clear();
    for (const { reject } of this.pending.splice(0)) reject(new BackendError('BACKEND_UNAVAILABLE', 'The subscription was closed'));
    this.connection.disconnect();
    this.events.onEmpty();
  }

  private async flush(): Promise<void> {
    const batch = this.pending.splice(0);
    this.flushing = false;
    const wanted = batch.filter(({ channel }) => this.channels.has(channel));
    try {
      if (wanted.length > 0) await this.subscribe(wanted.map(({ channel }) => channel));
      for (const { resolve } of batch) resolve();
    } catch (error) {
      for (const { reject } of batch) reject(error);
    }
  }

  /**
   * SSUBSCRIBE, one command per slot (Redis refuses several slots in one), bounded as one request.
   * (Lower-case names: ioredis files subscriptions under the command's name as given.)
   */
  private async subscribe(channels: readonly string[]): Promise<void> {
    const { transport, keys } = this.settings;
    const bySlotNames = new Map<number, string[]>();
    for (const channel of channels) {
      const slot = slotOfChannel(channel);
      bySlotNames.set(slot, [...(bySlotNames.get(slot) ?? []), keys.wakeUpShard(channel)]);
    }
    this.events.onRequest();
    const sent = [...bySlotNames.values()].map((names) => this.connection.call('ssubscribe', ...names));
    await transport.bounded(Promise.all(sent), 'SSUBSCRIBE');
    for (const channel of channels) if (this.channels.has(channel)) this.channels.set(channel, true);
    // Removed while the subscription was on its way: take it back.
    const left = channels.filter((channel) => !this.channels.has(channel));
    if (left.length > 0 && this.channels.size > 0) this.unsubscribe(left);
  }
}
