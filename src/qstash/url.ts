import { invalidOption } from '../errors.js';
import { describe } from '../names.js';

/**
 * An absolute http(s) URL in its normal form. QStash signs the destination exactly as it was
 * published and `Request.url` is normalised (`https://a.example` becomes `https://a.example/`),
 * so both sides go through `URL` to compare equal.
 */
export function absoluteUrl(option: string, value: unknown): string {
  const url = typeof value === 'string' ? parse(value) : undefined;
  if (!url || (url.protocol !== 'https:' && url.protocol !== 'http:')) {
    throw invalidOption(
      `Option ${option} must be the absolute http(s) URL of the publish endpoint, such as ` +
        `https://example.com/api/sse/publish; got ${describe(value)}`,
    );
  }
  return url.href;
}

function parse(text: string): URL | undefined {
  try {
    return new URL(text);
  } catch {
    return undefined;
  }
}
