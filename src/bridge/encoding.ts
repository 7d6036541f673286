/**
 * Turns ioredis buffer replies into the JSON values of the Upstash REST protocol.
 *
 * With `Upstash-Encoding: base64` every string at every depth is base64 of the raw bytes, so
 * binary values survive JSON. The one exception is a top-level "OK": @upstash/redis returns a
 * top-level "OK" as is instead of decoding it (plain "OK" is not valid base64 of "OK"), while
 * strings inside arrays are always decoded, so there "OK" must be encoded like any other.
 */

export type JsonReply = string | number | null | JsonReply[];

export function encodeReply(reply: unknown, base64: boolean): JsonReply {
  if (base64 && isOk(reply)) return 'OK';
  return encodeValue(reply, base64);
}

function encodeValue(value: unknown, base64: boolean): JsonReply {
  if (value === null || value === undefined) return null;
  if (Buffer.isBuffer(value)) return base64 ? value.toString('base64') : value.toString('utf8');
  if (typeof value === 'string') return encodeValue(Buffer.from(value, 'utf8'), base64);
  if (typeof value === 'number') return Number.isFinite(value) ? value : String(value);
  if (typeof value === 'bigint') return encodeValue(value.toString(), base64);
  if (Array.isArray(value)) return value.map((item) => encodeValue(item, base64));
  if (value instanceof Map) return [...value].flat().map((item) => encodeValue(item, base64));
  if (value instanceof Error) return encodeValue(value.message, base64);
  return encodeValue(String(value), base64);
}

function isOk(reply: unknown): boolean {
  return (Buffer.isBuffer(reply) || typeof reply === 'string') && reply.toString() === 'OK';
}
