/**
 * Auto-pipelining for publishing: a call made while another is in flight waits, and every call
 * waiting when the answer comes goes in the next request, one run of the publish script each, in
 * call order. So there is one publishing request in flight per backend: calls that were not
 * awaited one by one are stored in the order they were made, in fewer requests. Each call is
 * still its own run: stored all or nothing, with its own idempotency key, failing alone.
 */
import type { AppId } from './app-id.js';
import type { Reply } from './commands/command.js';
import { evalScript } from './commands/eval.js';
import { PUBLISH_SCRIPT, type ScriptRun, settleRun } from './commands/publish.js';
import type { RedisTransport } from './transport.js';

/** Runs in one request at most; one call alone may be larger. */
const MAX_RUNS_PER_REQUEST = 100;
/**
 * Characters of arguments in one request of several calls: well under the 1 MiB a bridge reads
 * by default (and Upstash's request size limits), whatever JSON escaping adds.
 */
const MAX_REQUEST_CHARS = 256 * 1024;

interface Waiting {
  run: ScriptRun;
  resolve(ids: string[]): void;
  reject(error: unknown): void;
  /** Answered, or abandoned by its signal. */
  settled: boolean;
  stopListening(): void;
}

export class AppendQueue {
  private waiting: Waiting[] = [];
  private sending = false;

  constructor(
    private readonly transport: RedisTransport,
    private readonly appId: AppId,
  ) {}

  append(run: ScriptRun): Promise<string[]> {
    const { signal } = run.call;
    if (signal?.aborted) return Promise.reject(signal.reason);
    return new Promise((resolve, reject) => {
      const onAbort = () => settle(entry, () => reject(signal!.reason));
      const entry: Waiting = {
        run,
        resolve,
        reject,
        settled: false,
        stopListening: () => signal?.removeEventListener('abort', onAbort),
      };
      // Abandoned while waiting, it is never sent; in flight, its caller stops waiting for it.
      signal?.addEventListener('abort', onAbort, { once: true });
      this.waiting.push(entry);
      if (!this.sending) void this.drain();
    });
  }

  private async drain(): Promise<void> {
    this.sending = true;
    try {
      while (this.waiting.length > 0) {
        const next = this.take();
        if (next.length > 0) await this.send(next);
      }
    } finally {
      this.sending = false;
    }
  }

  /** The waiting calls that go in the next request: in order, bounded, at least one. */
  private take(): Waiting[] {
    const taken: Waiting[] = [];
    let size = 0;
    while (this.waiting.length > 0 && taken.length < MAX_RUNS_PER_REQUEST) {
      const entry = this.waiting[0] as Waiting;
      if (taken.length > 0 && size + entry.run.size > MAX_REQUEST_CHARS) break;
      this.waiting.shift();
      if (entry.settled) continue;
      try {
        entry.run.call.onRequest?.();
      } catch (error) {
        settle(entry, () => entry.reject(error));
        continue;
      }
      taken.push(entry);
      size += entry.run.size;
    }
    return taken;
  }

  private async send(entries: Waiting[]): Promise<void> {
    // A call alone keeps its signal for the request; several share it, and each abandons alone.
    const options = entries.length === 1 ? { signal: entries[0]!.run.call.signal } : {};
    try {
      const replies = await evalScript(
        this.transport,
        PUBLISH_SCRIPT,
        entries.map((entry) => entry.run.args),
        options,
      );
      entries.forEach((entry, index) => this.answer(entry, replies[index]));
    } catch (error) {
      for (const entry of entries) settle(entry, () => entry.reject(error));
    }
  }

  private answer(entry: Waiting, reply: Reply | undefined): void {
    settle(entry, () => {
      try {
        entry.resolve(settleRun(entry.run, reply, this.appId));
      } catch (error) {
        entry.reject(error);
      }
    });
  }
}

function settle(entry: Waiting, action: () => void): void {
  if (entry.settled) return;
  entry.settled = true;
  entry.stopListening();
  action();
}
