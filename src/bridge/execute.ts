import { Command, type ChainableCommander, type Pipeline, type Redis } from 'ioredis';
import { encodeReply, type JsonReply } from './encoding.js';
import { BridgeError, isRedisReplyError } from './errors.js';
import { transportError, whenReady, type ConnectionPool, type RedisTarget } from './redis.js';

/** What one command produced, in the shape of the Upstash REST protocol. */
export type CommandOutcome = { result: JsonReply } | { error: string };

export interface Executor {
  command(command: string[], base64: boolean): Promise<CommandOutcome>;
  pipeline(commands: string[][], base64: boolean): Promise<CommandOutcome[]>;
  multiExec(commands: string[][], base64: boolean): Promise<CommandOutcome[]>;
}

export function createExecutor(shared: Redis, transactions: ConnectionPool, target: RedisTarget): Executor {
  return {
    async command(command, base64) {
      await whenReady(shared, target);
      try {
        return { result: encodeReply(await shared.sendCommand(rawCommand(command)), base64) };
      } catch (error) {
        if (isRedisReplyError(error)) return { error: error.message };
        throw transportError(error, target);
      }
    },

    async pipeline(commands, base64) {
      await whenReady(shared, target);
      const batch = asPipeline(shared.pipeline());
      for (const command of commands) batch.sendCommand(rawCommand(command));
      return toOutcomes(await runBatch(() => batch.exec(), target), base64, target);
    },

    async multiExec(commands, base64) {
      const client = await transactions.acquire();
      let reusable = false;
      try {
        const transaction = asPipeline(client.multi());
        for (const command of commands) transaction.sendCommand(rawCommand(command));
        const outcomes = toOutcomes(await runBatch(() => transaction.exec(), target), base64, target);
        reusable = true;
        return outcomes;
      } catch (error) {
        // After an EXECABORT the connection is clean; after a timeout or a broken link it may not be.
        reusable = error instanceof BridgeError && error.status === 400;
        throw error;
      } finally {
        transactions.release(client, reusable);
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

function rawCommand([name, ...args]: string[]): Command {
  return new RawCommand(name!, args, { replyEncoding: null });
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

function toOutcomes(results: BatchResult, base64: boolean, target: RedisTarget): CommandOutcome[] {
  return results.map(([error, result]) => {
    if (!error) return { result: encodeReply(result, base64) };
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
