type Step = (produce: () => unknown, consume: (value: unknown) => void, fail: (error: unknown) => void) => void;

/**
 * Runs `produce` (decoding, validation) then `consume` (the handler) for each event in arrival
 * order. Synchronous while every step is; once a step returns a promise, later events wait for it.
 */
export function orderedDelivery(): Step {
  let tail: Promise<void> = Promise.resolve();
  let waiting = 0;
  const track = (step: Promise<void>) => {
    waiting++;
    tail = step.catch(reportLater).finally(() => waiting--);
  };
  return (produce, consume, fail) => {
    const run = (): void | Promise<void> => {
      let value: unknown;
      try {
        value = produce();
      } catch (error) {
        return fail(error);
      }
      if (value instanceof Promise) return value.then(consume, fail);
      consume(value);
    };
    if (waiting > 0) return track(tail.then(run));
    const pending = run();
    if (pending) track(pending);
  };
}

/** A handler's exception must not stop later events: it surfaces as an uncaught error instead. */
function reportLater(error: unknown): void {
  setTimeout(() => {
    throw error;
  });
}
