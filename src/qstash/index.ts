/**
 * edge-sse/qstash — publish through Upstash QStash: delayed, scheduled (cron) and credential-free
 * publishing. QStash delivers signed messages to `createPublishHandler`, which publishes each once.
 * `@upstash/qstash` is an optional peer dependency, imported only by this subpath.
 */
export {
  createPublishHandler,
  DEFAULT_IDEMPOTENCY_SECONDS,
  type PublishHandler,
  type PublishHandlerOptions,
} from './publish-handler.js';
export { scheduleEvent, type Delay, type ScheduleEventOptions } from './schedule.js';
export type { Env } from '../common/env.js';
