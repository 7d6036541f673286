/**
 * How the Worker and the objects address each other: one object per channel set (a single
 * channel, or several sorted and joined), and the header by which the Worker tells an object when
 * the client's access ends.
 */

/** Durable Object names: the sorted channels joined by commas (a comma is never part of a channel name). */
export function objectName(channels: readonly string[]): string {
  return channels.join(',');
}

/** Set by the Worker only (it drops any such header a client sent): `authorize`'s `expiresAt`, epoch ms. */
export const EXPIRES_AT_HEADER = 'X-Edge-SSE-Expires-At';

/** The parts of a Durable Object namespace binding (`env.MY_BINDING`) edge-sse uses. */
export interface StreamObjectNamespace {
  idFromName(name: string): unknown;
  get(id: never): { fetch(request: Request): Promise<Response> };
}

export function stubFor(namespace: StreamObjectNamespace, channels: readonly string[]) {
  return namespace.get(namespace.idFromName(objectName(channels)) as never);
}

/** Not a real host: a Durable Object gets a request's URL as it was made. */
export function streamUrl(base: string, channels: readonly string[]): string {
  const url = new URL(base);
  for (const channel of channels) url.searchParams.append('channel', channel);
  return url.toString();
}
