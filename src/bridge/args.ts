import { parseArgs } from 'node:util';
import type { BridgeOptions } from './server.js';

export const USAGE = `Usage: edge-sse-bridge --token <secret> [options]

An Upstash-compatible Redis REST endpoint in front of a real Redis.

Options:
  --token <secret>    Bearer token clients must send (or env BRIDGE_TOKEN). Required.
  --port <n>          Port to listen on (default 8079; 0 picks a free port).
  --host <address>    Interface to listen on (default 127.0.0.1).
  --redis <url>       Redis URL (default env REDIS_URL or redis://127.0.0.1:6379).
  --allow <A,B,...>   Commands to allow on top of the default allowlist.
  --allow-all         Allow every command that can work over stateless HTTP.
  --help              Show this help.`;

export type CliCommand = { help: true } | { help: false; options: BridgeOptions };

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
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) return { help: true };
  const token = values.token ?? env.BRIDGE_TOKEN;
  if (!token) throw new Error('A token is required: pass --token <secret> or set BRIDGE_TOKEN');
  return {
    help: false,
    options: {
      token,
      port: parsePort(values.port ?? '8079'),
      host: values.host ?? '127.0.0.1',
      redis: values.redis ?? env.REDIS_URL ?? 'redis://127.0.0.1:6379',
      allow: (values.allow ?? []).flatMap((list) => list.split(',')).map((name) => name.trim()).filter(Boolean),
      allowAll: values['allow-all'] ?? false,
    },
  };
}

function parsePort(text: string): number {
  const port = Number(text);
  if (!/^\d+$/.test(text) || port > 65535) throw new Error(`--port must be an integer from 0 to 65535, got "${text}"`);
  return port;
}
