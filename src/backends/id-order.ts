import { compareIds } from '../wire/ids.js';
import type { FeedListener, StoredEvent } from './contract.js';

/** Consecutive events of one channel. */
interface ChannelRun {
  channel: string;
  events: StoredEvent[];
}

/**
 * One read over several channels, as runs of same-channel events in id order across channels:
 * the order a connection on several channels sees live events in, whichever feed read them.
 *
 * `fullUpTo` has the last id of each read that stopped at its limit. Such a channel may hold
 * more events right after it, which could come before other channels' later events; so nothing
 * after the earliest of these ids is given. The rest is read again next time, in order.
 */
function runsInIdOrder(byChannel: ReadonlyMap<string, StoredEvent[]>, fullUpTo: readonly string[]): ChannelRun[] {
  let cut: string | undefined;
  for (const id of fullUpTo) if (cut === undefined || compareIds(id, cut) < 0) cut = id;
  const channels = [...byChannel].filter(([, events]) => events.length > 0);
  if (channels.length === 0) return [];
  if (channels.length === 1) {
    const [channel, events] = channels[0]!;
    if (cut === undefined || compareIds((events.at(-1) as StoredEvent).id, cut) <= 0) return [{ channel, events }];
  }
  const tagged: { channel: string; event: StoredEvent }[] = [];
  for (const [channel, events] of channels) {
    for (const event of events) {
      if (cut !== undefined && compareIds(event.id, cut) > 0) break;
      tagged.push({ channel, event });
    }
  }
  // Stable: equal ids (one ms, several streams) keep the order of the channels in the read.
  tagged.sort((a, b) => compareIds(a.event.id, b.event.id));
  const runs: ChannelRun[] = [];
  for (const { channel, event } of tagged) {
    const last = runs.at(-1);
    if (last?.channel === channel) last.events.push(event);
    else runs.push({ channel, events: [event] });
  }
  return runs;
}

/**
 * A feed's step after one multi-channel read: keeps what is after each followed channel's position,
 * delivers it in id order across channels, and advances the positions. True when some channel may
 * have more right away (its read filled `batch`, and events after it were held back for order).
 * A channel unfollowed meanwhile (no position) is skipped, also while delivering. `take` picks
 * what of each run goes out now (all of it by default); once it picks nothing, delivery stops,
 * and what was left is after the positions, for the next read.
 */
export function deliverRead(
  byChannel: ReadonlyMap<string, StoredEvent[]>,
  asked: ReadonlyMap<string, string>,
  batch: number,
  positions: Map<string, string>,
  listener: Pick<FeedListener, 'onEvents'>,
  take: (events: StoredEvent[]) => StoredEvent[] = (events) => events,
): boolean {
  const fresh = new Map<string, StoredEvent[]>();
  const fullUpTo: string[] = [];
  for (const [channel, events] of byChannel) {
    const position = positions.get(channel);
    if (position === undefined) continue;
    if (events.length >= batch && asked.has(channel)) fullUpTo.push((events.at(-1) as StoredEvent).id);
    fresh.set(
      channel,
      events.filter((event) => compareIds(event.id, position) > 0),
    );
  }
  for (const { channel, events } of runsInIdOrder(fresh, fullUpTo)) {
    if (!positions.has(channel)) continue;
    const taken = take(events);
    if (taken.length === 0) break;
    positions.set(channel, (taken.at(-1) as StoredEvent).id);
    listener.onEvents(channel, taken);
  }
  return fullUpTo.length > 0;
}
