/**
 * A Backend over Redis Streams, shared by the Upstash and TCP backends: given a transport (one
 * round trip per pipeline of commands) and a way to follow channels live. The commands and how
 * their replies read are in commands/.
 */
import { AppId } from './app-id.js';
import { AppendQueue } from './append-queue.js';
import { newestFirst, headOf, rangeAfter } from './commands/range.js';
import { send, sendGroups } from './commands/pipeline.js';
import { prepareRun } from './commands/publish.js';
import { streamInfo } from './commands/stream-info.js';
import { gapAfter } from './gap.js';
import type { KeySpace } from './keys.js';
import type { RedisTransport } from './transport.js';
import type {
  AppendOptions,
  Backend,
  CallOptions,
  ChannelRead,
  ChannelTail,
  FeedListener,
  FeedOptions,
  LiveFeed,
  NewEvent,
  ReadRequest,
  Retention,
} from '../contract.js';

export interface StreamsBackendOptions {
  name: string;
  transport: RedisTransport;
  keys: KeySpace;
  shareable: boolean;
  /**
   * `appId` is the backend's one copy of the app id, for feeds that listen to signed wake-ups;
   * `tail` the backend's own, for feeds that read the head before following from it.
   */
  createFeed(listener: FeedListener, options: FeedOptions, appId: AppId, tail: Backend['tail']): LiveFeed;
  requests(): number;
  subscriptions(): number;
  close(): Promise<void>;
}

export function streamsBackend(options: StreamsBackendOptions): Backend {
  const { transport, keys } = options;
  const appId = new AppId(transport, keys, options.shareable);
  const appends = new AppendQueue(transport, appId);
  const backend: Backend = {
    name: options.name,
    shareable: options.shareable,
    append: (events: readonly NewEvent[], retention: Retention, call?: AppendOptions) =>
      appends.append(prepareRun(keys, appId, events, retention, call)),
    async read(requests: readonly ReadRequest[], limit: number, call?: CallOptions): Promise<ChannelRead[]> {
      // Per channel, its events after the cursor, then its stream's state: whether some were lost.
      const reads = requests.map(({ channel, after }) => [rangeAfter(keys, channel, after, limit), streamInfo(keys, channel)] as const);
      const replies = await sendGroups(transport, reads, call);
      return replies.map(([events, info], index) => {
        const gap = gapAfter(info, (requests[index] as ReadRequest).after);
        return gap ? { events, head: info.head, gap } : { events, head: info.head };
      });
    },
    async tail(channels: readonly string[], count: number, call?: CallOptions): Promise<ChannelTail[]> {
      const replies = await send(
        transport,
        channels.map((channel) => newestFirst(keys, channel, count)),
        call,
      );
      return replies.map((newest) => ({ head: headOf(newest), events: count > 0 ? newest.reverse() : [] }));
    },
    createFeed: (listener, call = {}) => options.createFeed(listener, call, appId, backend.tail),
    stats: () => ({ requests: options.requests(), subscriptions: options.subscriptions() }),
    close: () => options.close(),
  };
  return backend;
}
