/**
 * The only places tests wait on the clock: polls that end as soon as what they wait for is true.
 * A fixed sleep elsewhere is either pacing that is part of a scenario, or says why it cannot be
 * a poll or a barrier.
 */

// The real clock, taken before any test fakes it: a poll keeps working while the code under test
// runs on vi.useFakeTimers(), so a test can wait for real I/O and still advance the fake time.
const realSetTimeout = globalThis.setTimeout;
const realNow = Date.now;

export const sleep = (ms: number) => new Promise((resolve) => realSetTimeout(resolve, ms));

/** Polls `condition` every 5 ms until it holds; fails after `timeoutMs`, saying it waited for `what`. */
export async function waitUntil(condition: () => boolean | Promise<boolean>, timeoutMs = 10_000, what = 'the condition'): Promise<void> {
  const deadline = realNow() + timeoutMs;
  while (!(await condition())) {
    if (realNow() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(5);
  }
}

/** Calls `attempt` every 100 ms until it resolves (a store coming back); its last error after `timeoutMs`. */
export async function untilResolved<T>(attempt: () => Promise<T>, timeoutMs = 10_000): Promise<T> {
  const deadline = realNow() + timeoutMs;
  for (;;) {
    try {
      return await attempt();
    } catch (error) {
      if (realNow() > deadline) throw error;
      await sleep(100);
    }
  }
}
