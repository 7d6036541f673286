/**
 * Time bounds for calls to a store: a hung Redis or endpoint must fail a call, not hold it for
 * as long as the stall lasts.
 */

/** Settles as `work` does, or rejects with `timedOut()` after `ms`, whichever comes first. */
export function within<T>(work: Promise<T>, ms: number, timedOut: () => Error): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const bound = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(timedOut()), ms);
  });
  return Promise.race([work, bound]).finally(() => clearTimeout(timer));
}

/**
 * A signal for one fetch that aborts after `ms` (with `timedOut()` as the reason, which fetch
 * rejects with and errors the body with) or when `outer`, the caller's signal, does; so reading
 * the body is bounded too. A long-lived response (a subscription) lifts the bound once its first
 * bytes arrived. A timer of our own rather than `AbortSignal.timeout`: it is cleared as soon as
 * the call is over, instead of every call leaving one pending for `ms`.
 */
export class Deadline {
  readonly signal: AbortSignal;
  /** Whether the bound, not the caller, ended the call. */
  timedOut = false;
  private controller = new AbortController();
  private timer: ReturnType<typeof setTimeout> | undefined;
  private unlink: (() => void) | undefined;

  constructor(
    readonly ms: number,
    outer: AbortSignal | undefined,
    timedOut: () => Error,
  ) {
    this.signal = this.controller.signal;
    if (outer?.aborted) this.controller.abort(outer.reason);
    else if (outer) {
      const onAbort = () => this.controller.abort(outer.reason);
      outer.addEventListener('abort', onAbort, { once: true });
      this.unlink = () => outer.removeEventListener('abort', onAbort);
    }
    this.timer = setTimeout(() => {
      this.timedOut = true;
      this.controller.abort(timedOut());
    }, ms);
  }

  /** The response is arriving and lives on: no bound from now on, but the caller can still abort it. */
  lift(): void {
    clearTimeout(this.timer);
  }

  /** The call is over. */
  end(): void {
    clearTimeout(this.timer);
    this.unlink?.();
  }
}

/** What a timed-out pipeline was, for its error: its commands, and whether it published. */
export function describeCommands(commands: readonly (string | number)[][]): { names: string; publishes: boolean } {
  const names = [...new Set(commands.map((command) => String(command[0]).toUpperCase()))];
  return { names: names.join(', '), publishes: names.some((name) => name.startsWith('EVAL')) };
}
