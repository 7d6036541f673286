import type { CommandArg } from './commands.js';
import { type CommandOutcome, INTEGER, type RedisReply } from './encoding.js';

/**
 * `Upstash-Response-Format: resp2`: replies as the RESP2 bytes a TCP client would read.
 *
 * The bridge's Redis client hands replies over decoded and does not keep apart a status reply
 * (`+OK`) and a bulk string (`$2 OK`), so strings are written as bulk strings except the status
 * replies Redis sends for most writes, plain PING and TYPE: a top-level `OK`, `PONG` for PING
 * without argument, and TYPE's answer are written `+…`. (A GET of a value that is "OK" is then
 * written `+OK`, the same string to any client that does not tell the two apart.) Nil arrays
 * (`*-1`) are written as nil bulk strings (`$-1`), as RESP2 clients read both as nil.
 */

const CRLF = '\r\n';

export function outcomeToResp2(command: readonly CommandArg[], outcome: CommandOutcome): Buffer {
  const chunks: Buffer[] = [];
  if ('error' in outcome) writeError(chunks, outcome.error);
  else if (isStatusReply(command, outcome.result))
    chunks.push(Buffer.from(`+${(outcome.result as Buffer).toString('latin1')}${CRLF}`, 'latin1'));
  else writeValue(chunks, outcome.result);
  return Buffer.concat(chunks);
}

function isStatusReply(command: readonly CommandArg[], reply: RedisReply): boolean {
  if (!Buffer.isBuffer(reply) || /[\r\n]/.test(reply.toString('latin1'))) return false;
  const name = String(command[0]).toUpperCase();
  if (name === 'TYPE') return true;
  if (name === 'PING') return command.length === 1 && reply.toString('latin1') === 'PONG';
  return reply.length === 2 && reply.toString('latin1') === 'OK';
}

function writeValue(chunks: Buffer[], value: RedisReply): void {
  if (value === null || value === undefined) chunks.push(Buffer.from(`$-1${CRLF}`));
  else if (Buffer.isBuffer(value)) chunks.push(Buffer.from(`$${value.length}${CRLF}`), value, Buffer.from(CRLF));
  else if (typeof value === 'string' && INTEGER.test(value)) chunks.push(Buffer.from(`:${value}${CRLF}`));
  else if (typeof value === 'number' && Number.isSafeInteger(value)) chunks.push(Buffer.from(`:${value}${CRLF}`));
  else if (value instanceof Error) writeError(chunks, value.message);
  else if (Array.isArray(value)) {
    chunks.push(Buffer.from(`*${value.length}${CRLF}`));
    for (const item of value) writeValue(chunks, item);
  } else writeValue(chunks, Buffer.from(String(value), 'utf8'));
}

/** An error line cannot hold a line break: one would end the reply early. */
function writeError(chunks: Buffer[], message: string): void {
  chunks.push(Buffer.from(`-${message.replace(/[\r\n]+/g, ' ')}${CRLF}`, 'utf8'));
}
