#!/usr/bin/env node
import { type CliCommand, parseBridgeArgs, USAGE } from './args.js';
import { createBridge } from './server.js';

async function main(): Promise<void> {
  let command: CliCommand;
  try {
    command = parseBridgeArgs(process.argv.slice(2), process.env);
  } catch (error) {
    return fail(`${(error as Error).message}\n\n${USAGE}`);
  }
  if (command.help) {
    console.log(USAGE);
    return;
  }
  const bridge = await createBridge(command.options).catch((error: unknown) => fail((error as Error).message));
  if (!bridge) return;
  console.log(`edge-sse bridge listening on ${bridge.url} (Redis ${redisLabel(command.options.redis)})`);
  if (command.options.allowArbitraryScripts || command.options.allowAll) {
    console.warn('edge-sse-bridge: runs any Lua script its callers send: anyone with the token can read, write and block this Redis');
  }
  const stop = () => void bridge.close().then(() => process.exit(0));
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

function fail(message: string): undefined {
  console.error(`edge-sse-bridge: ${message}`);
  process.exitCode = 1;
  return undefined;
}

function redisLabel(url: string | undefined): string {
  try {
    const parsed = new URL(url ?? '');
    return `${parsed.hostname}:${parsed.port || '6379'}`;
  } catch {
    return String(url);
  }
}

void main();
