/**
 * Publishing on a Redis Cluster. A script may only touch keys of one slot, so a batch is split
 * by slot — each channel's keys are in the slot of its name — and each part is one run of the
 * script below on the master serving that slot, all parts at once. Each part is all or nothing,
 * as a whole batch is on one Redis; parts are not atomic together. When some are stored and some
 * not, a PartialPublishError says which events were stored (with their ids) and which were not.
 *
 * An idempotency key is kept per part, beside the part's first channel (by name):
 * `<prefix>{<channel>}#idem:<key>`. A retry of the same batch with the same key publishes each
 * part once: parts stored before return their ids, parts that failed are stored now.
 *
 * The script wakes readers with `SPUBLISH` on each channel's shard channel (named like its stream,
 * `<prefix>{<channel>}`, so in its slot): it reaches the subscribers of that slot's master and its
 * replicas, not every node as PUBLISH would. The message is the newest id, a hint only: readers
 * read the stream. No app id is needed for that, so none is kept.
 */
import { BackendError } from '../../../common/errors.js';
import type { Reply } from '../../redis-streams/commands/command.js';
import { Script, type ScriptArgs, evalScript } from '../../redis-streams/commands/eval.js';
import type { KeySpace } from '../../redis-streams/keys.js';
import type { RedisTransport } from '../../redis-streams/transport.js';
import { slotOfChannel } from './slots.js';
import type { AppendOptions, NewEvent, Retention } from '../../contract.js';

// KEYS[1]: the idempotency key (the first stream without one); KEYS[2…]: a stream per channel, one slot.
// ARGV: maxLength, ttlSeconds, idempotency seconds ('0': none); per channel its name and number of
// events; per event type, data, json flag. Returns {0, each channel's newest id before (0-0 for
// none), the ids grouped by channel}, or {1, the ids stored before} for a repeated key.
const CLUSTER_SCRIPT = new Script(`local channels = #KEYS - 1
if ARGV[3] ~= '0' then
  local stored = redis.call('GET', KEYS[1])
  if stored then
    local result = {1}
    for id in string.gmatch(stored, '[^,]+') do result[#result + 1] = id end
    return result
  end
end
local result = {0}
for c = 1, channels do
  local kind = redis.call('TYPE', KEYS[c + 1]).ok
  if kind == 'stream' then
    local newest = redis.call('XREVRANGE', KEYS[c + 1], '+', '-', 'COUNT', 1)
    result[c + 1] = newest[1] and newest[1][1] or '0-0'
  elseif kind == 'none' then
    result[c + 1] = '0-0'
  else
    return redis.error_reply('WRONGTYPE channel "' .. ARGV[2 + 2 * c] .. '" is a key of type ' .. kind .. ', not a stream: nothing was published on its slot')
  end
end
local e = 4 + 2 * channels
for c = 1, channels do
  local id
  for i = 1, tonumber(ARGV[3 + 2 * c]) do
    if ARGV[e + 2] == '1' then
      id = redis.call('XADD', KEYS[c + 1], 'MAXLEN', '~', ARGV[1], '*', 'type', ARGV[e], 'data', ARGV[e + 1], 'json', '1')
    else
      id = redis.call('XADD', KEYS[c + 1], 'MAXLEN', '~', ARGV[1], '*', 'type', ARGV[e], 'data', ARGV[e + 1])
    end
    result[#result + 1] = id
    e = e + 3
  end
  redis.call('EXPIRE', KEYS[c + 1], ARGV[2])
  redis.call('SPUBLISH', KEYS[c + 1], id)
end
if ARGV[3] ~= '0' then
  redis.call('SET', KEYS[1], table.concat(result, ',', 2 + channels), 'EX', ARGV[3])
end
return result`);

/** The events of one slot, by channel in order of first appearance. */
interface SlotPart {
  channels: string[];
  /** Per channel, positions of its events in the caller's list. */
  indexes: number[][];
  events: NewEvent[][];
}

function bySlot(events: readonly NewEvent[]): SlotPart[] {
  const parts = new Map<number, SlotPart>();
  events.forEach((event, index) => {
    const slot = slotOfChannel(event.channel);
    let part = parts.get(slot);
    if (!part) parts.set(slot, (part = { channels: [], indexes: [], events: [] }));
    let at = part.channels.indexOf(event.channel);
    if (at === -1) at = part.channels.push(event.channel) - 1;
    (part.indexes[at] ??= []).push(index);
    (part.events[at] ??= []).push(event);
  });
  return [...parts.values()];
}

function scriptArguments(keys: KeySpace, part: SlotPart, retention: Retention, call: AppendOptions): ScriptArgs {
  const idempotency = call.idempotency;
  const first = [...part.channels].sort()[0] as string;
  const args: ScriptArgs = [
    1 + part.channels.length,
    idempotency ? keys.idempotencyBeside(first, idempotency.key) : keys.stream(first),
    ...part.channels.map((channel) => keys.stream(channel)),
    retention.maxLength,
    retention.ttlSeconds,
    idempotency ? idempotency.ttlSeconds : 0,
  ];
  part.channels.forEach((channel, at) => args.push(channel, (part.events[at] as NewEvent[]).length));
  for (const events of part.events) for (const event of events) args.push(event.type, event.data, event.json ? '1' : '0');
  return args;
}

/** `previous`: each channel's newest id before the append, in the part's channel order (none when repeated). */
type PartOutcome = { repeated: boolean; ids: string[]; previous: string[] } | { error: BackendError };

async function appendPart(
  transport: RedisTransport,
  keys: KeySpace,
  part: SlotPart,
  retention: Retention,
  call: AppendOptions,
): Promise<PartOutcome> {
  const args = scriptArguments(keys, part, retention, call);
  try {
    // Alone in its request: a NOSCRIPT answer sends the script itself to that master, which caches it.
    const [reply] = await evalScript(transport, CLUSTER_SCRIPT, [args], call);
    return decodePartReply(reply, part.channels.length);
  } catch (error) {
    return { error: error instanceof BackendError ? error : new BackendError('BACKEND_ERROR', String(error), { cause: error }) };
  }
}

/** The script's reply: `{0, previous heads…, ids…}`, or `{1, ids…}` for a repeated key. */
function decodePartReply(reply: Reply | undefined, channels: number): PartOutcome {
  if (reply instanceof Error)
    return { error: new BackendError('BACKEND_ERROR', `Redis refused the publish: ${reply.message}`, { cause: reply }) };
  if (!Array.isArray(reply) || (reply[0] !== 0 && reply[0] !== 1)) {
    return { error: new BackendError('BACKEND_ERROR', 'Redis answered the publish with something other than the new ids') };
  }
  const [repeated, ...rest] = reply.map(String);
  if (repeated === '1') return { repeated: true, ids: rest, previous: [] };
  return { repeated: false, ids: rest.slice(channels), previous: rest.slice(0, channels) };
}

const countOf = (part: SlotPart) => part.events.reduce((sum, events) => sum + events.length, 0);

/**
 * Appends a batch on a cluster: one script run per slot, in parallel; ids in the caller's order.
 * Throws the failure itself when no part was stored, a PartialPublishError when some were.
 */
export async function appendOnCluster(
  transport: RedisTransport,
  keys: KeySpace,
  events: readonly NewEvent[],
  retention: Retention,
  call: AppendOptions = {},
): Promise<string[]> {
  if (events.length === 0) return [];
  const parts = bySlot(events);
  const outcomes = await Promise.all(parts.map((part) => appendPart(transport, keys, part, retention, call)));
  if (outcomes.every((outcome) => 'repeated' in outcome && outcome.repeated)) {
    call.idempotency?.onRepeat?.();
    const counts = outcomes.map((outcome) => ('ids' in outcome ? outcome.ids.length : 0));
    // Another publish used the key: its ids, as many as it had (the caller says what is wrong).
    if (parts.some((part, index) => countOf(part) !== counts[index]))
      return outcomes.flatMap((outcome) => ('ids' in outcome ? outcome.ids : []));
  }
  const ids: (string | null)[] = new Array(events.length).fill(null);
  const failures: PartFailure[] = [];
  parts.forEach((part, index) => {
    const outcome = outcomes[index] as PartOutcome;
    const error = 'error' in outcome ? outcome.error : mismatch(part, outcome);
    if (error) return failures.push({ channels: part.channels, events: part.indexes.flat().sort((a, b) => a - b), error });
    let next = 0;
    for (const positions of part.indexes)
      for (const position of positions) ids[position] = (outcome as { ids: string[] }).ids[next++] as string;
  });
  reportPrevious(events, parts, outcomes, call);
  if (failures.length === 0) return ids as string[];
  if (failures.length === parts.length) throw (failures.find((failure) => failure.error.code !== 'BACKEND_ERROR') ?? failures[0])!.error;
  throw new PartialPublishError(ids, failures, call.idempotency !== undefined);
}

/** `onPrevious` for the parts that were stored now, channels in the order the batch names them. */
function reportPrevious(events: readonly NewEvent[], parts: SlotPart[], outcomes: PartOutcome[], call: AppendOptions): void {
  if (!call.onPrevious) return;
  const byChannel = new Map<string, string>();
  parts.forEach((part, index) => {
    const outcome = outcomes[index] as PartOutcome;
    if ('previous' in outcome)
      part.channels.forEach((channel, at) => outcome.previous[at] !== undefined && byChannel.set(channel, outcome.previous[at]!));
  });
  const previous = new Map<string, string>();
  for (const { channel } of events) if (byChannel.has(channel) && !previous.has(channel)) previous.set(channel, byChannel.get(channel)!);
  if (previous.size > 0) call.onPrevious(previous);
}

/** A part whose idempotency key another publish, with other events there, had used: nothing of it was stored. */
function mismatch(part: SlotPart, outcome: { repeated: boolean; ids: string[] }): BackendError | undefined {
  if (outcome.ids.length === countOf(part)) return undefined;
  const what = outcome.repeated
    ? `its idempotency key was used by a publish of ${outcome.ids.length} event(s) there`
    : `Redis answered with ${outcome.ids.length} ids`;
  return new BackendError('BACKEND_ERROR', `${what}, and this one has ${countOf(part)}`);
}

export interface PartFailure {
  /** The channels of the part (one slot). */
  channels: string[];
  /** Positions of its events in the batch. */
  events: number[];
  /** Why: a refusal (nothing of the part was stored), or BACKEND_TIMEOUT / BACKEND_UNAVAILABLE (it may have been). */
  error: BackendError;
}

/**
 * A batch on a Redis Cluster was stored in part: the events of some slots were stored, those of
 * others not (or, after a timeout or a lost connection, maybe). `ids` has an id for each stored
 * event, in the batch's order, and null for the rest. Retrying the whole batch with the same
 * idempotency key stores the rest once; without one, a retry stores the stored part again.
 * `code` is the first failure's.
 */
export class PartialPublishError extends BackendError {
  static override readonly kind: string = 'PartialPublishError';
  override name = 'PartialPublishError';

  constructor(
    readonly ids: (string | null)[],
    readonly failures: PartFailure[],
    withIdempotencyKey: boolean,
  ) {
    const stored = ids.flatMap((id, index) => (id === null ? [] : [index]));
    const retry = withIdempotencyKey
      ? 'retry the whole batch with the same idempotencyKey to store the rest once'
      : 'a retry of the whole batch stores the stored events again; give it an idempotencyKey to store each part once';
    super(
      (failures[0] as PartFailure).error.code,
      `Redis Cluster stored ${stored.length} of ${ids.length} events (${describeEvents(stored)}); ` +
        failures
          .map((failure) => `not ${describeEvents(failure.events)} on ${channelList(failure.channels)}: ${failure.error.message}`)
          .join('; ') +
        `; ${retry}`,
      { cause: (failures[0] as PartFailure).error },
    );
  }
}

function describeEvents(positions: readonly number[]): string {
  const shown = positions.slice(0, 20).map((position) => `#${position}`);
  return `event${positions.length === 1 ? '' : 's'} ${shown.join(', ')}${positions.length > 20 ? ` and ${positions.length - 20} more` : ''}`;
}

function channelList(channels: readonly string[]): string {
  return channels.length === 1 ? `channel "${channels[0]}"` : `channels ${channels.map((channel) => `"${channel}"`).join(', ')}`;
}
