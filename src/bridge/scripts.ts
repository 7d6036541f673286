import { createHash } from 'node:crypto';
import { EDGE_SSE_SCRIPTS } from '../backends/redis-streams/scripts.js';
import type { CommandArg } from './commands.js';

/**
 * Which code may run inside Redis. A Lua script or function can read and write every key
 * (`return redis.call('FLUSHALL')`) and, looping, block Redis for every client — an allowlist of
 * commands means nothing while arbitrary scripts run. So by default only the scripts edge-sse
 * itself sends run: the core exports their bodies, and their SHA-1s are computed when the
 * bridge starts, so a new edge-sse script is recognised without editing the bridge.
 */

const EVAL_BY_BODY = new Set(['EVAL', 'EVAL_RO']);
const EVAL_BY_SHA = new Set(['EVALSHA', 'EVALSHA_RO']);
const FUNCTIONS = new Set(['FUNCTION', 'FCALL', 'FCALL_RO']);
/** SCRIPT subcommands that run or remove no code: allowed with the default allowlist. */
const HARMLESS_SCRIPT_SUBCOMMANDS = new Set(['EXISTS', 'HELP']);

const OPT_IN =
  'a script can read and write every key and block Redis; the operator can allow any script with --allow-scripts (option allowArbitraryScripts: true)';

export interface ScriptGuard {
  /**
   * For a command that runs or manages code: why it must not run, or null when it may (whatever
   * the allowlist says). Undefined for any other command, and for SCRIPT FLUSH and KILL, which
   * run no code of the caller's: the allowlist decides (`--allow SCRIPT`).
   */
  refusal(name: string, command: readonly CommandArg[]): string | null | undefined;
}

/** `scripts`: the bodies that may run; edge-sse's own when not given. */
export function createScriptGuard(options: { allowArbitraryScripts: boolean; scripts?: readonly string[] }): ScriptGuard {
  const scripts = options.scripts ?? EDGE_SSE_SCRIPTS;
  if (!scripts.every((script) => typeof script === 'string' && script.length > 0)) {
    throw new Error('allowedScripts must hold script bodies: non-empty strings');
  }
  const known = new Set(scripts.map(sha1));
  const unknownScript = (name: string) => `${name} of a script edge-sse does not send is refused by the bridge: ${OPT_IN}`;
  return {
    refusal(name, command) {
      if (name === 'SCRIPT') return scriptSubcommand(known, command, options.allowArbitraryScripts);
      const isCode = EVAL_BY_BODY.has(name) || EVAL_BY_SHA.has(name) || FUNCTIONS.has(name);
      if (!isCode || options.allowArbitraryScripts) return isCode ? null : undefined;
      if (EVAL_BY_BODY.has(name)) return isKnownBody(known, command[1]) ? null : unknownScript(name);
      if (EVAL_BY_SHA.has(name)) return isKnownSha(known, command[1]) ? null : unknownScript(name);
      return `${name} is refused by the bridge: functions are scripts, and ${OPT_IN}`;
    },
  };
}

function scriptSubcommand(known: Set<string>, command: readonly CommandArg[], arbitrary: boolean): string | null | undefined {
  const subcommand = text(command[1]).toUpperCase();
  if (subcommand === 'DEBUG')
    return 'SCRIPT DEBUG is not supported by the bridge: it changes connection state, which a stateless HTTP request cannot keep';
  if (arbitrary || HARMLESS_SCRIPT_SUBCOMMANDS.has(subcommand)) return null;
  if (subcommand === 'LOAD')
    return isKnownBody(known, command[2]) ? null : `SCRIPT LOAD of a script edge-sse does not send is refused by the bridge: ${OPT_IN}`;
  return undefined;
}

function isKnownBody(known: Set<string>, body: CommandArg | undefined): boolean {
  return body !== undefined && known.has(sha1(body));
}

function isKnownSha(known: Set<string>, sha: CommandArg | undefined): boolean {
  return sha !== undefined && known.has(text(sha).toLowerCase());
}

function sha1(body: CommandArg): string {
  return createHash('sha1').update(body).digest('hex');
}

function text(arg: CommandArg | undefined): string {
  return arg === undefined ? '' : typeof arg === 'string' ? arg : arg.toString('utf8');
}
