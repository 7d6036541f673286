/**
 * Deno and Bun as the devDependencies install them (`@deno/linux-x64-glibc`, `@oven/bun-linux-x64`:
 * the binaries inside npm packages), run so that nothing is downloaded: Deno may fetch no remote
 * module and no npm package (`--no-remote`, `--cached-only` with an empty cache of its own, the
 * existing node_modules only), Bun may not auto-install.
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT, sleep, startService } from '../examples/helpers.ts';

export type RuntimeName = 'deno' | 'bun';

interface Runtime {
  /** Where the devDependency puts the binary. */
  binary: string;
  package: string;
  args(script: string): string[];
  /** Its environment, and a directory to remove once it exits. */
  env(): { env: NodeJS.ProcessEnv; scratch?: string };
}

const RUNTIMES: Record<RuntimeName, Runtime> = {
  deno: {
    binary: join(ROOT, 'node_modules', '@deno', 'linux-x64-glibc', 'deno'),
    package: '@deno/linux-x64-glibc',
    args: (script) => [
      'run',
      '--no-remote',
      '--cached-only',
      '--node-modules-dir=manual',
      '--no-config',
      '--no-lock',
      '--allow-net=127.0.0.1',
      '--allow-env',
      script,
    ],
    // A cache of its own, empty: with --cached-only, anything Deno would download fails instead.
    env: () => {
      const cache = mkdtempSync(join(tmpdir(), 'edge-sse-deno-'));
      return { env: { DENO_DIR: cache, DENO_NO_UPDATE_CHECK: '1', DENO_NO_PROMPT: '1' }, scratch: cache };
    },
  },
  bun: {
    binary: join(ROOT, 'node_modules', '@oven', 'bun-linux-x64', 'bin', 'bun'),
    package: '@oven/bun-linux-x64',
    args: (script) => ['--no-install', script],
    env: () => ({ env: { DO_NOT_TRACK: '1' } }),
  },
};

function runtimeBinary(name: RuntimeName): string {
  const { binary, package: packageName } = RUNTIMES[name];
  if (!existsSync(binary)) {
    throw new Error(`${binary} is missing: \`npm ci\` installs it (devDependency ${packageName}, Linux x64 with glibc only)`);
  }
  return binary;
}

/** `<runtime> <script>` with the offline flags and `env` on top of this process's environment. */
export function runtimeCommand(name: RuntimeName, script: string, env: Record<string, string> = {}) {
  const runtime = RUNTIMES[name];
  const own = runtime.env();
  return {
    command: runtimeBinary(name),
    args: runtime.args(script),
    env: { ...process.env, ...own.env, ...env },
    cleanUp: () => own.scratch && rmSync(own.scratch, { recursive: true, force: true }),
  };
}

export interface RuntimeServer {
  base: string;
  output(): string;
  stop(): Promise<void>;
}

/** Starts `script` under the runtime and waits for its `listening <port>` line. */
export async function startRuntimeServer(name: RuntimeName, script: string, env: Record<string, string>): Promise<RuntimeServer> {
  const { command, args, env: fullEnv, cleanUp } = runtimeCommand(name, script, env);
  const service = startService(command, args, { cwd: ROOT, env: fullEnv });
  const stop = () => service.stop().finally(cleanUp);
  const deadline = Date.now() + 20_000;
  for (;;) {
    const port = /^listening (\d+)$/m.exec(service.output())?.[1];
    if (port) return { base: `http://127.0.0.1:${port}`, output: service.output, stop };
    if (service.child.exitCode !== null || Date.now() > deadline) {
      await stop();
      throw new Error(`${name} ${args.join(' ')} did not start:\n${service.output()}`);
    }
    await sleep(20);
  }
}
