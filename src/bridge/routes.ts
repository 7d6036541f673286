import { BridgeError } from './errors.js';
import type { PathKind } from './stats.js';
import type { SubscriptionKind } from './subscriber.js';

export type Route =
  | { kind: 'command' | 'pipeline' | 'multiExec' }
  | { kind: 'path'; segments: string[] }
  | { kind: 'subscribe'; mode: SubscriptionKind; name: string };

/** Methods Upstash serves; anything else is a 405. */
export const ALLOWED_METHODS = ['GET', 'HEAD', 'POST', 'PUT'] as const;

/**
 * Maps a request path to an endpoint. `/`, `/pipeline` and `/multi-exec` take JSON commands;
 * `/subscribe/…` and `/psubscribe/…` stream; any other path is a path-style command
 * (`/set/key/value`, one percent-encoded argument per segment). @upstash/redis joins
 * `subscribe` and the channel with "/" without escaping, so everything after the first segment
 * is the channel: a channel named "news/eu" arrives as /subscribe/news/eu.
 */
export function routeOf(path: string): Route {
  if (path === '/' || path === '') return { kind: 'command' };
  if (path === '/pipeline') return { kind: 'pipeline' };
  if (path === '/multi-exec') return { kind: 'multiExec' };
  const match = /^\/(subscribe|psubscribe)\/(.+)$/.exec(path);
  if (match) return { kind: 'subscribe', mode: match[1] as SubscriptionKind, name: decodeLeniently(match[2]!) };
  return { kind: 'path', segments: path.slice(1).split('/') };
}

/** The stats bucket of a route: path-style commands count as commands. */
export function pathKindOf(route: Route): PathKind {
  return route.kind === 'path' ? 'command' : route.kind;
}

/** The arguments of a path-style command; throws a 400 naming a malformed segment. */
export function decodeSegments(segments: readonly string[]): string[] {
  return segments.map((segment, index) => {
    try {
      return decodeURIComponent(segment);
    } catch {
      throw new BridgeError(400, `Path segment ${index + 1} is not valid percent-encoding: "${segment.slice(0, 100)}"`);
    }
  });
}

/** A channel as @upstash/redis sends it (raw, or percent-encoded by other clients). */
function decodeLeniently(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment;
  }
}
