import { Receiver } from '@upstash/qstash';
import type { SigningKeys } from './signing-keys.js';
import { normalUrl } from './url.js';

export const SIGNATURE_HEADER = 'Upstash-Signature';

/** Resolves to why a signature is refused, or undefined when it is good. */
export type SignatureCheck = (signature: string, body: string, url: string) => Promise<string | undefined>;

const WRONG_KEY = 'signature verification failed';

/**
 * Checks QStash's JWT with `@upstash/qstash`'s Receiver: HS256 with either key, issuer `Upstash`,
 * `exp`/`nbf`, `body` = SHA-256 of the raw body; then `sub`, the URL QStash delivered to as it was
 * published, against `url`, both in normal form (the Receiver compares them as text, so
 * `https://app.example` would not match the `https://app.example/` a request arrives at).
 *
 * One Receiver per key: a single Receiver reports only its last attempt, so an expired token
 * signed with the current key would read "signature verification failed" — the next key's
 * verdict — and hide the clock problem that needs fixing.
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
        await receiver.verify({ signature, body, clockTolerance: clockToleranceSeconds });
        return subjectProblem(signature, url);
      } catch (error) {
        problems.push(error instanceof Error ? error.message : String(error));
      }
    }
    return problems.find((problem) => !problem.includes(WRONG_KEY)) ?? problems[0];
  };
}

/** Compares the verified token's `sub` with the URL the request was meant for. */
function subjectProblem(jwt: string, url: string): string | undefined {
  const subject = subjectOf(jwt);
  if (subject !== undefined && normalUrl(subject) === normalUrl(url)) return undefined;
  return `invalid subject: ${subject ?? '(none)'}, want: ${url}`;
}

function subjectOf(jwt: string): string | undefined {
  try {
    const payload = (jwt.split('.')[1] ?? '').replace(/-/g, '+').replace(/_/g, '/');
    const claims = JSON.parse(new TextDecoder().decode(Uint8Array.from(atob(payload), (char) => char.charCodeAt(0)))) as { sub?: unknown };
    return typeof claims.sub === 'string' ? claims.sub : undefined;
  } catch {
    return undefined;
  }
}
