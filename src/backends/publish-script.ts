/**
 * Publishing as one Lua script per channel: XADD the events, refresh the TTL, and PUBLISH a wake-up
 * that carries the new events themselves, with the id they follow. A reader that stands at that id
 * delivers them straight from the message — no read request, one round trip less of latency —
 * and any other reader reads the stream as before. The whole publish is still one request.
 */
import { BackendError } from '../errors.js';
import type { KeySpace, RedisCommand, RedisReply, RedisTransport } from './redis-streams.js';
import type { CallOptions, NewEvent, Retention, StoredEvent } from './types.js';

// KEYS[1]: the stream. ARGV: maxLength, ttlSeconds, notify channel, embedded events (JSON or ''),
// then type, data, json flag per event. Returns the new ids.
export const SCRIPT = `local newest = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
local prev = newest[1] and newest[1][1] or '0-0'
local ids = {}
for i = 5, #ARGV, 3 do
  if ARGV[i + 2] == '1' then
    ids[#ids + 1] = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', 'type', ARGV[i], 'data', ARGV[i + 1], 'json', '1')
  else
    ids[#ids + 1] = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', 'type', ARGV[i], 'data', ARGV[i + 1])
  end
end
redis.call('EXPIRE', KEYS[1], ARGV[2])
redis.call('PUBLISH', ARGV[3], prev .. ' ' .. table.concat(ids, ',') .. ' ' .. ARGV[4])
return ids`;

/** Larger batches wake readers without their events; they read the stream instead. */
const MAX_EMBEDDED_CHARS = 32 * 1024;

let scriptSha: Promise<string> | undefined;

function sha1(text: string): Promise<string> {
  scriptSha ??= crypto.subtle.digest('SHA-1', new TextEncoder().encode(text)).then((digest) =>
    [...new Uint8Array(digest)].map((byte) => byte.toString(16).padStart(2, '0')).join(''),
  );
  return scriptSha;
}

interface ChannelBatch {
  channel: string;
  /** Positions of its events in the caller's list. */
  indexes: number[];
  events: NewEvent[];
}

function byChannel(events: readonly NewEvent[]): ChannelBatch[] {
  const batches = new Map<string, ChannelBatch>();
  events.forEach((event, index) => {
    let batch = batches.get(event.channel);
    if (!batch) batches.set(event.channel, (batch = { channel: event.channel, indexes: [], events: [] }));
    batch.indexes.push(index);
    batch.events.push(event);
  });
  return [...batches.values()];
}

/** The events as the wake-up carries them, or '' when they are too large to ride along. */
function embedded(events: readonly NewEvent[]): string {
  let estimate = 2;
  for (const event of events) estimate += event.type.length + event.data.length + 10;
  // JSON escapes can only lengthen the text: an estimate over the limit needs no stringify.
  if (estimate > MAX_EMBEDDED_CHARS) return '';
  const text = JSON.stringify(events.map((event) => [event.type, event.data, event.json ? 1 : 0]));
  return text.length <= MAX_EMBEDDED_CHARS ? text : '';
}

function scriptArguments(keys: KeySpace, batch: ChannelBatch, retention: Retention): (string | number)[] {
  const args: (string | number)[] = [
    1,
    keys.stream(batch.channel),
    retention.maxLength,
    retention.ttlSeconds,
    keys.notify(batch.channel),
    embedded(batch.events),
  ];
  for (const event of batch.events) args.push(event.type, event.data, event.json ? '1' : '0');
  return args;
}

/** Appends in one round trip (two the first time a Redis has not seen the script); ids in the caller's order. */
export async function appendWithScript(
  transport: RedisTransport,
  keys: KeySpace,
  events: readonly NewEvent[],
  retention: Retention,
  call?: CallOptions,
): Promise<string[]> {
  const batches = byChannel(events);
  const args = batches.map((batch) => scriptArguments(keys, batch, retention));
  const sha = await sha1(SCRIPT);
  let replies = await transport.pipeline(args.map((rest): RedisCommand => ['EVALSHA', sha, ...rest]), call);
  const unknown = replies.map((reply, index) => (reply instanceof Error && /NOSCRIPT/.test(reply.message) ? index : -1)).filter((index) => index >= 0);
  if (unknown.length > 0) {
    // Nothing ran for these: sending the script itself is safe, and caches it for next time.
    const retried = await transport.pipeline(unknown.map((index): RedisCommand => ['EVAL', SCRIPT, ...args[index]!]), call);
    replies = replies.map((reply, index) => (unknown.includes(index) ? (retried[unknown.indexOf(index)] as RedisReply | Error) : reply));
  }
  const ids: string[] = new Array(events.length);
  batches.forEach((batch, index) => {
    const reply = replies[index];
    if (reply instanceof Error) throw new BackendError('BACKEND_ERROR', `Redis refused the publish: ${reply.message}`, { cause: reply });
    if (!Array.isArray(reply) || reply.length !== batch.indexes.length) {
      throw new BackendError('BACKEND_ERROR', 'Redis answered the publish with something other than the new ids');
    }
    batch.indexes.forEach((position, n) => (ids[position] = String(reply[n])));
  });
  return ids;
}

export interface WakeUp {
  /** The id the new events follow. */
  prev: string;
  /** The new events, when the message carries them. */
  events?: StoredEvent[];
}

/** Reads a wake-up message; anything unexpected (an older publisher's `1`) is a plain wake-up. */
export function parseWakeUp(payload: string): WakeUp | undefined {
  const first = payload.indexOf(' ');
  const second = payload.indexOf(' ', first + 1);
  if (first <= 0 || second <= first) return undefined;
  const prev = payload.slice(0, first);
  const ids = payload.slice(first + 1, second).split(',');
  const embedded = payload.slice(second + 1);
  if (embedded === '') return { prev };
  try {
    const fields = JSON.parse(embedded) as [string, string, number][];
    if (!Array.isArray(fields) || fields.length !== ids.length) return { prev };
    return { prev, events: fields.map(([type, data, json], index) => ({ id: ids[index] as string, type, data, json: json === 1 })) };
  } catch {
    return { prev };
  }
}
