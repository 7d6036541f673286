import type { Client } from '@upstash/qstash';
import { invalidOption } from '../common/errors.js';
import { describe } from '../wire/names.js';
import { wholeNumber } from '../common/options.js';
import { DEFAULT_MAX_EVENT_BYTES, prepareEvent } from '../publish/publish.js';
import { resolveClient } from './client.js';
import { type Env, resolveEnv } from '../common/env.js';
import { formatMessage } from './message.js';
import { type Timing, type TimingOptions, resolveTiming } from './timing.js';
import { absoluteUrl } from './url.js';

export type { Delay } from './timing.js';

export interface ScheduleEventOptions extends TimingOptions {
  /** Default `sse`. */
  channel?: string;
  /** The public URL of your `createPublishHandler` endpoint; defaults to EDGE_SSE_PUBLISH_URL. */
  url?: string;
  /** A `Client` from `@upstash/qstash`, or a QStash token; defaults to QSTASH_TOKEN. */
  qstash?: Client | string;
  /** With `cron`: the schedule's id, so calling again updates that schedule instead of adding one. */
  scheduleId?: string;
  /** Refuse data larger than this many UTF-8 bytes, as the publish endpoint will (default 65536). */
  maxEventBytes?: number;
  /** Environment to read the defaults from (default `process.env` where it exists). */
  env?: Env;
}

/**
 * Has QStash deliver an event to the publish endpoint: now, after `delay`, at `notBefore`, or on
 * every `cron` tick. Resolves to QStash's message id, or with `cron` to the schedule id.
 * Everything is validated before QStash is called.
 */
export async function scheduleEvent(type: string, data: unknown, options: ScheduleEventOptions = {}): Promise<string> {
  const maxEventBytes = wholeNumber('maxEventBytes', options.maxEventBytes, DEFAULT_MAX_EVENT_BYTES, 1);
  const body = formatMessage(prepareEvent({ type, data, channel: options.channel }, maxEventBytes));
  const timing = resolveTiming(options);
  const scheduleId = checkScheduleId(options.scheduleId, timing);
  const env = resolveEnv(options.env);
  const url = absoluteUrl('url (or EDGE_SSE_PUBLISH_URL)', options.url ?? env.EDGE_SSE_PUBLISH_URL);
  const client = resolveClient(options.qstash, env);
  const headers = { 'Content-Type': 'application/json' };

  if (timing.cron !== undefined) {
    const created = await client.schedules.create({ destination: url, cron: timing.cron, body, headers, scheduleId });
    return created.scheduleId;
  }
  const message = await client.publish({ url, body, headers, delay: timing.delay, notBefore: timing.notBefore });
  return message.messageId;
}

function checkScheduleId(scheduleId: unknown, timing: Timing): string | undefined {
  if (scheduleId === undefined) return undefined;
  if (timing.cron === undefined) throw invalidOption('Option scheduleId names a cron schedule; pass it with cron');
  if (typeof scheduleId !== 'string' || !/^[A-Za-z0-9._~:-]{1,128}$/.test(scheduleId)) {
    throw invalidOption(`Option scheduleId must be 1–128 characters of A-Z a-z 0-9 . _ ~ : -; got ${describe(scheduleId)}`);
  }
  return scheduleId;
}
