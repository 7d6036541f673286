/**
 * Redis Cluster's key → slot mapping: CRC16 (XMODEM) of the key's hash tag — the text between
 * its first `{` and the next `}`, when not empty — else of the whole key, modulo 16384. A
 * channel's stream `<prefix>{<channel>}` has the channel name as its tag.
 */

const SLOTS = 16384;

const TABLE = (() => {
  const table = new Uint16Array(256);
  for (let byte = 0; byte < 256; byte++) {
    let crc = byte << 8;
    for (let bit = 0; bit < 8; bit++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
    table[byte] = crc;
  }
  return table;
})();

const encoder = new TextEncoder();

function crc16(bytes: Uint8Array): number {
  let crc = 0;
  for (const byte of bytes) crc = ((crc << 8) & 0xffff) ^ (TABLE[((crc >> 8) ^ byte) & 0xff] as number);
  return crc;
}

/** The part of a key Redis Cluster hashes (on its UTF-8 bytes, as Redis sees them). */
function hashTagOf(key: string): string {
  const open = key.indexOf('{');
  if (open === -1) return key;
  const close = key.indexOf('}', open + 1);
  return close === -1 || close === open + 1 ? key : key.slice(open + 1, close);
}

export function slotOfKey(key: string): number {
  return crc16(encoder.encode(hashTagOf(key))) % SLOTS;
}

/** The slot of every key of a channel (its stream, its idempotency keys). */
export function slotOfChannel(channel: string): number {
  return crc16(encoder.encode(channel)) % SLOTS;
}
