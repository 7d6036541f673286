import { BackendError } from '../../common/errors.js';
import { deliverRead } from '../id-order.js';
import { type AppId, tagOf } from '../redis-streams/app-id.js';
import { headOf, newestFirst, rangeAfter } from '../redis-streams/commands/range.js';
import type { KeySpace } from '../redis-streams/keys.js';
import type { RedisCommand, RedisReply } from '../redis-streams/transport.js';
import { type WakeUp, openWakeUp } from '../redis-streams/wake-up.js';
import { type CallOptions, type FeedListener, type FeedOptions, type LiveFeed, READ_BATCH, type StoredEvent } from '../contract.js';
import type { UpstashRest } from './rest.js';

/**
 * Follows each channel with one long-lived pub/sub subscription (`POST /subscribe/…`, an SSE
 * stream) and reads the stream only when woken: an idle channel costs no request at all.
 *
 * Anyone who can PUBLISH on the Redis can send on that channel, so a message is trusted only when
 * it is signed with the app id (see app-id.ts and redis-streams/wake-up.ts): then, if it follows the
 * reader's position, its events are delivered as they are. Any other message is only a reason to
 * read the stream, so a forged one can neither inject an event nor move the position.
 */
export class SubscribeFeed implements LiveFeed {
  private watches = new Map<string, ChannelWatch>();
  /** The last id delivered of each channel; none while its head is being found. */
  private positions = new Map<string, string>();

  constructor(
    private rest: UpstashRest,
    private keys: KeySpace,
    private appId: AppId,
    private listener: FeedListener,
    private call: FeedOptions = {},
  ) {}

  /**
   * From `'head'`: subscribes, then reads the head once the subscription is confirmed — two
   * requests in all (and one before, the first time a backend follows a channel: the app id).
   */
  follow(channel: string, from: string | 'head'): void {
    this.watches.get(channel)?.stop();
    if (from === 'head') this.positions.delete(channel);
    else {
      this.positions.set(channel, from);
      this.listener.onFollowing(channel, from);
    }
    const watch = new ChannelWatch(channel, this.positions, this.rest, this.keys, this.appId, this.call, {
      onFollowing: (channel, head) => this.listener.onFollowing(channel, head),
      onEvents: (channel, events) => this.listener.onEvents(channel, events),
      onError: (channel, error) => {
        this.unfollow(channel);
        this.listener.onError(channel, error);
      },
    });
    this.watches.set(channel, watch);
    void watch.run();
  }

  unfollow(channel: string): void {
    this.watches.get(channel)?.stop();
    this.watches.delete(channel);
    this.positions.delete(channel);
  }

  close(): void {
    for (const watch of this.watches.values()) watch.stop();
    this.watches.clear();
    this.positions.clear();
  }
}

const QUICK_END_MS = 1000;
const QUICK_ENDS_ALLOWED = 3;

class ChannelWatch {
  private aborter = new AbortController();
  /** Ends the current subscription alone, to listen under a new app id. */
  private subscription: AbortController | undefined;
  /** The app id the current subscription listens for. */
  private listeningFor: string | undefined;
  /** Messages are handled in the order they came, though checking a signature takes a moment. */
  private handled: Promise<void> = Promise.resolve();
  private reading = false;
  private wokenWhileReading = false;
  /** The next read also makes sure of the app id (after each confirmed subscription). */
  private checkAppId = false;
  private quickEnds = 0;

  /** `positions` is the feed's: without one for this channel, the head is read once the first subscription is confirmed. */
  constructor(
    private channel: string,
    private positions: Map<string, string>,
    private rest: UpstashRest,
    private keys: KeySpace,
    private appId: AppId,
    private call: FeedOptions,
    private report: FeedListener,
  ) {}

  private get position(): string | undefined {
    return this.positions.get(this.channel);
  }

  stop(): void {
    this.aborter.abort();
  }

  /** Subscribes, catches up once confirmed, and resubscribes when the server ends the stream. */
  async run(): Promise<void> {
    while (!this.aborter.signal.aborted) {
      const started = Date.now();
      let moved: boolean;
      try {
        moved = await this.listen(await this.appId.get(this.options()));
      } catch (error) {
        return this.fail(error);
      }
      if (moved) continue;
      this.quickEnds = Date.now() - started < QUICK_END_MS ? this.quickEnds + 1 : 0;
      if (this.quickEnds > QUICK_ENDS_ALLOWED) {
        return this.fail(new BackendError('BACKEND_UNAVAILABLE', `The subscription to ${this.channel} keeps ending`));
      }
    }
  }

  /**
   * Listens on the channel's pub/sub name for app id `id`. Resolves false when the server ended
   * the stream, true when it was ended to listen under a new app id (Redis lost the old one).
   */
  private async listen(id: string): Promise<boolean> {
    const subscription = (this.subscription = new AbortController());
    const stop = () => subscription.abort();
    this.aborter.signal.addEventListener('abort', stop, { once: true });
    const unwatch = this.appId.onChange((next) => next !== id && subscription.abort());
    this.listeningFor = id;
    try {
      if (this.appId.current !== id) return true;
      const name = this.keys.notify(this.channel, await tagOf(id));
      await this.receive(await this.rest.subscribe(name, { signal: subscription.signal, onRequest: this.call.onRequest }), id);
      return false;
    } catch (error) {
      if (subscription.signal.aborted && !this.aborter.signal.aborted) return true;
      throw error;
    } finally {
      unwatch();
      this.aborter.signal.removeEventListener('abort', stop);
    }
  }

  private async receive(body: ReadableStream<Uint8Array>, id: string): Promise<void> {
    const decoder = new TextDecoder();
    const reader = body.getReader();
    let buffered = '';
    this.rest.openSubscriptions++;
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return;
        buffered += decoder.decode(value, { stream: true });
        const lines = buffered.split('\n');
        buffered = lines.pop() ?? '';
        for (const line of lines) this.onLine(line, id);
      }
    } finally {
      this.rest.openSubscriptions--;
      reader.cancel().catch(() => undefined);
    }
  }

  /**
   * The confirmation means "read now": the head, for a watch that starts there, or else anything
   * published before the subscription took hold — and check the app id. A message signed with
   * `id` that carries the events following this reader's position is delivered as is; any other
   * message reads the stream.
   */
  private onLine(line: string, id: string): void {
    if (line.startsWith('data: subscribe,')) {
      this.inOrder(async () => {
        this.checkAppId = true;
        void this.readNews();
      });
      return;
    }
    if (!line.startsWith('data: message,')) return;
    const payload = line.slice(line.indexOf(',', 'data: message,'.length) + 1);
    const opened = openWakeUp(payload, id).catch(() => undefined);
    this.inOrder(async () => this.onWakeUp(await opened));
  }

  private inOrder(step: () => Promise<void>): void {
    this.handled = this.handled.then(step).catch((error: unknown) => this.fail(error));
  }

  private onWakeUp(wakeUp: WakeUp | undefined): void {
    if (this.aborter.signal.aborted) return;
    const after = this.position;
    if (!this.reading && wakeUp?.events && after !== undefined && wakeUp.prev === after) {
      this.deliver(wakeUp.events, after);
    } else {
      void this.readNews();
    }
  }

  /** Reads after the position until nothing is left; wake-ups during a read cause one more read. */
  private async readNews(): Promise<void> {
    if (this.reading) {
      this.wokenWhileReading = true;
      return;
    }
    this.reading = true;
    try {
      let more = true;
      if (this.position === undefined) {
        this.wokenWhileReading = false;
        await this.readHead();
        more = this.wokenWhileReading || this.checkAppId;
      }
      while (more && this.position !== undefined && !this.aborter.signal.aborted) {
        this.wokenWhileReading = false;
        const after = this.position;
        const read = rangeAfter(this.keys, this.channel, after, READ_BATCH);
        const [reply] = await this.withAppIdCheck(read.args);
        if (this.aborter.signal.aborted) return;
        more = this.deliver(read.decode(reply as RedisReply | Error), after) || this.wokenWhileReading || this.checkAppId;
      }
    } catch (error) {
      this.fail(error);
    } finally {
      this.reading = false;
    }
  }

  private async readHead(): Promise<void> {
    const read = newestFirst(this.keys, this.channel, 1);
    const [reply] = await this.withAppIdCheck(read.args);
    if (this.aborter.signal.aborted) return;
    const head = headOf(read.decode(reply as RedisReply | Error));
    this.positions.set(this.channel, head);
    this.report.onFollowing(this.channel, head);
  }

  /** Delivers what follows `after`; true when the read was full (more may follow at once). */
  private deliver(events: StoredEvent[], after: string): boolean {
    return deliverRead(new Map([[this.channel, events]]), new Map([[this.channel, after]]), READ_BATCH, this.positions, this.report);
  }

  /**
   * Sends `command`, in the same request as `SET NX` + `GET` of the app id when a check is due.
   * If Redis holds another id than the one listened for (it lost the old one), the subscription
   * ends and starts again under the new one, and its confirmation reads what came meanwhile.
   */
  private async withAppIdCheck(command: RedisCommand): Promise<(RedisReply | Error)[]> {
    if (!this.checkAppId) return this.rest.pipeline([command], this.options());
    this.checkAppId = false;
    const [set, get, reply] = await this.rest.pipeline([...this.appId.commands(), command], this.options());
    if (this.aborter.signal.aborted) return [reply as RedisReply | Error];
    if (this.appId.learnFrom(set, get) !== this.listeningFor) this.subscription?.abort();
    return [reply as RedisReply | Error];
  }

  private options(): CallOptions {
    return { signal: this.aborter.signal, onRequest: this.call.onRequest };
  }

  private fail(error: unknown): void {
    if (this.aborter.signal.aborted) return;
    this.aborter.abort();
    this.report.onError(
      this.channel,
      error instanceof BackendError ? error : new BackendError('BACKEND_ERROR', `Following ${this.channel} failed`, { cause: error }),
    );
  }
}
