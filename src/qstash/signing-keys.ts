import { invalidOption } from '../common/errors.js';
import type { Env } from '../common/env.js';

export interface SigningKeys {
  currentSigningKey: string;
  nextSigningKey: string;
}

const CURRENT = 'QSTASH_CURRENT_SIGNING_KEY';
const NEXT = 'QSTASH_NEXT_SIGNING_KEY';

/** Both keys are required: QStash may sign with either while keys are being rotated. */
export function resolveSigningKeys(options: Partial<SigningKeys>, env: Env): SigningKeys {
  const currentSigningKey = options.currentSigningKey ?? env[CURRENT];
  const nextSigningKey = options.nextSigningKey ?? env[NEXT];
  const missing = [
    isKey(currentSigningKey) ? undefined : `currentSigningKey (or ${CURRENT})`,
    isKey(nextSigningKey) ? undefined : `nextSigningKey (or ${NEXT})`,
  ].filter(Boolean);
  if (missing.length > 0) {
    throw invalidOption(
      `createPublishHandler needs QStash's two signing keys; missing ${missing.join(' and ')}. ` +
        `Copy them from the Upstash console (QStash → Signing keys) into ${CURRENT} and ${NEXT}, ` +
        'or pass { currentSigningKey, nextSigningKey }',
    );
  }
  return { currentSigningKey, nextSigningKey } as SigningKeys;
}

function isKey(value: unknown): value is string {
  return typeof value === 'string' && value.length > 0;
}
