/** Several commands in one round trip, each reply read by its own command. */
import { BackendError } from '../../../common/errors.js';
import type { CallOptions } from '../../contract.js';
import type { RedisTransport } from '../transport.js';
import type { Command, Reply } from './command.js';

/** The values of a list of commands, position by position. */
type Decoded<C extends readonly Command<unknown>[]> = { -readonly [K in keyof C]: C[K] extends Command<infer T> ? T : never };

/**
 * Sends every command of every group in one request, in order, and gives each group back as the
 * values of its commands. The first reply that fails to decode fails the whole call.
 */
export async function sendGroups<const G extends readonly Command<unknown>[]>(
  transport: RedisTransport,
  groups: readonly G[],
  call?: CallOptions,
): Promise<Decoded<G>[]> {
  const replies = await transport.pipeline(
    groups.flatMap((group) => group.map((command) => command.args)),
    call,
  );
  let next = 0;
  return groups.map((group) => group.map((command) => command.decode(replyAt(replies, next++))) as Decoded<G>);
}

/** Sends the commands in one request; their values, in order. */
export async function send<const C extends readonly Command<unknown>[]>(
  transport: RedisTransport,
  commands: C,
  call?: CallOptions,
): Promise<Decoded<C>> {
  const [values] = await sendGroups(transport, [commands], call);
  return values as Decoded<C>;
}

function replyAt(replies: readonly Reply[], index: number): Reply {
  const reply = replies[index];
  if (reply === undefined) throw new BackendError('BACKEND_ERROR', 'Redis sent fewer replies than commands');
  return reply;
}
