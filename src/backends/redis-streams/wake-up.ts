/**
 * The wake-up the publish script (commands/publish.ts) sends on each channel it appended to:
 * signed with the app id (app-id.ts), it carries the new events and the id they follow. A reader
 * standing at that id delivers them from the message — no read request — once the signature checks
 * out; any other message only makes readers read the stream.
 */
import type { StoredEvent } from '../contract.js';
import { sha1Hex } from './sha1.js';

export interface WakeUp {
  /** The id the new events follow. */
  prev: string;
  /** The new events, when the message carries them. */
  events?: StoredEvent[];
}

const MAC = /^[0-9a-f]{40}$/;

/**
 * Reads a wake-up published by the script: `<mac> <prev> <ids> <events as JSON, or ''>`, with
 * mac = sha1hex(id .. sha1hex(id .. rest)) (nested, so no length extension). Undefined for
 * anything that was not signed with `appId`: such a message is only a reason to read.
 */
export async function openWakeUp(payload: string, appId: string): Promise<WakeUp | undefined> {
  const space = payload.indexOf(' ');
  const mac = payload.slice(0, space);
  if (!MAC.test(mac)) return undefined;
  const rest = payload.slice(space + 1);
  if ((await sha1Hex(appId + (await sha1Hex(appId + rest)))) !== mac) return undefined;
  return parseWakeUp(rest);
}

function parseWakeUp(rest: string): WakeUp | undefined {
  const first = rest.indexOf(' ');
  const second = rest.indexOf(' ', first + 1);
  if (first <= 0 || second <= first) return undefined;
  const prev = rest.slice(0, first);
  const ids = rest.slice(first + 1, second).split(',');
  const embedded = rest.slice(second + 1);
  if (embedded === '') return { prev };
  try {
    const fields = JSON.parse(embedded) as [string, string, number][];
    if (!Array.isArray(fields) || fields.length !== ids.length) return { prev };
    return { prev, events: fields.map(([type, data, json], index) => ({ id: ids[index] as string, type, data, json: json === 1 })) };
  } catch {
    return { prev };
  }
}
