/**
 * The events of a resumable stream's channel (see names.ts). Only the producer writes `text` and
 * `tick`; anyone may write an end, and the first one in the channel is how the stream ended.
 *
 * - `rs.start`   `{"timeoutMs":N}`: the stream exists; a follower that hears nothing from its
 *                producer for N ms marks it failed.
 * - `rs.text`    `<n>:<text>`: the next text, numbered from 1. A batch the producer sent again
 *                after a failed request may be stored twice: readers skip a number they had.
 * - `rs.tick`    the producer is alive (sent only while its source is silent).
 * - `rs.follow`  someone follows: the producer then sends its text at the shorter interval.
 * - `rs.done`    the stream ended well; `rs.error` with the reason: it failed.
 */
import type { NewEvent, StoredEvent } from '../backends/contract.js';

export const START = 'rs.start';
export const TEXT = 'rs.text';
export const TICK = 'rs.tick';
export const FOLLOW = 'rs.follow';
export const DONE = 'rs.done';
export const FAILED = 'rs.error';

export function startEvent(channel: string, timeoutMs: number): NewEvent {
  return { channel, type: START, data: JSON.stringify({ timeoutMs }), json: true };
}

export function textEvent(channel: string, number: number, text: string): NewEvent {
  return { channel, type: TEXT, data: `${number}:${text}`, json: false };
}

export function plainEvent(channel: string, type: typeof TICK | typeof FOLLOW | typeof DONE): NewEvent {
  return { channel, type, data: '', json: false };
}

function failedEvent(channel: string, reason: string): NewEvent {
  return { channel, type: FAILED, data: reason, json: false };
}

/** An end in the stream's channel and in its end channel, in one append (both or neither). */
export function endEvents(channels: { stream: string; end: string }, reason?: string): NewEvent[] {
  return [channels.stream, channels.end].map((channel) =>
    reason === undefined ? plainEvent(channel, DONE) : failedEvent(channel, reason),
  );
}

/** A text event's number and text; undefined for anything else or a malformed one. */
export function readText(event: StoredEvent): { number: number; text: string } | undefined {
  if (event.type !== TEXT) return undefined;
  const colon = event.data.indexOf(':');
  const number = Number(event.data.slice(0, colon));
  if (colon <= 0 || !Number.isSafeInteger(number)) return undefined;
  return { number, text: event.data.slice(colon + 1) };
}

/** The producer's timeout from a start event, if it names a sensible one. */
export function readTimeout(event: StoredEvent): number | undefined {
  if (event.type !== START) return undefined;
  try {
    const { timeoutMs } = JSON.parse(event.data) as { timeoutMs?: unknown };
    return typeof timeoutMs === 'number' && Number.isFinite(timeoutMs) && timeoutMs >= 100 ? timeoutMs : undefined;
  } catch {
    return undefined;
  }
}

/** The milliseconds part of a stream id: when the store wrote the event, by its clock. */
export function writtenAt(id: string): number {
  return Number(id.slice(0, id.indexOf('-')));
}
