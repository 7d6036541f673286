import { invalidOption } from '../common/errors.js';
import { describe } from '../wire/names.js';

/** Seconds, or a QStash duration such as `30s`, `10m`, `2h`, `1d`. */
export type Delay = number | `${bigint}${'s' | 'm' | 'h' | 'd'}`;

export interface TimingOptions {
  delay?: Delay;
  /** When to deliver: a Date, or Unix time in seconds. */
  notBefore?: Date | number;
  /** A five-field cron expression in UTC, optionally prefixed `CRON_TZ=<IANA zone> `. */
  cron?: string;
}

/** Validated timing; nothing set means "deliver now". */
export interface Timing {
  delay?: Delay;
  /** Unix seconds. */
  notBefore?: number;
  cron?: string;
}

const DURATION = /^\d+[smhd]$/;
const CRON = /^(CRON_TZ=[A-Za-z0-9_+\-/]+ +)?[0-9A-Za-z*?,/#-]+( +[0-9A-Za-z*?,/#-]+){4}$/;
// Unix seconds reach this in the year 2286; a larger number is milliseconds by mistake.
const MAX_UNIX_SECONDS = 9_999_999_999;

export function resolveTiming(options: TimingOptions): Timing {
  const given = (['delay', 'notBefore', 'cron'] as const).filter((name) => options[name] !== undefined);
  if (given.length > 1) {
    throw invalidOption(`Pass at most one of delay, notBefore and cron; got ${given.join(' and ')}`);
  }
  if (options.delay !== undefined) return { delay: checkDelay(options.delay) };
  if (options.notBefore !== undefined) return { notBefore: unixSeconds(options.notBefore) };
  if (options.cron !== undefined) return { cron: checkCron(options.cron) };
  return {};
}

function checkDelay(delay: unknown): Delay {
  const seconds = typeof delay === 'number' && Number.isSafeInteger(delay) && delay >= 0;
  if (seconds || (typeof delay === 'string' && DURATION.test(delay))) return delay as Delay;
  throw invalidOption(`Option delay must be whole seconds (0 or more) or a duration such as "30s", "10m", "2h", "1d"; got ${show(delay)}`);
}

function unixSeconds(notBefore: unknown): number {
  if (notBefore instanceof Date && !Number.isNaN(notBefore.getTime())) return Math.ceil(notBefore.getTime() / 1000);
  if (typeof notBefore === 'number' && Number.isSafeInteger(notBefore) && notBefore >= 0) {
    if (notBefore > MAX_UNIX_SECONDS) {
      throw invalidOption(`Option notBefore is Unix time in seconds; ${notBefore} looks like milliseconds (or pass a Date)`);
    }
    return notBefore;
  }
  throw invalidOption(`Option notBefore must be a Date or Unix time in whole seconds; got ${show(notBefore)}`);
}

function checkCron(cron: unknown): string {
  if (typeof cron === 'string' && CRON.test(cron.trim())) return cron.trim();
  throw invalidOption(
    `Option cron must be a five-field cron expression such as "0 9 * * 1" (UTC), optionally ` +
      `prefixed "CRON_TZ=Europe/Paris "; got ${show(cron)}`,
  );
}

function show(value: unknown): string {
  return typeof value === 'number' ? String(value) : describe(value);
}
