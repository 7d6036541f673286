/** The server's default (DEFAULT_CHANNEL in src/wire/names.ts), written out: an import adds bytes to the client's bundle. */
const DEFAULT_CHANNEL = 'sse';

function splitQuery(url: string): [string, URLSearchParams] {
  const at = url.indexOf('?');
  return at < 0 ? [url, new URLSearchParams()] : [url.slice(0, at), new URLSearchParams(url.slice(at + 1))];
}

/** The stream URL with `channel` parameters and, when recreating a connection, `lastEventId`. */
export function streamUrl(url: string, channels: readonly string[] | undefined, lastEventId: string): string {
  const [path, params] = splitQuery(url);
  if (channels) {
    params.delete('channel');
    for (const channel of channels) params.append('channel', channel);
  }
  params.delete('lastEventId');
  if (lastEventId) params.set('lastEventId', lastEventId);
  const query = params.toString();
  return query ? `${path}?${query}` : path;
}

/** The connection's channels as the server orders them in cursors: unique and sorted. */
export function cursorChannels(url: string, channels: readonly string[] | undefined): string[] {
  const requested = channels ?? splitQuery(url)[1].getAll('channel');
  return requested.length ? [...new Set(requested)].sort() : [DEFAULT_CHANNEL];
}
