/**
 * Publishing is one Lua script per batch, over every key the batch touches, so Redis runs it as
 * one step: a batch is stored whole or not at all, and a retry with the same idempotency key
 * publishes once.
 *
 * - Before any write it checks every channel's key holds a stream (or nothing); otherwise it
 *   refuses, naming the channel. Out of memory, Redis refuses a script's first write (before
 *   anything is written) and lets a script that has written run to its end: never a part.
 * - With an idempotency key it first looks the key up: if a publish already used it, it returns
 *   that publish's ids and writes nothing; else it stores the ids under the key with the events.
 * - Per channel it XADDs the events, refreshes the TTL and PUBLISHes a wake-up (wake-up.ts), signed
 *   with the app id (see app-id.ts), that carries the new events and the id they follow.
 *
 * This file builds one call of the script (`prepareRun`) and reads its reply (`settleRun`); the
 * call goes out by EVALSHA, or EVAL where Redis had not cached the script (eval.ts).
 */
import { BackendError } from '../../../common/errors.js';
import type { AppId } from '../app-id.js';
import type { KeySpace } from '../keys.js';
import type { AppendOptions, Idempotency, NewEvent, Retention } from '../../contract.js';
import type { Reply } from './command.js';
import { Script, type ScriptArgs } from './eval.js';

// KEYS[1]: the app id; KEYS[2]: the idempotency key (unused without one); KEYS[3…]: a stream per channel.
// ARGV: maxLength, ttlSeconds, a candidate app id, idempotency seconds ('0': none), the prefix; then per
// channel its name, its number of events and its embedded events (JSON or ''); then per event type,
// data, json flag. Returns {repeated (0 or 1), the app id, each channel's newest id before the
// append (comma-separated; '' when repeated), the ids grouped by channel}.
export const PUBLISH_SCRIPT = new Script(`local channels = #KEYS - 2
local result = {0, '', ''}
if ARGV[4] ~= '0' then
  local stored = redis.call('GET', KEYS[2])
  if stored then
    result = {1, redis.call('GET', KEYS[1]) or '', ''}
    for id in string.gmatch(stored, '[^,]+') do result[#result + 1] = id end
    return result
  end
end
local prevs = {}
for c = 1, channels do
  local kind = redis.call('TYPE', KEYS[c + 2]).ok
  if kind == 'stream' then
    local newest = redis.call('XREVRANGE', KEYS[c + 2], '+', '-', 'COUNT', 1)
    prevs[c] = newest[1] and newest[1][1] or '0-0'
  elseif kind == 'none' then
    prevs[c] = '0-0'
  else
    return redis.error_reply('WRONGTYPE channel "' .. ARGV[3 + 3 * c] .. '" is a key of type ' .. kind .. ', not a stream: nothing was published')
  end
end
local app = redis.call('GET', KEYS[1])
if not app then
  app = ARGV[3]
  redis.call('SET', KEYS[1], app)
end
result[2] = app
result[3] = table.concat(prevs, ',')
local tag = string.sub(redis.sha1hex(app), 1, 16)
local all = {}
local e = 6 + 3 * channels
for c = 1, channels do
  local ids = {}
  for i = 1, tonumber(ARGV[4 + 3 * c]) do
    if ARGV[e + 2] == '1' then
      ids[i] = redis.call('XADD', KEYS[c + 2], 'MAXLEN', '~', ARGV[1], '*', 'type', ARGV[e], 'data', ARGV[e + 1], 'json', '1')
    else
      ids[i] = redis.call('XADD', KEYS[c + 2], 'MAXLEN', '~', ARGV[1], '*', 'type', ARGV[e], 'data', ARGV[e + 1])
    end
    result[#result + 1] = ids[i]
    e = e + 3
  end
  redis.call('EXPIRE', KEYS[c + 2], ARGV[2])
  local rest = prevs[c] .. ' ' .. table.concat(ids, ',') .. ' ' .. ARGV[5 + 3 * c]
  redis.call('PUBLISH', ARGV[5] .. '!' .. tag .. ':' .. ARGV[3 + 3 * c], redis.sha1hex(app .. redis.sha1hex(app .. rest)) .. ' ' .. rest)
end
if ARGV[4] ~= '0' then
  redis.call('SET', KEYS[2], table.concat(result, ',', 4), 'EX', ARGV[4])
end
return result`);

/** Larger batches wake readers without their events; they read the stream instead. */
const MAX_EMBEDDED_CHARS = 32 * 1024;

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

/** `numkeys`, the keys and the arguments of one run of the script. */
function scriptArguments(
  keys: KeySpace,
  candidateId: string,
  batches: readonly ChannelBatch[],
  retention: Retention,
  idempotency: Idempotency | undefined,
): ScriptArgs {
  const args: ScriptArgs = [
    2 + batches.length,
    keys.appId(),
    idempotency ? keys.idempotency(idempotency.key) : keys.appId(),
    ...batches.map((batch) => keys.stream(batch.channel)),
    retention.maxLength,
    retention.ttlSeconds,
    candidateId,
    idempotency ? idempotency.ttlSeconds : 0,
    keys.prefix,
  ];
  for (const batch of batches) args.push(batch.channel, batch.events.length, embedded(batch.events));
  for (const batch of batches) for (const event of batch.events) args.push(event.type, event.data, event.json ? '1' : '0');
  return args;
}

/** One publishing call, ready to go into a pipeline as one run of the script. */
export interface ScriptRun {
  /** `numkeys`, keys and arguments, after the script or its SHA-1. */
  args: ScriptArgs;
  /** About the characters the run adds to a request. */
  size: number;
  events: readonly NewEvent[];
  batches: readonly ChannelBatch[];
  call: AppendOptions;
}

export function prepareRun(
  keys: KeySpace,
  appId: AppId,
  events: readonly NewEvent[],
  retention: Retention,
  call: AppendOptions = {},
): ScriptRun {
  const batches = byChannel(events);
  const args = scriptArguments(keys, appId.candidate(), batches, retention, call.idempotency);
  let size = 0;
  for (const arg of args) size += typeof arg === 'string' ? arg.length + 3 : 12;
  return { args, size, events, batches, call };
}

/** The ids of a run, in the caller's order, from the script's reply; reports repeats and previous heads. */
export function settleRun(run: ScriptRun, reply: Reply | undefined, appId: AppId): string[] {
  const { events, batches, call } = run;
  const { repeated, id, prevs, ids } = decodePublishReply(reply);
  if (id) appId.learn(id);
  if (repeated) call.idempotency?.onRepeat?.();
  if (ids.length !== events.length) {
    if (repeated) return ids; // another publish used the key: the caller says what is wrong
    throw new BackendError('BACKEND_ERROR', `Redis answered the publish with ${ids.length} ids for ${events.length} events`);
  }
  if (!repeated && call.onPrevious && prevs.length === batches.length) {
    call.onPrevious(new Map(batches.map((batch, index) => [batch.channel, prevs[index] as string])));
  }
  const inOrder: string[] = new Array(events.length);
  let next = 0;
  for (const batch of batches) for (const position of batch.indexes) inOrder[position] = ids[next++] as string;
  return inOrder;
}

/** The script's reply: `{repeated, app id, previous heads (comma-separated), ids…}`. */
function decodePublishReply(reply: Reply | undefined): { repeated: boolean; id: string; prevs: string[]; ids: string[] } {
  if (reply instanceof Error) throw new BackendError('BACKEND_ERROR', `Redis refused the publish: ${reply.message}`, { cause: reply });
  if (!Array.isArray(reply) || reply.length < 3 || (reply[0] !== 0 && reply[0] !== 1)) {
    throw new BackendError('BACKEND_ERROR', 'Redis answered the publish with something other than the new ids');
  }
  const [repeated, id, prevs, ...ids] = reply;
  return { repeated: repeated === 1, id: String(id ?? ''), prevs: prevs ? String(prevs).split(',') : [], ids: ids.map(String) };
}
