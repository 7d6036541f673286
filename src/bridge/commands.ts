import { EDGE_SSE_SCRIPTS } from '../backends/redis-streams/scripts.js';
import { createScriptGuard } from './scripts.js';

/**
 * Which Redis commands the bridge forwards.
 *
 * Three layers: commands that can never work over stateless HTTP (they block a shared
 * connection or change its state) are refused even with `allowAll`; commands that run code in
 * Redis answer to the script guard (scripts.ts: edge-sse's own scripts only, unless
 * `allowArbitraryScripts`); everything else must be on the allowlist (defaults below, extended
 * with `allow`) unless `allowAll` is set.
 */

/** One argument of a command: text, or raw bytes (a path-style request's body). */
export type CommandArg = string | Buffer;

const BLOCKING = ['BLPOP', 'BRPOP', 'BLMOVE', 'BRPOPLPUSH', 'BZPOPMIN', 'BZPOPMAX', 'BLMPOP', 'BZMPOP', 'WAIT', 'WAITAOF'];

const CONNECTION_STATE = [
  'SUBSCRIBE',
  'PSUBSCRIBE',
  'SSUBSCRIBE',
  'UNSUBSCRIBE',
  'PUNSUBSCRIBE',
  'SUNSUBSCRIBE',
  'MONITOR',
  'SYNC',
  'PSYNC',
  'MULTI',
  'EXEC',
  'DISCARD',
  'WATCH',
  'UNWATCH',
  'SELECT',
  'AUTH',
  'HELLO',
  'RESET',
  'QUIT',
  'CLIENT',
  'READONLY',
  'READWRITE',
];

/** Commands that can never be allowed, with the reason shown to the caller. */
const UNSUPPORTED = new Map<string, string>([
  ...BLOCKING.map((name) => [name, 'blocking commands would hold a shared connection'] as const),
  ...CONNECTION_STATE.map((name) => [name, 'it changes connection state, which a stateless HTTP request cannot keep'] as const),
]);

export const DEFAULT_ALLOWED_COMMANDS: readonly string[] = [
  // connection / server (read-only)
  'PING',
  'ECHO',
  'TIME',
  'DBSIZE',
  // keys
  'DEL',
  'UNLINK',
  'EXISTS',
  'TYPE',
  'SCAN',
  'TOUCH',
  'RENAME',
  'RENAMENX',
  'COPY',
  'PERSIST',
  'EXPIRE',
  'PEXPIRE',
  'EXPIREAT',
  'PEXPIREAT',
  'EXPIRETIME',
  'PEXPIRETIME',
  'TTL',
  'PTTL',
  // strings (JSON values travel as strings)
  'GET',
  'SET',
  'SETNX',
  'SETEX',
  'PSETEX',
  'GETSET',
  'GETDEL',
  'GETEX',
  'MGET',
  'MSET',
  'MSETNX',
  'APPEND',
  'STRLEN',
  'GETRANGE',
  'SETRANGE',
  'INCR',
  'INCRBY',
  'INCRBYFLOAT',
  'DECR',
  'DECRBY',
  'SETBIT',
  'GETBIT',
  'BITCOUNT',
  'BITPOS',
  'BITOP',
  // hashes
  'HSET',
  'HSETNX',
  'HMSET',
  'HGET',
  'HMGET',
  'HGETALL',
  'HDEL',
  'HEXISTS',
  'HLEN',
  'HKEYS',
  'HVALS',
  'HSTRLEN',
  'HINCRBY',
  'HINCRBYFLOAT',
  'HSCAN',
  'HRANDFIELD',
  'HEXPIRE',
  'HPEXPIRE',
  'HEXPIREAT',
  'HPEXPIREAT',
  'HTTL',
  'HPTTL',
  'HPERSIST',
  'HEXPIRETIME',
  'HPEXPIRETIME',
  // lists (non-blocking)
  'LPUSH',
  'RPUSH',
  'LPUSHX',
  'RPUSHX',
  'LPOP',
  'RPOP',
  'LLEN',
  'LRANGE',
  'LINDEX',
  'LSET',
  'LREM',
  'LTRIM',
  'LINSERT',
  'LPOS',
  'LMOVE',
  'LMPOP',
  'RPOPLPUSH',
  // sets
  'SADD',
  'SREM',
  'SMEMBERS',
  'SISMEMBER',
  'SMISMEMBER',
  'SCARD',
  'SPOP',
  'SRANDMEMBER',
  'SMOVE',
  'SINTER',
  'SINTERCARD',
  'SINTERSTORE',
  'SUNION',
  'SUNIONSTORE',
  'SDIFF',
  'SDIFFSTORE',
  'SSCAN',
  // sorted sets
  'ZADD',
  'ZREM',
  'ZSCORE',
  'ZMSCORE',
  'ZINCRBY',
  'ZCARD',
  'ZCOUNT',
  'ZLEXCOUNT',
  'ZRANK',
  'ZREVRANK',
  'ZRANGE',
  'ZRANGESTORE',
  'ZRANGEBYSCORE',
  'ZRANGEBYLEX',
  'ZREVRANGE',
  'ZREVRANGEBYSCORE',
  'ZREVRANGEBYLEX',
  'ZPOPMIN',
  'ZPOPMAX',
  'ZMPOP',
  'ZREMRANGEBYRANK',
  'ZREMRANGEBYSCORE',
  'ZREMRANGEBYLEX',
  'ZUNION',
  'ZUNIONSTORE',
  'ZINTER',
  'ZINTERSTORE',
  'ZINTERCARD',
  'ZDIFF',
  'ZDIFFSTORE',
  'ZRANDMEMBER',
  'ZSCAN',
  // streams (XREAD/XREADGROUP only without BLOCK)
  'XADD',
  'XRANGE',
  'XREVRANGE',
  'XREAD',
  'XLEN',
  'XINFO',
  'XTRIM',
  'XDEL',
  'XGROUP',
  'XREADGROUP',
  'XACK',
  'XPENDING',
  'XCLAIM',
  'XAUTOCLAIM',
  // pub/sub (publishing; subscribing has its own endpoint)
  'PUBLISH',
  'PUBSUB',
  // hyperloglog
  'PFADD',
  'PFCOUNT',
  'PFMERGE',
  // Scripts (EVAL, EVALSHA, SCRIPT LOAD/EXISTS) are not listed: the script guard lets edge-sse's
  // own scripts through and refuses any other unless the operator opts in.
];

/** Commands that run caller-supplied code: governed by `allowArbitraryScripts`, never by `allow`. */
const SCRIPT_COMMANDS = ['EVAL', 'EVAL_RO', 'EVALSHA', 'EVALSHA_RO', 'FUNCTION', 'FCALL', 'FCALL_RO'];

export interface CommandPolicyOptions {
  allow?: readonly string[];
  allowAll?: boolean;
  /** Run any script, not only edge-sse's own. Implied by `allowAll`. */
  allowArbitraryScripts?: boolean;
  /** Script bodies to run next to edge-sse's own. */
  allowedScripts?: readonly string[];
}

export interface CommandPolicy {
  /** Why `command` must not run, or `null` when it may. */
  refusal(command: readonly CommandArg[]): string | null;
}

export function createCommandPolicy(options: CommandPolicyOptions = {}): CommandPolicy {
  const extra = (options.allow ?? []).map(normalizeName);
  assertAllowable(extra);
  const allowed = new Set([...DEFAULT_ALLOWED_COMMANDS, ...extra]);
  const allowAll = options.allowAll ?? false;
  const scripts = createScriptGuard({
    allowArbitraryScripts: allowAll || (options.allowArbitraryScripts ?? false),
    scripts: [...EDGE_SSE_SCRIPTS, ...(options.allowedScripts ?? [])],
  });
  return {
    refusal(command) {
      const name = normalizeName(text(command[0]));
      const unsupported = UNSUPPORTED.get(name) ?? blockingStreamRead(name, command);
      if (unsupported) return `${name} is not supported by the bridge: ${unsupported}`;
      const script = scripts.refusal(name, command);
      if (script !== undefined) return script;
      if (!allowAll && !allowed.has(name)) {
        return `${name} is not on the bridge's allowlist (add it with --allow ${name} or the allow option)`;
      }
      return null;
    },
  };
}

/** Throws when asked to allow a command that can never work through the bridge. */
function assertAllowable(names: readonly string[]): void {
  for (const name of names) {
    if (!/^[A-Z][A-Z0-9_.|-]*$/.test(name)) throw new Error(`Invalid command name to allow: "${name}"`);
    const reason = UNSUPPORTED.get(name);
    if (reason) throw new Error(`${name} cannot be allowed: ${reason}`);
    if (SCRIPT_COMMANDS.includes(name)) {
      throw new Error(
        `${name} cannot be allowed by name: edge-sse's own scripts run by default, and any script runs with --allow-scripts (option allowArbitraryScripts: true)`,
      );
    }
  }
}

function text(arg: CommandArg | undefined): string {
  return arg === undefined ? '' : typeof arg === 'string' ? arg : arg.toString('utf8');
}

function normalizeName(name: string): string {
  return name.trim().toUpperCase();
}

function blockingStreamRead(name: string, command: readonly CommandArg[]): string | undefined {
  if (name !== 'XREAD' && name !== 'XREADGROUP') return undefined;
  // Options come before the STREAMS keyword; after it only keys and ids follow.
  for (let i = 1; i < command.length; i++) {
    const option = text(command[i]).toUpperCase();
    if (option === 'STREAMS') return undefined;
    if (option === 'BLOCK') return `${name} with BLOCK would hold a shared connection; poll without BLOCK`;
    if (option === 'GROUP') i += 2; // group and consumer names may be any word, even "BLOCK"
    if (option === 'COUNT') i += 1;
  }
  return undefined;
}
