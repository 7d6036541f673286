import { createHash, timingSafeEqual } from 'node:crypto';

/**
 * Builds a bearer-token check that takes the same time whatever the presented token is:
 * both sides are hashed first so `timingSafeEqual` always compares equal-length digests and
 * the token's length does not leak either.
 */
export function createTokenCheck(token: string): (authorization: string | undefined) => boolean {
  if (!token) throw new Error('The bridge needs a non-empty token');
  const expected = digest(token);
  return (authorization) => {
    const presented = /^Bearer (.+)$/i.exec(authorization ?? '')?.[1] ?? '';
    return timingSafeEqual(digest(presented), expected);
  };
}

function digest(value: string): Buffer {
  return createHash('sha256').update(value, 'utf8').digest();
}
