import { createHash, timingSafeEqual } from 'node:crypto';

/**
 * Builds a token check that takes the same time whatever the presented token is: both sides
 * are hashed first so `timingSafeEqual` always compares equal-length digests and the token's
 * length does not leak either. The token comes from `Authorization: Bearer <token>` or, as
 * Upstash allows, from the `_token` query parameter (for clients that cannot set headers, such
 * as a browser's EventSource) — the header wins when both are present.
 */
export function createTokenCheck(token: string): (authorization: string | undefined, queryToken: string | null) => boolean {
  if (!token) throw new Error('The bridge needs a non-empty token');
  const expected = digest(token);
  return (authorization, queryToken) => {
    const presented = authorization === undefined ? (queryToken ?? '') : (/^Bearer (.+)$/i.exec(authorization)?.[1] ?? '');
    return timingSafeEqual(digest(presented), expected);
  };
}

function digest(value: string): Buffer {
  return createHash('sha256').update(value, 'utf8').digest();
}
