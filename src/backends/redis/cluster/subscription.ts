/**
 * One master's connection in subscribed mode (`SSUBSCRIBE`), for the followed channels whose
 * slots it serves: it hears their wake-ups, and tells when Redis dropped subscriptions or says a
 * channel's slot is served elsewhere.
 */
import type { Redis } from 'ioredis';
import { BackendError } from '../../../common/errors.js';
import { slotOfChannel } from './slots.js';
import type { ClusterTransport } from './transport.js';
import type { KeySpace } from '../../redis-streams/keys.js';

export interface SubscriptionSettings {
  transport: ClusterTransport;
  keys: KeySpace;
  /** A new connection to one master (`host:port`), made lazily, that does not resubscribe by itself. */
  connectTo(node: string): Redis;
}

export interface SubscriptionEvents {
  /** Before each request (a round of SSUBSCRIBE commands); throwing refuses it. */
  onRequest(): void;
  onWakeUp(name: string, payload: string): void;
  /** The connection came back and subscribed again: these channels may have missed wake-ups. */
  onResubscribed(channels: string[]): void;
  /** Redis dropped subscriptions here (their slot left the node), not saying which. */
  onDropped(): void;
  /** The last channel left; the connection is closed. */
  onEmpty(): void;
}

/** A channel whose slot a node said is served by `node` (a MOVED answer). */
export interface Moved {
  channel: string;
  node: string;
}

/** The node a MOVED error points to (`MOVED <slot> <host:port>`). */
export function movedTo(error: unknown): string | undefined {
  return /\bMOVED \d+ (\S+)/.exec(String((error as Error | undefined)?.message ?? ''))?.[1];
}

interface Waiting {
  channel: string;
  resolve: () => void;
  reject: (error: unknown) => void;
}

export class NodeSubscription {
  private connection: Redis;
  /** Channels asked for here, and whether Redis confirmed them. */
  private channels = new Map<string, boolean>();
  private pending: Waiting[] = [];
  private flushing = false;
  private connectedBefore = false;

  constructor(
    readonly node: string,
    private settings: SubscriptionSettings,
    private events: SubscriptionEvents,
  ) {
    const connection = (this.connection = settings.connectTo(node));
    connection.on('error', (error: Error) => {
      // Failures reach the commands that hit them. But ioredis 5 takes the `sunsubscribe` Redis
      // sends when a slot left the node for a reply nobody asked for, and reports it here.
      if (/sunsubscribe/i.test(error.message)) events.onDropped();
    });
    connection.on('smessage', (name: string, payload: string) => events.onWakeUp(name, payload));
    // ioredis: Redis dropped subscriptions here (6: the `sunsubscribe` of a slot that left), or an SSUBSCRIBE was MOVED.
    connection.on('moved', () => events.onDropped());
    connection.on('ready', () => {
      if (this.connectedBefore) void this.resubscribe().then(() => events.onResubscribed([...this.channels.keys()]));
      this.connectedBefore = true;
    });
  }

  confirmed(channel: string): boolean {
    return this.channels.get(channel) === true;
  }

  /**
   * Subscribes; channels added in one tick go in one request (a command per slot). Rejects with
   * the error of the channel's own command: a MOVED one names where its slot is (`movedTo`).
   */
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

  /**
   * Subscribes every channel here again (SSUBSCRIBE of a channel already subscribed changes
   * nothing): repairs subscriptions Redis dropped, and finds channels whose slot is elsewhere now.
   */
  async resubscribe(): Promise<Moved[]> {
    const channels = [...this.channels.keys()];
    if (channels.length === 0) return [];
    const failures = await this.subscribe(channels).catch(() => new Map<string, unknown>());
    const moved: Moved[] = [];
    for (const [channel, error] of failures) {
      const node = movedTo(error);
      if (node && this.channels.has(channel)) moved.push({ channel, node });
    }
    return moved;
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
    const wanted = [...new Set(batch.map(({ channel }) => channel))].filter((channel) => this.channels.has(channel));
    let failures: Map<string, unknown>;
    try {
      failures = wanted.length > 0 ? await this.subscribe(wanted) : new Map();
    } catch (error) {
      for (const { reject } of batch) reject(error);
      return;
    }
    for (const { channel, resolve, reject } of batch) {
      if (failures.has(channel)) reject(failures.get(channel));
      else resolve();
    }
  }

  /**
   * SSUBSCRIBE, one command per slot (Redis refuses several slots in one), bounded as one
   * request; resolves to the channels whose command failed, with its error. (Lower-case names:
   * ioredis files subscriptions under the command's name as given.)
   */
  private async subscribe(channels: readonly string[]): Promise<Map<string, unknown>> {
    const { transport, keys } = this.settings;
    const bySlot = new Map<number, string[]>();
    for (const channel of channels) bySlot.set(slotOfChannel(channel), [...(bySlot.get(slotOfChannel(channel)) ?? []), channel]);
    this.events.onRequest();
    const sent = [...bySlot.values()].map((group) =>
      this.connection.call('ssubscribe', ...group.map((channel) => keys.wakeUpShard(channel))).then(
        () => undefined,
        (error: unknown) => error,
      ),
    );
    const outcomes = await transport.bounded(Promise.all(sent), 'SSUBSCRIBE');
    const failures = new Map<string, unknown>();
    [...bySlot.values()].forEach((group, index) => {
      for (const channel of group) {
        if (outcomes[index] !== undefined) failures.set(channel, outcomes[index]);
        else if (this.channels.has(channel)) this.channels.set(channel, true);
      }
    });
    // Removed while the subscription was on its way: take it back.
    const left = channels.filter((channel) => !this.channels.has(channel) && !failures.has(channel));
    if (left.length > 0 && this.channels.size > 0) this.unsubscribe(left);
    return failures;
  }

  private unsubscribe(channels: readonly string[]): void {
    if (this.connection.status === 'end') return;
    const { transport, keys } = this.settings;
    // One command each: like SSUBSCRIBE, SUNSUBSCRIBE takes channels of one slot only.
    const sent = channels.map((channel) => this.connection.call('sunsubscribe', keys.wakeUpShard(channel)));
    void transport.bounded(Promise.all(sent), 'SUNSUBSCRIBE').catch(() => undefined);
  }
}
