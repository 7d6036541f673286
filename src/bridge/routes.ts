import type { PathKind } from './stats.js';
import type { SubscriptionKind } from './subscribe.js';

export type Route =
  | { kind: 'command' | 'pipeline' | 'multiExec' }
  | { kind: 'subscribe'; mode: SubscriptionKind; name: string }
  | { kind: 'other' };

/**
 * Maps a request path to an endpoint. @upstash/redis joins `subscribe` and the channel with
 * "/" without escaping, so everything after the first segment is the channel: a channel
 * named "news/eu" arrives as /subscribe/news/eu.
 */
export function routeOf(url: string): Route & { kind: PathKind } {
  const path = url.split('?', 1)[0] ?? '/';
  if (path === '/' || path === '') return { kind: 'command' };
  if (path === '/pipeline') return { kind: 'pipeline' };
  if (path === '/multi-exec') return { kind: 'multiExec' };
  const match = /^\/(subscribe|psubscribe)\/(.+)$/.exec(path);
  if (match) return { kind: 'subscribe', mode: match[1] as SubscriptionKind, name: decodeSegment(match[2]!) };
  return { kind: 'other' };
}

function decodeSegment(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment;
  }
}
