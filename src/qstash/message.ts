/**
 * The body of a QStash message that publishes an event: `{ "type", "data", "channel"? }` as JSON.
 * `data` that is a JSON string is published verbatim; anything else as JSON, as with `sendEvent`.
 */
import type { NewEvent } from '../backends/contract.js';
import { ValidationError } from '../common/errors.js';
import type { EventInput } from '../publish/publish.js';

const FIELDS = new Set(['type', 'data', 'channel']);
const SHAPE = 'send a JSON object { "type": string, "data": any, "channel"?: string }';

/** Reads the shape only; the event's rules (names, size) are `prepareEvent`'s. */
export function parseMessage(body: string): EventInput {
  const value = parseJson(body);
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new ValidationError('INVALID_DATA', `The body is ${Array.isArray(value) ? 'an array' : typeof value}; ${SHAPE}`);
  }
  // A misspelt "channel" would otherwise publish to the default channel without a word.
  const unknown = Object.keys(value).filter((key) => !FIELDS.has(key));
  if (unknown.length > 0) {
    throw new ValidationError(
      'INVALID_DATA',
      `The body has unknown field(s) ${unknown.map((key) => JSON.stringify(key)).join(', ')}; ${SHAPE}`,
    );
  }
  if (!('data' in value)) throw new ValidationError('INVALID_DATA', `The body has no "data"; ${SHAPE}`);
  return value as EventInput;
}

/** The body for a prepared event: its data goes in exactly as validated, serialised once. */
export function formatMessage(event: NewEvent): string {
  const data = event.json ? event.data : JSON.stringify(event.data);
  return `{"type":${JSON.stringify(event.type)},"data":${data},"channel":${JSON.stringify(event.channel)}}`;
}

function parseJson(body: string): unknown {
  try {
    return JSON.parse(body);
  } catch (error) {
    throw new ValidationError('INVALID_DATA', `The body is not JSON (${(error as Error).message}); ${SHAPE}`, { cause: error });
  }
}
