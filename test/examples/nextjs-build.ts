/**
 * `next build` of examples/nextjs, once per change: the test files that start the example
 * (nextjs.test.ts, nextjs-chat.test.ts) run in parallel workers, so the build takes a lock, and
 * a stamp of its inputs lets the next file reuse it. With no network when this process may make
 * a network namespace (root on Linux), and with Upstash variables that lead nowhere: only the
 * runtime uses them, so nothing may be baked in at build time.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { type Bridge, createBridge } from '../../src/bridge/index.ts';
import { REDIS_URL } from '../helpers/redis.ts';
import { ROOT, canRunOffline, ensureBuilt, freePort, run, sleep, startService, waitForHttp } from './helpers.ts';

export const EXAMPLE = join(ROOT, 'examples', 'nextjs');
const NEXT_BIN = join(ROOT, 'node_modules', 'next', 'dist', 'bin', 'next');
const STAMP = join(EXAMPLE, '.next', 'edge-sse-test-build.json');
const LOCK = join(ROOT, 'node_modules', '.cache', 'edge-sse-test-next-build.lock');

interface NextBuild {
  /** How long the build took (whichever test file ran it). */
  ms: number;
  offline: boolean;
}

/** The environment Next runs in: nothing of vitest's, no Vercel KV variables of this machine. */
function nextEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, NEXT_TELEMETRY_DISABLED: '1', npm_config_offline: 'true', ...extra };
  delete env.NODE_ENV;
  delete env.VITEST;
  delete env.KV_REST_API_URL;
  delete env.KV_REST_API_TOKEN;
  return env;
}

function inputsDigest(): string {
  const hash = createHash('sha256');
  const visit = (path: string) => {
    for (const entry of readdirSync(path).sort()) {
      // What the build writes itself (gitignored) is not an input.
      if (entry === '.next' || entry === 'node_modules' || entry === 'next-env.d.ts' || entry.endsWith('.tsbuildinfo')) continue;
      const full = join(path, entry);
      const stat = statSync(full);
      if (stat.isDirectory()) visit(full);
      else hash.update(`${full}:${stat.size}:${stat.mtimeMs}\n`);
    }
  };
  visit(EXAMPLE);
  visit(join(ROOT, 'dist'));
  return hash.digest('hex');
}

function stamped(digest: string): NextBuild | undefined {
  try {
    const stamp = JSON.parse(readFileSync(STAMP, 'utf8')) as NextBuild & { digest: string };
    return stamp.digest === digest ? { ms: stamp.ms, offline: stamp.offline } : undefined;
  } catch {
    return undefined;
  }
}

async function buildNextExample(): Promise<NextBuild> {
  await ensureBuilt();
  mkdirSync(join(LOCK, '..'), { recursive: true });
  const deadline = Date.now() + 300_000;
  for (;;) {
    try {
      mkdirSync(LOCK);
      break;
    } catch {
      try {
        if (Date.now() - statSync(LOCK).mtimeMs > 300_000) rmSync(LOCK, { recursive: true, force: true }); // a run that died
      } catch {
        // Released meanwhile.
      }
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${LOCK}; remove it if no test run is building`);
      await sleep(250);
    }
  }
  try {
    const digest = inputsDigest();
    const done = stamped(digest);
    if (done) return done;
    const offline = canRunOffline();
    const build = await run(process.execPath, [NEXT_BIN, 'build'], {
      cwd: EXAMPLE,
      env: nextEnv({ UPSTASH_REDIS_REST_URL: 'http://127.0.0.1:9', UPSTASH_REDIS_REST_TOKEN: 'only-at-build-time' }),
      offline,
      timeoutMs: 240_000,
    });
    if (build.code !== 0) throw new Error(`next build failed (exit ${build.code}, offline: ${offline}):\n${build.output}`);
    console.info(`next build: ${(build.ms / 1000).toFixed(1)} s${offline ? ', with no network' : ''}`);
    writeFileSync(STAMP, JSON.stringify({ digest: inputsDigest(), ms: build.ms, offline }));
    return { ms: build.ms, offline };
  } finally {
    rmSync(LOCK, { recursive: true, force: true });
  }
}

export interface RunningExample {
  /** `http://127.0.0.1:<port>` */
  base: string;
  build: NextBuild;
  /** The app's Upstash endpoint: its stats show the subscriptions the app holds. */
  bridge: Bridge;
  stop(): Promise<void>;
}

/**
 * The built example under `next start` on a free port, against an edge-sse bridge (the Upstash
 * REST protocol) in front of the real Redis; resolves once `readyPath` answers.
 */
export async function startNextExample(readyPath: string): Promise<RunningExample> {
  const build = await buildNextExample();
  const token = randomBytes(16).toString('hex');
  const bridge = await createBridge({ token, redis: REDIS_URL });
  const port = await freePort();
  const server = startService(process.execPath, [NEXT_BIN, 'start', '--port', String(port), '--hostname', '127.0.0.1'], {
    cwd: EXAMPLE,
    env: nextEnv({ UPSTASH_REDIS_REST_URL: bridge.url, UPSTASH_REDIS_REST_TOKEN: token }),
  });
  const base = `http://127.0.0.1:${port}`;
  const stop = async () => {
    await server.stop();
    await bridge.close();
  };
  try {
    await waitForHttp(`${base}${readyPath}`, server);
  } catch (error) {
    await stop();
    throw error;
  }
  return { base, build, bridge, stop };
}
