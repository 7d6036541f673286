import { ValidationError } from '../common/errors.js';
import { DEFAULT_CHANNEL, assertChannel } from '../wire/names.js';

/** The channels a stream request asks for (`?channel=a&channel=b`), sorted and unique; `sse` when none. */
export function channelsFromUrl(url: URL, maxChannels: number): string[] {
  const requested = url.searchParams.getAll('channel');
  if (requested.length === 0) return [DEFAULT_CHANNEL];
  const unique = [...new Set(requested)];
  if (unique.length > maxChannels) {
    throw new ValidationError('INVALID_CHANNEL', `Too many channels: ${unique.length} requested, at most ${maxChannels} per connection`);
  }
  return unique.map(assertChannel).sort();
}
