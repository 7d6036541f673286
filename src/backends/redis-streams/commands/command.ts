/**
 * A Redis command paired with the reader of its reply, as @upstash/redis pairs them: whoever
 * sends a command gets its value, and a reply of the wrong shape fails in one place — as a
 * BackendError that names the command, never as a TypeError further on.
 */
import { BackendError } from '../../../common/errors.js';
import type { RedisCommand, RedisReply } from '../transport.js';

/** A reply as a transport hands it over: Redis's value, or the error Redis answered with. */
export type Reply = RedisReply | Error;

export interface Command<T> {
  readonly args: RedisCommand;
  /** The reply's value; throws a BackendError for a refusal or a reply of the wrong shape. */
  decode(reply: Reply): T;
}

/** Redis's refusal of a command, as a BackendError. */
export function backendFailure(error: Error): BackendError {
  return error instanceof BackendError
    ? error
    : new BackendError('BACKEND_ERROR', `Redis refused a command: ${error.message}`, { cause: error });
}

/** The reply's value, or the refusal thrown. */
export function valueOf(reply: Reply): RedisReply {
  if (reply instanceof Error) throw backendFailure(reply);
  return reply;
}

/** A reply that is not what `command` returns. */
export function malformed(command: string, expected: string): BackendError {
  return new BackendError('BACKEND_ERROR', `Redis answered ${command} with something other than ${expected}`);
}
