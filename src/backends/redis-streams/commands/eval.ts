/**
 * Running a Lua script: by EVALSHA, which sends only its SHA-1; where Redis answers NOSCRIPT
 * (it has not cached the script, or lost it), nothing ran, so the call goes again by EVAL with
 * the body, which caches it.
 */
import type { CallOptions } from '../../contract.js';
import { sha1Hex } from '../sha1.js';
import type { RedisCommand, RedisTransport } from '../transport.js';
import type { Reply } from './command.js';

export class Script {
  private sha: Promise<string> | undefined;

  constructor(readonly body: string) {}

  /** The SHA-1 EVALSHA names the script by, computed once. */
  digest(): Promise<string> {
    return (this.sha ??= sha1Hex(this.body));
  }
}

/** `numkeys`, the keys and the arguments of one call, as they follow the script or its SHA-1. */
export type ScriptArgs = (string | number)[];

/**
 * Runs `script` once per entry of `calls`, all in one request, and gives each call's reply. The
 * calls answered NOSCRIPT go again in one more request, the first of them by EVAL.
 */
export async function evalScript(
  transport: RedisTransport,
  script: Script,
  calls: readonly ScriptArgs[],
  options?: CallOptions,
): Promise<Reply[]> {
  const sha = await script.digest();
  const replies = await transport.pipeline(
    calls.map((args) => ['EVALSHA', sha, ...args]),
    options,
  );
  const missing = calls.map((_, index) => index).filter((index) => isNoScript(replies[index]));
  if (missing.length === 0) return replies;
  const again = missing.map(
    (index, position): RedisCommand =>
      position === 0 ? ['EVAL', script.body, ...(calls[index] as ScriptArgs)] : ['EVALSHA', sha, ...(calls[index] as ScriptArgs)],
  );
  const retried = await transport.pipeline(again, options);
  missing.forEach((index, position) => (replies[index] = retried[position] as Reply));
  return replies;
}

/** Redis had not seen the script: nothing ran, and sending its body is safe. */
function isNoScript(reply: Reply | undefined): boolean {
  return reply instanceof Error && /NOSCRIPT/.test(reply.message);
}
