import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { Redis } from '@upstash/redis';
import { describe, expect, it } from 'vitest';
import { parseBridgeArgs } from '../../src/bridge/args.js';
import { REDIS_URL } from '../helpers/redis.js';
import { post } from './support.js';

describe('edge-sse-bridge CLI', () => {
  function runCli(args: string[], env: Record<string, string> = {}): ChildProcess {
    const environment = { ...process.env, ...env };
    delete environment.BRIDGE_TOKEN;
    Object.assign(environment, env);
    return spawn(process.execPath, ['--import', 'tsx', 'src/bridge/cli.ts', ...args], { env: environment, stdio: 'pipe' });
  }

  async function output(child: ChildProcess): Promise<{ code: number | null; stdout: string; stderr: string }> {
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (chunk) => (stdout += chunk));
    child.stderr!.on('data', (chunk) => (stderr += chunk));
    const [code] = (await once(child, 'exit')) as [number | null];
    return { code, stdout, stderr };
  }

  it('prints its URL and serves', async () => {
    const child = runCli(['--port', '0', '--redis', REDIS_URL, '--allow', 'OBJECT,MEMORY', '--max-subscriptions', '5'], {
      BRIDGE_TOKEN: 'cli-token',
    });
    try {
      let stdout = '';
      child.stdout!.on('data', (chunk) => (stdout += chunk));
      await expect.poll(() => stdout, { timeout: 10_000 }).toMatch(/listening on http:\/\/127\.0\.0\.1:\d+/);
      const url = /(http:\/\/127\.0\.0\.1:\d+)/.exec(stdout)![1]!;
      const redis = new Redis({ url, token: 'cli-token', enableTelemetry: false, retry: false });
      expect(await redis.ping()).toBe('PONG');
      expect((await post(url, '/', ['MEMORY', 'USAGE', 'nothing'], { Authorization: 'Bearer cli-token' })).json).toEqual({ result: null });
    } finally {
      child.kill('SIGTERM');
    }
    expect((await once(child, 'exit'))[0]).toBe(0);
  });

  it('warns when it runs any script', async () => {
    const child = runCli(['--port', '0', '--redis', REDIS_URL, '--allow-scripts'], { BRIDGE_TOKEN: 'cli-token' });
    let stderr = '';
    child.stderr!.on('data', (chunk) => (stderr += chunk));
    try {
      await expect.poll(() => stderr, { timeout: 10_000 }).toMatch(/runs any Lua script/);
    } finally {
      child.kill('SIGTERM');
    }
    await once(child, 'exit');
  });

  it('exits with a clear message on a missing token or a bad flag', async () => {
    const missing = await output(runCli(['--port', '0']));
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/A token is required: pass --token <secret> or set BRIDGE_TOKEN/);
    const unknown = await output(runCli(['--token', 't', '--bogus']));
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toMatch(/Unknown option '--bogus'/);
    const badPort = await output(runCli(['--token', 't', '--port', 'eighty']));
    expect(badPort.stderr).toMatch(/--port must be an integer/);
    const badScript = await output(runCli(['--token', 't', '--allow', 'EVAL']));
    expect(badScript.stderr).toMatch(/EVAL cannot be allowed by name: .*--allow-scripts/);
  });

  it('parses flags and environment into bridge options', () => {
    expect(
      parseBridgeArgs(['--allow', 'OBJECT, memory', '--allow', 'DEBUG', '--allow-all'], { BRIDGE_TOKEN: 's', REDIS_URL: 'redis://r:1' }),
    ).toEqual({
      help: false,
      options: {
        token: 's',
        port: 8079,
        host: '127.0.0.1',
        redis: 'redis://r:1',
        allow: ['OBJECT', 'memory', 'DEBUG'],
        allowAll: true,
        allowArbitraryScripts: false,
      },
    });
    const limits = [
      '--max-subscriptions',
      '50',
      '--max-transactions',
      '4',
      '--headers-timeout-ms',
      '2000',
      '--request-timeout-ms',
      '9000',
      '--idle-timeout-ms',
      '700',
    ];
    expect(parseBridgeArgs(['--token', 't', '--allow-scripts', ...limits], {})).toMatchObject({
      options: {
        allowArbitraryScripts: true,
        maxSubscriptions: 50,
        maxTransactions: 4,
        headersTimeoutMs: 2000,
        requestTimeoutMs: 9000,
        idleTimeoutMs: 700,
      },
    });
    expect(() => parseBridgeArgs(['--token', 't', '--max-subscriptions', 'many'], {})).toThrow(
      /--max-subscriptions must be a positive integer, got "many"/,
    );
    expect(() => parseBridgeArgs(['--token', 't', '--idle-timeout-ms', '0'], {})).toThrow(/--idle-timeout-ms must be a positive integer/);
    expect(parseBridgeArgs(['--help'], {})).toEqual({ help: true });
  });
});
