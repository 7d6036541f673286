import type { Redis } from 'ioredis';
import { BridgeError, isRedisReplyError } from './errors.js';
import { connectDedicated, transportError, whenReady, type RedisTarget } from './redis.js';

/**
 * Every `/subscribe` and `/psubscribe` stream shares one subscriber connection: one Redis
 * subscription per channel or pattern however many HTTP listeners follow it, added with the first
 * listener and removed with the last. If the connection breaks, every stream ends (so clients
 * resubscribe) and the next listener opens a new one.
 */

export type SubscriptionKind = 'subscribe' | 'psubscribe';

export interface Message {
  channel: string;
  payload: string;
  /** The pattern that matched, for `psubscribe`. */
  pattern?: string;
}

export interface Listener {
  deliver(message: Message): void;
  /** The subscription is over (Redis went away, or the bridge closes). */
  end(): void;
}

export interface Membership {
  /** Starts delivery; messages that arrived since Redis confirmed are delivered first. */
  start(): void;
  leave(): void;
}

/** Messages a listener may hold between Redis' confirmation and `start()` (a few at most in practice). */
const MAX_EARLY_MESSAGES = 1000;

interface Topic {
  kind: SubscriptionKind;
  name: string;
  confirmed: Promise<unknown>;
  members: Set<Member>;
}

class Member {
  private early: Message[] | undefined = [];
  private ended = false;

  constructor(private readonly listener: Listener) {}

  deliver(message: Message): void {
    if (this.ended) return;
    if (!this.early) return this.listener.deliver(message);
    this.early.push(message);
    if (this.early.length > MAX_EARLY_MESSAGES) this.end();
  }

  start(): void {
    const early = this.early ?? [];
    this.early = undefined;
    for (const message of early) this.deliver(message);
  }

  end(): void {
    if (this.ended) return;
    this.ended = true;
    this.listener.end();
  }
}

export class SharedSubscriber {
  private connection: Redis | undefined;
  private readonly topics = new Map<string, Topic>();
  /** Listeners joined or joining: what the cap counts. */
  private listeners = 0;
  private closed = false;

  constructor(
    private readonly target: RedisTarget,
    private readonly maxListeners: number,
  ) {}

  /** Resolves once Redis confirmed the subscription; throws 503 beyond the cap, 502/504 without Redis. */
  async join(kind: SubscriptionKind, name: string, listener: Listener): Promise<Membership> {
    if (this.closed) throw new BridgeError(503, 'The bridge is closing');
    if (this.listeners >= this.maxListeners) {
      throw new BridgeError(
        503,
        `${this.listeners} subscriptions are open, the most this bridge serves (maxSubscriptions, --max-subscriptions); retry later`,
      );
    }
    this.listeners += 1;
    let left = false;
    const leaveOnce = (topic?: Topic, member?: Member) => {
      if (left) return;
      left = true;
      this.listeners -= 1;
      if (topic && member) this.remove(topic, member);
    };
    try {
      const connection = this.connect();
      await whenReady(connection, this.target);
      const topic = this.topic(connection, kind, name);
      const member = new Member(listener);
      topic.members.add(member);
      try {
        await topic.confirmed;
      } catch (error) {
        leaveOnce(topic, member);
        throw isRedisReplyError(error) ? new BridgeError(400, error.message) : transportError(error, this.target);
      }
      return { start: () => member.start(), leave: () => leaveOnce(topic, member) };
    } catch (error) {
      leaveOnce();
      throw error;
    }
  }

  close(): void {
    this.closed = true;
    this.connection?.disconnect();
    this.endAll();
  }

  private connect(): Redis {
    if (this.connection) return this.connection;
    const connection = connectDedicated(this.target);
    connection.on('message', (channel: string, payload: string) => this.dispatch(`subscribe:${channel}`, { channel, payload }));
    connection.on('pmessage', (pattern: string, channel: string, payload: string) =>
      this.dispatch(`psubscribe:${pattern}`, { channel, payload, pattern }),
    );
    connection.once('end', () => {
      if (this.connection === connection) this.connection = undefined;
      this.endAll();
    });
    this.connection = connection;
    return connection;
  }

  private topic(connection: Redis, kind: SubscriptionKind, name: string): Topic {
    const key = `${kind}:${name}`;
    let topic = this.topics.get(key);
    if (!topic) {
      const confirmed = kind === 'subscribe' ? connection.subscribe(name) : connection.psubscribe(name);
      topic = { kind, name, confirmed, members: new Set() };
      this.topics.set(key, topic);
      const created = topic;
      confirmed.catch(() => {
        if (this.topics.get(key) === created) this.topics.delete(key);
      });
    }
    return topic;
  }

  private remove(topic: Topic, member: Member): void {
    topic.members.delete(member);
    const key = `${topic.kind}:${topic.name}`;
    if (topic.members.size > 0 || this.topics.get(key) !== topic) return;
    this.topics.delete(key);
    // Sent at once, even while the SUBSCRIBE is pending: Redis applies them in order, so a
    // listener who joins next (and subscribes again) ends up subscribed.
    const unsubscribe = topic.kind === 'subscribe' ? this.connection?.unsubscribe(topic.name) : this.connection?.punsubscribe(topic.name);
    unsubscribe?.catch(() => undefined);
  }

  private dispatch(key: string, message: Message): void {
    const topic = this.topics.get(key);
    if (!topic) return;
    for (const member of [...topic.members]) member.deliver(message);
  }

  private endAll(): void {
    const topics = [...this.topics.values()];
    this.topics.clear();
    for (const topic of topics) for (const member of [...topic.members]) member.end();
  }
}
