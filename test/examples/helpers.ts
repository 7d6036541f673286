/**
 * Shared by the example and runtime tests: the built library (dist/, as users get it through
 * the exports map), free ports, child processes that are always cleaned up, and waiting.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdirSync, readdirSync, rmSync, statSync } from 'node:fs';
import { createServer } from 'node:net';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = resolve(fileURLToPath(new URL('../..', import.meta.url)));
const DIST_ENTRIES = ['index.js', 'upstash.js', 'bridge.js', 'node.js', 'index.d.ts', 'upstash.d.ts'];

function newestMtime(path: string): number {
  const stat = statSync(path);
  if (!stat.isDirectory()) return stat.mtimeMs;
  let newest = 0;
  for (const entry of readdirSync(path)) newest = Math.max(newest, newestMtime(join(path, entry)));
  return newest;
}

function distIsFresh(): boolean {
  try {
    const oldestOutput = Math.min(...DIST_ENTRIES.map((entry) => statSync(join(ROOT, 'dist', entry)).mtimeMs));
    const newestInput = Math.max(newestMtime(join(ROOT, 'src')), newestMtime(join(ROOT, 'tsup.config.ts')));
    return oldestOutput >= newestInput;
  } catch {
    return false;
  }
}

/**
 * Makes sure dist/ is built from the current src/ (CI builds before testing; `npm test` alone
 * builds here). A lock directory keeps test files running in parallel from building at once.
 */
export async function ensureBuilt(): Promise<void> {
  const lock = join(ROOT, 'node_modules', '.cache', 'edge-sse-test-build.lock');
  mkdirSync(join(lock, '..'), { recursive: true });
  const deadline = Date.now() + 120_000;
  for (;;) {
    try {
      mkdirSync(lock);
      break;
    } catch {
      // A lock older than two minutes belongs to a run that died.
      try {
        if (Date.now() - statSync(lock).mtimeMs > 120_000) rmSync(lock, { recursive: true, force: true });
      } catch {
        // Released meanwhile.
      }
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${lock}; remove it if no test run is building`);
      await sleep(200);
    }
  }
  try {
    if (distIsFresh()) return;
    const build = spawnSync(process.execPath, [join(ROOT, 'node_modules', 'tsup', 'dist', 'cli-default.js')], {
      cwd: ROOT,
      encoding: 'utf8',
    });
    if (build.status !== 0) {
      throw new Error(`Building the library (tsup, as \`npm run build\`) failed:\n${build.stdout}\n${build.stderr}`);
    }
  } finally {
    rmSync(lock, { recursive: true, force: true });
  }
}

export function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => resolvePort(typeof address === 'object' && address ? address.port : 0));
    });
  });
}

export const sleep = (ms: number) => new Promise((done) => setTimeout(done, ms));

export async function until(condition: () => boolean | Promise<boolean>, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(20);
  }
}

/** True when this process may make a network namespace with no network in it (root on Linux). */
export function canRunOffline(): boolean {
  return spawnSync('unshare', ['-n', 'true']).status === 0;
}

export interface RunResult {
  code: number | null;
  output: string;
  ms: number;
}

/**
 * Runs a command to completion, capturing its output. `offline` runs it in a fresh network
 * namespace: no network at all, so anything that tries to download fails instead of hanging.
 */
export function run(
  command: string,
  args: string[],
  options: { cwd: string; env?: NodeJS.ProcessEnv; offline?: boolean; timeoutMs?: number },
): Promise<RunResult> {
  const started = Date.now();
  const [file, argv] = options.offline ? ['unshare', ['-n', command, ...args]] : [command, args];
  const child = spawn(file, argv, { cwd: options.cwd, env: options.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  let output = '';
  child.stdout.on('data', (chunk) => (output += chunk));
  child.stderr.on('data', (chunk) => (output += chunk));
  return new Promise((done, reject) => {
    const timer = setTimeout(() => {
      killGroup(child);
      reject(new Error(`${command} ${args.join(' ')} took over ${options.timeoutMs} ms:\n${output}`));
    }, options.timeoutMs ?? 180_000);
    child.once('error', reject);
    child.once('close', (code) => {
      clearTimeout(timer);
      done({ code, output, ms: Date.now() - started });
    });
  });
}

/** A long-running child (a server), in its own process group so stopping it stops its children. */
export interface Service {
  child: ChildProcess;
  output(): string;
  stop(): Promise<void>;
}

export function startService(command: string, args: string[], options: { cwd: string; env: NodeJS.ProcessEnv }): Service {
  const child = spawn(command, args, { cwd: options.cwd, env: options.env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  let output = '';
  child.stdout!.on('data', (chunk) => (output += chunk));
  child.stderr!.on('data', (chunk) => (output += chunk));
  const exited = new Promise<void>((done) => child.once('exit', () => done()));
  return {
    child,
    output: () => output,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      killGroup(child, 'SIGTERM');
      const killed = await Promise.race([exited.then(() => true), sleep(5000).then(() => false)]);
      if (!killed) {
        killGroup(child, 'SIGKILL');
        await exited;
      }
    },
  };
}

function killGroup(child: ChildProcess, signal: NodeJS.Signals = 'SIGKILL'): void {
  try {
    if (child.pid) process.kill(-child.pid, signal);
  } catch {
    // Already gone.
  }
}

/** Waits until `url` answers at all (any status), or the service dies. */
export async function waitForHttp(url: string, service: Service, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (service.child.exitCode !== null) throw new Error(`the server exited with ${service.child.exitCode}:\n${service.output()}`);
    try {
      await fetch(url, { signal: AbortSignal.timeout(2000) });
      return;
    } catch {
      if (Date.now() > deadline) throw new Error(`${url} did not answer within ${timeoutMs} ms:\n${service.output()}`);
      await sleep(100);
    }
  }
}
