import { Client } from '@upstash/qstash';
import { invalidOption } from '../common/errors.js';
import type { Env } from '../common/env.js';

/** The QStash client to send with: the one given, or one made from a token (default QSTASH_TOKEN). */
export function resolveClient(qstash: Client | string | undefined, env: Env): Client {
  if (isClient(qstash)) return qstash;
  const token = qstash ?? env.QSTASH_TOKEN;
  if (typeof token !== 'string' || token.length === 0) {
    throw invalidOption('scheduleEvent needs QStash: pass { qstash: new Client({ token }) } or { qstash: "<token>" }, or set QSTASH_TOKEN');
  }
  return new Client({ token, baseUrl: env.QSTASH_URL });
}

// Duck-typed: an app may load a second copy of @upstash/qstash (ESM and CJS), where instanceof fails.
function isClient(value: unknown): value is Client {
  const candidate = value as Partial<Client> | null;
  return typeof candidate === 'object' && candidate !== null && typeof candidate.publish === 'function' && 'schedules' in candidate;
}
