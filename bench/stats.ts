/** Small statistics for benchmark samples. */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

/** Nearest-rank percentile (p in 0–100) of unsorted samples. */
export function percentile(samples: readonly number[], p: number): number {
  if (samples.length === 0) return NaN;
  const sorted = [...samples].sort((a, b) => a - b);
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1] as number;
}

export function median(samples: readonly number[]): number {
  return percentile(samples, 50);
}

export function max(samples: readonly number[]): number {
  return samples.reduce((a, b) => Math.max(a, b), -Infinity);
}

/** `gc()` from `--expose-gc`, else obtained by setting the flag at run time (works on node ≥ 18). */
function findGc(): (() => void) | undefined {
  const exposed = (globalThis as { gc?: () => void }).gc;
  if (exposed) return exposed;
  try {
    setFlagsFromString('--expose-gc');
    return runInNewContext('gc') as () => void;
  } catch {
    return undefined;
  }
}

const gc = findGc();

export const gcSource = (globalThis as { gc?: unknown }).gc ? '--expose-gc' : gc ? 'v8.setFlagsFromString' : 'none';

/** Runs a full garbage collection; false when no way to do so was found. */
function collectGarbage(): boolean {
  if (!gc) return false;
  gc();
  gc();
  return true;
}

/** Heap in use after a full GC, in bytes; NaN without `--expose-gc`. */
export async function settledHeap(): Promise<number> {
  await new Promise((resolve) => setTimeout(resolve, 20));
  return collectGarbage() ? process.memoryUsage().heapUsed : NaN;
}

/** TCP sockets and servers this process holds open (libuv handles). */
function openSockets(): number {
  return process.getActiveResourcesInfo().filter((resource) => resource === 'TCPSocketWrap' || resource === 'TCPServerWrap').length;
}

/**
 * The heap once what came before has gone: no TCP socket or server left open (closing ones take a
 * few turns of the event loop), then full GCs until the heap stops shrinking. Measured right after
 * a previous contender closed, its sockets would still count, against the next one's baseline.
 */
export async function heapAfterSocketsClosed(timeoutMs = 10_000): Promise<number> {
  const deadline = performance.now() + timeoutMs;
  while (openSockets() > 0) {
    if (performance.now() > deadline) throw new Error(`${openSockets()} sockets still open after ${timeoutMs} ms`);
    await sleep(20);
  }
  let heap = await settledHeap();
  for (let attempt = 0; attempt < 10; attempt++) {
    const next = await settledHeap();
    if (!(next < heap - 16 * 1024)) return next;
    heap = next;
  }
  return heap;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
