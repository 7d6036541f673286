import { parseArgs } from 'node:util';
import type { BridgeOptions } from './options.js';

export const USAGE = `Usage: edge-sse-bridge --token <secret> [options]

An Upstash-compatible Redis REST endpoint in front of a real Redis.

Options:
  --token <secret>            Bearer token clients must send (or env BRIDGE_TOKEN). Required.
  --port <n>                  Port to listen on (default 8079; 0 picks a free port).
  --host <address>            Interface to listen on (default 127.0.0.1).
  --redis <url>               Redis URL (default env REDIS_URL or redis://127.0.0.1:6379).
  --allow <A,B,...>           Commands to allow on top of the default allowlist.
  --allow-all                 Allow every command that can work over stateless HTTP, and any script.
  --allow-scripts             Run any Lua script or function, not only edge-sse's own. A script
                              can read and write every key and block Redis: trusted callers only.
  --max-subscriptions <n>     Subscription streams open at once (default 1000); beyond, a 503.
  --max-transactions <n>      /multi-exec transactions running at once (default 100); beyond, a 503.
  --headers-timeout-ms <ms>   Time to send a request's headers (default 10000).
  --request-timeout-ms <ms>   Time to send a whole request, body included (default 30000).
  --idle-timeout-ms <ms>      Idle keep-alive connections close after this (default 5000).
  --help                      Show this help.`;

export type CliCommand = { help: true } | { help: false; options: BridgeOptions };

const NUMERIC_FLAGS = {
  'max-subscriptions': 'maxSubscriptions',
  'max-transactions': 'maxTransactions',
  'headers-timeout-ms': 'headersTimeoutMs',
  'request-timeout-ms': 'requestTimeoutMs',
  'idle-timeout-ms': 'idleTimeoutMs',
} as const;

/** Turns argv and the environment into bridge options; throws an Error with a clear message. */
export function parseBridgeArgs(argv: string[], env: Record<string, string | undefined>): CliCommand {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    allowPositionals: false,
    options: {
      token: { type: 'string' },
      port: { type: 'string' },
      host: { type: 'string' },
      redis: { type: 'string' },
      allow: { type: 'string', multiple: true },
      'allow-all': { type: 'boolean' },
      'allow-scripts': { type: 'boolean' },
      ...Object.fromEntries(Object.keys(NUMERIC_FLAGS).map((flag) => [flag, { type: 'string' } as const])),
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) return { help: true };
  const token = values.token ?? env.BRIDGE_TOKEN;
  if (!token) throw new Error('A token is required: pass --token <secret> or set BRIDGE_TOKEN');
  const options: BridgeOptions = {
    token,
    port: parsePort(values.port ?? '8079'),
    host: values.host ?? '127.0.0.1',
    redis: values.redis ?? env.REDIS_URL ?? 'redis://127.0.0.1:6379',
    allow: (values.allow ?? [])
      .flatMap((list) => list.split(','))
      .map((name) => name.trim())
      .filter(Boolean),
    allowAll: values['allow-all'] ?? false,
    allowArbitraryScripts: values['allow-scripts'] ?? false,
  };
  for (const [flag, option] of Object.entries(NUMERIC_FLAGS)) {
    const text = (values as Record<string, unknown>)[flag];
    if (typeof text === 'string') options[option] = parsePositive(flag, text);
  }
  return { help: false, options };
}

function parsePort(text: string): number {
  const port = Number(text);
  if (!/^\d+$/.test(text) || port > 65535) throw new Error(`--port must be an integer from 0 to 65535, got "${text}"`);
  return port;
}

function parsePositive(flag: string, text: string): number {
  const value = Number(text);
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(value) || value === 0)
    throw new Error(`--${flag} must be a positive integer, got "${text}"`);
  return value;
}
