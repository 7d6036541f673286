import { Command, type ChainableCommander, type Pipeline, type Redis } from 'ioredis';
import type { CommandArg } from './commands.js';
import type { CommandOutcome, RedisReply } from './encoding.js';
import { BridgeError, isRedisReplyError } from './errors.js';
import { transportError, whenReady, type RedisTarget } from './redis.js';

/**
 * Runs commands on the bridge's one shared connection. A transaction needs no connection of its
 * own: ioredis writes MULTI, the commands and EXEC in one go, so nothing else on the connection
 * comes between them (WATCH, which would need a connection per caller, is refused).
 */

/** A pipeline entry: a command to run, or the reason it was refused (it becomes that entry's error). */
export type PipelineEntry = { command: CommandArg[] } | { refusal: string };

export interface Executor {
  command(command: CommandArg[]): Promise<CommandOutcome>;
  pipeline(entries: PipelineEntry[]): Promise<CommandOutcome[]>;
  multiExec(commands: CommandArg[][]): Promise<CommandOutcome[]>;
  /** Transactions running now. */
  readonly runningTransactions: number;
}

export function createExecutor(shared: Redis, target: RedisTarget, maxTransactions: number): Executor {
  let runningTransactions = 0;
  return {
    get runningTransactions() {
      return runningTransactions;
    },

    async command(command) {
      await whenReady(shared, target);
      try {
        return { result: (await shared.sendCommand(rawCommand(command))) as RedisReply };
      } catch (error) {
        if (isRedisReplyError(error)) return { error: error.message };
        throw transportError(error, target);
      }
    },

    async pipeline(entries) {
      const runnable = entries.flatMap((entry) => ('command' in entry ? [entry.command] : []));
      let replies: CommandOutcome[] = [];
      if (runnable.length > 0) {
        await whenReady(shared, target);
        const batch = asPipeline(shared.pipeline());
        for (const command of runnable) batch.sendCommand(rawCommand(command));
        replies = toOutcomes(await runBatch(() => batch.exec(), target), target);
      }
      let next = 0;
      return entries.map((entry) => ('command' in entry ? replies[next++]! : { error: `ERR ${entry.refusal}` }));
    },

    async multiExec(commands) {
      if (runningTransactions >= maxTransactions) {
        throw new BridgeError(
          503,
          `${runningTransactions} transactions are running, the most this bridge runs at once (maxTransactions, --max-transactions); retry shortly`,
        );
      }
      runningTransactions += 1;
      try {
        await whenReady(shared, target);
        const transaction = asPipeline(shared.multi());
        for (const command of commands) transaction.sendCommand(rawCommand(command));
        return toOutcomes(await runBatch(() => transaction.exec(), target), target);
      } finally {
        runningTransactions -= 1;
      }
    },
  };
}

/**
 * ioredis reshapes some replies (HGETALL into an object, XREAD and WITHSCORES replies into
 * pairs); the REST protocol wants Redis' own RESP2 shapes, so this command keeps the reply
 * exactly as decoded, as Buffers.
 */
class RawCommand extends Command {
  override transformReply(result: Buffer | Buffer[]): Buffer | Buffer[] {
    return result;
  }
}

function rawCommand([name, ...args]: CommandArg[]): Command {
  return new RawCommand(String(name), args, { replyEncoding: null });
}

/** pipeline() and multi() return a Pipeline; only its type hides `sendCommand`. */
function asPipeline(chain: ChainableCommander): Pipeline {
  return chain as unknown as Pipeline;
}

type BatchResult = [error: Error | null, result: unknown][];

async function runBatch(exec: () => Promise<BatchResult | null>, target: RedisTarget): Promise<BatchResult> {
  let results: BatchResult | null;
  try {
    results = await exec();
  } catch (error) {
    if (isRedisReplyError(error)) throw new BridgeError(400, abortMessage(error));
    throw transportError(error, target);
  }
  if (!results) throw new BridgeError(400, 'EXECABORT Transaction aborted');
  return results;
}

function toOutcomes(results: BatchResult, target: RedisTarget): CommandOutcome[] {
  return results.map(([error, result]) => {
    if (!error) return { result: result as RedisReply };
    if (isRedisReplyError(error)) return { error: error.message };
    throw transportError(error, target);
  });
}

/** EXECABORT alone does not say what was wrong; the queued commands' errors do. */
function abortMessage(error: Error): string {
  const causes = (error as Error & { previousErrors?: Error[] }).previousErrors ?? [];
  const detail = causes.map((cause) => cause.message).join('; ');
  return detail ? `${error.message} ${detail}` : error.message;
}
