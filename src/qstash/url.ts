import { invalidOption } from '../common/errors.js';
import { describe } from '../wire/names.js';

/**
 * An absolute http(s) URL in its normal form. QStash signs the destination exactly as it was
 * published, and `Request.url` is normalised, so both sides go through `normalUrl` to compare equal.
 */
export function absoluteUrl(option: string, value: unknown): string {
  const url = typeof value === 'string' ? normalUrl(value) : undefined;
  if (!url || !/^https?:/.test(url)) {
    throw invalidOption(
      `Option ${option} must be the absolute http(s) URL of the publish endpoint, such as ` +
        `https://example.com/api/sse/publish; got ${describe(value)}`,
    );
  }
  return url;
}

/**
 * The form URLs are compared in: through `URL` (scheme and host in lower case, default port
 * dropped, a bare origin given its `/`), without an empty query (`…/publish?`) or a fragment,
 * which no request carries. Undefined for text that is not a URL.
 */
export function normalUrl(text: string): string | undefined {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return undefined;
  }
  if (url.search === '') url.search = '';
  url.hash = '';
  return url.href;
}
