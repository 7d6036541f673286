/**
 * Writes Redis replies as the JSON text of the Upstash REST protocol.
 *
 * Replies arrive as the bridge's Redis client decodes them (redis.ts): string replies as
 * Buffers, integer replies as their decimal text (`stringNumbers`), nil as null, errors as Error
 * objects, arrays as arrays. Integers are written as JSON numbers with exactly Redis' digits, so
 * 9007199254740993 stays 9007199254740993 for any reader whose JSON parser keeps big integers.
 *
 * With `Upstash-Encoding: base64` every string at every depth is base64 of the raw bytes, so
 * binary values survive JSON. The one exception is a top-level "OK": @upstash/redis returns a
 * top-level "OK" as is instead of decoding it (plain "OK" is not valid base64 of "OK"), while
 * strings inside arrays are always decoded, so there "OK" must be encoded like any other.
 *
 * An error inside an array (a script returning `{1, redis.error_reply('…')}`, which Upstash does
 * not document) is written `{"error":"…"}` in its place: the shape of a top-level error, and
 * distinct from any string.
 */

/** A reply as the bridge's Redis client decodes it. */
export type RedisReply = Buffer | string | number | null | undefined | Error | RedisReply[];

/** What one command produced, in the shape of the Upstash REST protocol. */
export type CommandOutcome = { result: RedisReply } | { error: string };

export function outcomeToJson(outcome: CommandOutcome, base64: boolean): string {
  if ('error' in outcome) return `{"error":${JSON.stringify(outcome.error)}}`;
  return `{"result":${replyToJson(outcome.result, base64)}}`;
}

export function outcomesToJson(outcomes: readonly CommandOutcome[], base64: boolean): string {
  return `[${outcomes.map((outcome) => outcomeToJson(outcome, base64)).join(',')}]`;
}

function replyToJson(reply: RedisReply, base64: boolean): string {
  if (base64 && Buffer.isBuffer(reply) && reply.length === 2 && reply.toString('latin1') === 'OK') return '"OK"';
  return valueToJson(reply, base64);
}

function valueToJson(value: RedisReply, base64: boolean): string {
  if (value === null || value === undefined) return 'null';
  if (Buffer.isBuffer(value)) return JSON.stringify(value.toString(base64 ? 'base64' : 'utf8'));
  if (typeof value === 'string') return INTEGER.test(value) ? value : valueToJson(Buffer.from(value, 'utf8'), base64);
  if (typeof value === 'number') return Number.isFinite(value) ? String(value) : JSON.stringify(String(value));
  if (value instanceof Error) return `{"error":${JSON.stringify(value.message)}}`;
  return `[${value.map((item) => valueToJson(item, base64)).join(',')}]`;
}

/** An integer reply's text as the decoder leaves it: what may go into JSON unquoted. */
export const INTEGER = /^-?\d+$/;
