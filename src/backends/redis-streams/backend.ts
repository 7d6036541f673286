/**
 * What the Upstash and TCP backends share: the Redis commands edge-sse sends and how their replies
 * read. No I/O here; a transport sends a pipeline of commands in one round trip.
 */
import { BackendError, invalidOption } from '../../common/errors.js';
import { AppId } from './app-id.js';
import { AppendQueue } from './append-queue.js';
import { prepareRun } from './publish-script.js';
import { ZERO_ID, compareIds } from '../../wire/ids.js';
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
  StoredEvent,
} from '../contract.js';

export type RedisCommand = (string | number)[];
export type RedisReply = string | number | null | RedisReply[];

/** Sends commands in one round trip; each reply is a value or the error Redis gave for it. */
export interface RedisTransport {
  pipeline(commands: RedisCommand[], options?: CallOptions): Promise<(RedisReply | Error)[]>;
}

export const DEFAULT_PREFIX = 'sse:';

/**
 * Maps channels to Redis keys: a channel's stream is `<prefix>{<channel>}`, edge-sse's own keys
 * are `<prefix>#…`. Prefixes hold no `{`, `}` or `#` and channel names no `{`, `}` or `#`, so a key
 * reads back one way only — the prefix ends at its first `{` or `#` — and no prefix and channel
 * make another's key (with `<prefix><channel>`, prefix `a:` with channel `b:c` was prefix `a:b:`
 * with channel `c`). The braces are a Redis Cluster hash tag: every key of a channel hashes to
 * the slot of its name.
 */
export class KeySpace {
  constructor(readonly prefix: string) {
    // No comma or space either: the prefix is part of pub/sub channel names, which wake-up lines split on.
    if (typeof prefix !== 'string' || !/^[^\s,{}#]{1,64}$/.test(prefix)) {
      throw invalidOption(
        `Option prefix must be 1–64 characters without spaces, commas, "{", "}" or "#" (they delimit the ` +
          `channel and edge-sse's own keys), got ${JSON.stringify(prefix)}`,
      );
    }
  }

  stream(channel: string): string {
    return `${this.prefix}{${channel}}`;
  }

  /**
   * The pub/sub channel that wakes a channel's readers: `<prefix>!<tag>:<channel>`, `tag` naming
   * the app id (app-id.ts). Pub/sub names are one space for every database of a Redis, so the tag
   * keeps apart apps that share the prefix; and as no channel name holds `!`, the last `!` ends
   * the prefix: two prefixes never make the same name. (`!` rather than `#`: the name goes into
   * a `/subscribe/<name>` URL path unescaped.)
   */
  notify(channel: string, tag: string): string {
    return `${this.prefix}!${tag}:${channel}`;
  }

  /**
   * On a Redis Cluster, the shard channel (`SSUBSCRIBE`/`SPUBLISH`) that wakes a channel's readers:
   * named like its stream, so in its slot. Shard channels and keys are separate name spaces.
   */
  wakeUpShard(channel: string): string {
    return this.stream(channel);
  }

  /** Keys of edge-sse's own, outside every channel's: `#` is in no prefix and no channel name. */
  appId(): string {
    return `${this.prefix}#id`;
  }

  idempotency(key: string): string {
    return `${this.prefix}#idem:${key}`;
  }

  /**
   * An idempotency key kept in `channel`'s slot, for a Redis Cluster, where a script may only
   * touch keys of one slot: `<prefix>{<channel>}#idem:<key>`.
   */
  idempotencyBeside(channel: string, key: string): string {
    return `${this.stream(channel)}#idem:${key}`;
  }

  /** The channel of a stream key or wake-up shard channel (`<prefix>{<channel>}`). */
  channelOf(key: string): string {
    return key.slice(this.prefix.length + 1, -1);
  }
}

export function readAfterCommand(keys: KeySpace, channel: string, after: string, limit: number): RedisCommand {
  return ['XRANGE', keys.stream(channel), `(${after}`, '+', 'COUNT', limit];
}

/** The newest `count` events (at least one, for the head), newest first. */
export function newestCommand(keys: KeySpace, channel: string, count: number): RedisCommand {
  return ['XREVRANGE', keys.stream(channel), '+', '-', 'COUNT', Math.max(count, 1)];
}

/** The id of the newest event in an XREVRANGE reply, or 0-0 for an empty or missing stream. */
export function headOf(newestFirst: StoredEvent[]): string {
  return newestFirst[0]?.id ?? ZERO_ID;
}

/** XREAD over several channels: one request however many channels; blocking only over TCP. */
export function xreadCommand(
  keys: KeySpace,
  positions: ReadonlyMap<string, string>,
  limit: number,
  blockMs?: number,
): RedisCommand {
  const channels = [...positions.keys()];
  const block = blockMs === undefined ? [] : ['BLOCK', blockMs];
  return [
    'XREAD',
    'COUNT',
    limit,
    ...block,
    'STREAMS',
    ...channels.map((channel) => keys.stream(channel)),
    ...channels.map((channel) => positions.get(channel) as string),
  ];
}

export function toStoredEvents(reply: RedisReply): StoredEvent[] {
  if (!Array.isArray(reply)) return [];
  return reply.map((entry) => toStoredEvent(entry as RedisReply[]));
}

function toStoredEvent([id, fields]: RedisReply[]): StoredEvent {
  const values = new Map<string, string>();
  const list = Array.isArray(fields) ? fields : [];
  for (let index = 0; index + 1 < list.length; index += 2) values.set(String(list[index]), String(list[index + 1]));
  return {
    id: String(id),
    type: values.get('type') ?? 'message',
    data: values.get('data') ?? '',
    json: values.get('json') === '1',
  };
}

/** XREAD's reply, `[[key, entries], …]` or null, as events per channel. */
export function fromXread(keys: KeySpace, reply: RedisReply): Map<string, StoredEvent[]> {
  const byChannel = new Map<string, StoredEvent[]>();
  if (!Array.isArray(reply)) return byChannel;
  for (const stream of reply) {
    const [key, entries] = stream as [string, RedisReply];
    byChannel.set(keys.channelOf(String(key)), toStoredEvents(entries));
  }
  return byChannel;
}

interface StreamInfo {
  head: string;
  firstId: string | null;
  /** Entries were removed from the start (trimmed by MAXLEN) — Redis 7 counts entries ever added. */
  trimmed: boolean;
  /** The newest id removed by XDEL (trimming does not move it). */
  maxDeletedId: string;
}

/** XINFO STREAM as the fields edge-sse needs; a missing stream reads as empty. */
function toStreamInfo(reply: RedisReply | Error): StreamInfo {
  if (reply instanceof Error) {
    if (/no such key/i.test(reply.message)) return { head: ZERO_ID, firstId: null, trimmed: false, maxDeletedId: ZERO_ID };
    throw backendFailure(reply);
  }
  const fields = new Map<string, RedisReply>();
  const list = Array.isArray(reply) ? reply : [];
  for (let index = 0; index + 1 < list.length; index += 2) fields.set(String(list[index]), list[index + 1] as RedisReply);
  const firstEntry = fields.get('first-entry');
  // Redis < 7.0 reports neither entries-added nor max-deleted-entry-id: trimming is then seen only
  // for cursors other than 0-0 (through first-entry, see gapAfter).
  const added = Number(fields.get('entries-added') ?? 0);
  return {
    head: String(fields.get('last-generated-id') ?? ZERO_ID),
    firstId: Array.isArray(firstEntry) ? String(firstEntry[0]) : null,
    trimmed: added > Number(fields.get('length') ?? 0),
    maxDeletedId: String(fields.get('max-deleted-entry-id') ?? ZERO_ID),
  };
}

/**
 * Events after `after` are gone when:
 * - `after` is past the head: the stream that issued it was deleted since (it expired, or Redis
 *   restarted empty), and this one never got that far;
 * - XDEL removed a later id;
 * - `after` is older than the first entry kept, and entries were trimmed, or `after` is not 0-0:
 *   a stream never trimmed still holds the first entry it ever had, so a position before that came
 *   from an earlier stream of the same name (expired, then recreated), whose later events are gone.
 * (False alarms: a cursor at exactly the last trimmed entry; a cursor that had seen all of a stream
 * that then expired. Neither can be told apart from a loss.)
 */
function gapAfter(info: StreamInfo, after: string): ChannelRead['gap'] {
  const pastHead = compareIds(after, info.head) > 0;
  const deletedLater = compareIds(info.maxDeletedId, after) > 0;
  const beforeFirst =
    info.firstId !== null && compareIds(after, info.firstId) < 0 && (info.trimmed || after !== ZERO_ID);
  return pastHead || deletedLater || beforeFirst ? { firstId: info.firstId } : undefined;
}

export function backendFailure(error: Error): BackendError {
  return error instanceof BackendError ? error : new BackendError('BACKEND_ERROR', `Redis refused a command: ${error.message}`, { cause: error });
}

function valueOf(reply: RedisReply | Error | undefined): RedisReply {
  if (reply === undefined) throw new BackendError('BACKEND_ERROR', 'Redis sent fewer replies than commands');
  if (reply instanceof Error) throw backendFailure(reply);
  return reply;
}

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

/** A Backend over Redis Streams, given a transport and a way to follow channels live. */
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
      const commands = requests.flatMap(({ channel, after }) => [
        readAfterCommand(keys, channel, after, limit),
        ['XINFO', 'STREAM', keys.stream(channel)],
      ]);
      const replies = await transport.pipeline(commands, call);
      return requests.map(({ after }, index) => {
        const events = toStoredEvents(valueOf(replies[index * 2]));
        const info = toStreamInfo(replies[index * 2 + 1] as RedisReply | Error);
        const gap = gapAfter(info, after);
        return gap ? { events, head: info.head, gap } : { events, head: info.head };
      });
    },
    async tail(channels: readonly string[], count: number, call?: CallOptions): Promise<ChannelTail[]> {
      const replies = await transport.pipeline(
        channels.map((channel) => newestCommand(keys, channel, count)),
        call,
      );
      return replies.map((reply) => {
        const newestFirst = toStoredEvents(valueOf(reply));
        return { head: headOf(newestFirst), events: count > 0 ? newestFirst.reverse() : [] };
      });
    },
    createFeed: (listener, call = {}) => options.createFeed(listener, call, appId, backend.tail),
    stats: () => ({ requests: options.requests(), subscriptions: options.subscriptions() }),
    close: () => options.close(),
  };
  return backend;
}
