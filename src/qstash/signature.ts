import { Receiver } from '@upstash/qstash';
import type { SigningKeys } from './signing-keys.js';

export const SIGNATURE_HEADER = 'Upstash-Signature';

/** Resolves to why a signature is refused, or undefined when it is good. */
export type SignatureCheck = (signature: string, body: string, url: string) => Promise<string | undefined>;

const WRONG_KEY = 'signature verification failed';

/**
 * Checks QStash's JWT with `@upstash/qstash`'s Receiver: HS256 with either key, issuer `Upstash`,
 * `exp`/`nbf`, `sub` = the URL QStash delivered to, `body` = SHA-256 of the raw body.
 *
 * One Receiver per key: a single Receiver reports only its last attempt, so an expired token
 * signed with the current key would read "signature verification failed" — the next key's
 * verdict — and hide the clock or URL problem that needs fixing.
 */
export function signatureCheck(keys: SigningKeys, clockToleranceSeconds: number): SignatureCheck {
  const receivers = [keys.currentSigningKey, keys.nextSigningKey].map(
    // devMode false: the keys given are the keys used, whatever QSTASH_DEV says.
    (key) => new Receiver({ currentSigningKey: key, nextSigningKey: key, devMode: false }),
  );
  return async (signature, body, url) => {
    const problems: string[] = [];
    for (const receiver of receivers) {
      try {
        await receiver.verify({ signature, body, url, clockTolerance: clockToleranceSeconds });
        return undefined;
      } catch (error) {
        problems.push(error instanceof Error ? error.message : String(error));
      }
    }
    return problems.find((problem) => !problem.includes(WRONG_KEY)) ?? problems[0];
  };
}
