import type { IncomingHttpHeaders } from 'node:http';
import { BridgeError } from './errors.js';

/** How the caller wants replies written: the `Upstash-Encoding` and `Upstash-Response-Format` headers. */
export interface ReplyFormat {
  /** `Upstash-Encoding: base64`: strings as base64 of their bytes (JSON only). */
  base64: boolean;
  /** `Upstash-Response-Format: resp2`: RESP2 bytes instead of JSON (not for /multi-exec). */
  resp2: boolean;
}

export function replyFormatOf(headers: IncomingHttpHeaders): ReplyFormat {
  const base64 = headerValue(headers['upstash-encoding']).toLowerCase() === 'base64';
  const format = headerValue(headers['upstash-response-format']).toLowerCase() || 'json';
  if (format !== 'json' && format !== 'resp2') {
    throw new BridgeError(
      400,
      `Upstash-Response-Format must be "json" or "resp2", got "${headerValue(headers['upstash-response-format']).slice(0, 50)}"`,
    );
  }
  if (format === 'resp2' && base64) {
    throw new BridgeError(400, 'Upstash-Encoding: base64 cannot be combined with Upstash-Response-Format: resp2 (RESP2 carries raw bytes)');
  }
  return { base64, resp2: format === 'resp2' };
}

function headerValue(value: string | string[] | undefined): string {
  return (Array.isArray(value) ? value[0] : value)?.trim() ?? '';
}
