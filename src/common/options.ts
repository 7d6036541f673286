import { invalidOption } from './errors.js';

/** Throws an INVALID_OPTION error unless `value` is a whole number in [min, max]. */
export function wholeNumber(name: string, value: number | undefined, fallback: number, min: number, max = Number.MAX_SAFE_INTEGER): number {
  if (value === undefined) return fallback;
  const whole = Number.isInteger(value) || (value === Infinity && max === Infinity);
  if (typeof value !== 'number' || !whole || value < min || value > max) {
    throw invalidOption(`Option ${name} must be a whole number from ${min} to ${max}, got ${String(value)}`);
  }
  return value;
}
