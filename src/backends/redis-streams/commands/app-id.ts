/** Ensuring and reading the app id (app-id.ts): `SET NX`, then `GET`, read together. */
import { BackendError } from '../../../common/errors.js';
import type { KeySpace } from '../keys.js';
import type { RedisCommand } from '../transport.js';
import type { Reply } from './command.js';

/** Stores `candidate` unless an id is stored, then reads the id; pass both replies to `decodeAppId`. */
export function appIdCommands(keys: KeySpace, candidate: string): RedisCommand[] {
  const key = keys.appId();
  return [
    ['SET', key, candidate, 'NX'],
    ['GET', key],
  ];
}

/** The id the GET found; none (the SET was refused, or the GET) is a failure that says why. */
export function decodeAppId(keys: KeySpace, set: Reply | undefined, get: Reply | undefined): string {
  if (typeof get === 'string' && get.length > 0) return get;
  const reason = [set, get].find((reply): reply is Error => reply instanceof Error)?.message ?? 'it is not stored';
  throw new BackendError('BACKEND_ERROR', `Redis could not keep the app id at ${keys.appId()}: ${reason}`);
}
