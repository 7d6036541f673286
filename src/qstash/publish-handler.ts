import { BackendError, ValidationError, invalidOption } from '../common/errors.js';
import { wholeNumber } from '../common/options.js';
import {
  DEFAULT_MAX_EVENT_BYTES,
  MAX_IDEMPOTENCY_KEY_LENGTH,
  type EventInput,
  type PublishOptions,
  publishEvents,
} from '../publish/publish.js';
import { type Env, resolveEnv } from '../common/env.js';
import { readTextUpTo } from '../common/body-limit.js';
import { parseMessage } from './message.js';
import { methodNotAllowed, published, rejected, tooLarge, unauthorized, unavailable } from './responses.js';
import { SIGNATURE_HEADER, signatureCheck } from './signature.js';
import { resolveSigningKeys } from './signing-keys.js';
import { absoluteUrl } from './url.js';

export interface PublishHandlerOptions extends Omit<PublishOptions, 'idempotencyKey'> {
  /** Defaults to QSTASH_CURRENT_SIGNING_KEY. */
  currentSigningKey?: string;
  /** Defaults to QSTASH_NEXT_SIGNING_KEY. */
  nextSigningKey?: string;
  /**
   * The public URL of this endpoint, as QStash delivers to it (its signature covers that URL).
   * Defaults to `request.url`; set it when a proxy or platform rewrites the URL the handler sees.
   */
  url?: string;
  /** Seconds a message id is remembered, so QStash's retries publish once (default 172800: 2 days). */
  idempotencySeconds?: number;
  /**
   * Bodies over this many bytes are refused with 413 before their signature is checked, and read
   * no further. Default: the largest valid message for `maxEventBytes` (6 × maxEventBytes + 4096).
   */
  maxBodyBytes?: number;
  /** Seconds of clock difference with QStash tolerated on `exp` and `nbf` (default 5). */
  clockToleranceSeconds?: number;
  /** Environment to read the signing keys from (default `process.env` where it exists). */
  env?: Env;
}

export type PublishHandler = (request: Request) => Promise<Response>;

const MESSAGE_ID_HEADER = 'Upstash-Message-Id';
export const DEFAULT_IDEMPOTENCY_SECONDS = 2 * 86_400;
const KEY_PREFIX = 'qstash:';
const MAX_MESSAGE_ID_LENGTH = MAX_IDEMPOTENCY_KEY_LENGTH - KEY_PREFIX.length;
const MESSAGE_ID = /^[\x20-\x7e]+$/;

/**
 * JSON escaping makes string data at most 6 times longer (`\u0001` for one byte); the type and
 * channel (128 characters each, up to 768 escaped) and the envelope fit in the 4096 bytes more.
 */
function defaultMaxBodyBytes(maxEventBytes: number): number {
  return 6 * maxEventBytes + 4096;
}

/** A POST handler QStash delivers to: verifies the signature, then publishes the event once. */
export function createPublishHandler(options: PublishHandlerOptions): PublishHandler {
  const settings = resolveSettings(options);
  return (request) => handle(request, settings);
}

type Settings = ReturnType<typeof resolveSettings>;

function resolveSettings(options: PublishHandlerOptions) {
  if (!options || typeof options.backend?.append !== 'function') {
    throw invalidOption('createPublishHandler needs a backend, e.g. { backend: upstashBackend() }');
  }
  const keys = resolveSigningKeys(options, resolveEnv(options.env));
  const clockTolerance = wholeNumber('clockToleranceSeconds', options.clockToleranceSeconds, 5, 0, 300);
  const maxEventBytes = wholeNumber('maxEventBytes', options.maxEventBytes, DEFAULT_MAX_EVENT_BYTES, 1);
  return {
    publishing: checkedPublishOptions(options),
    maxBodyBytes: wholeNumber('maxBodyBytes', options.maxBodyBytes, defaultMaxBodyBytes(maxEventBytes), 1),
    idempotencySeconds: wholeNumber('idempotencySeconds', options.idempotencySeconds, DEFAULT_IDEMPOTENCY_SECONDS, 1),
    url: options.url === undefined ? undefined : absoluteUrl('url', options.url),
    checkSignature: signatureCheck(keys, clockTolerance),
  };
}

/** Bad retention options would otherwise fail every delivery instead of failing at startup. */
function checkedPublishOptions({ backend, maxEventBytes, maxLength, ttlSeconds }: PublishOptions): PublishOptions {
  wholeNumber('maxEventBytes', maxEventBytes, 1, 1);
  wholeNumber('maxLength', maxLength, 1, 1);
  wholeNumber('ttlSeconds', ttlSeconds, 1, 1);
  return { backend, maxEventBytes, maxLength, ttlSeconds };
}

async function handle(request: Request, settings: Settings): Promise<Response> {
  if (request.method !== 'POST') return methodNotAllowed(request.method);
  const signature = request.headers.get(SIGNATURE_HEADER);
  if (!signature) return unauthorized(`the ${SIGNATURE_HEADER} header is missing`);
  const body = await readTextUpTo(request, settings.maxBodyBytes);
  if (body === undefined) return tooLarge(settings.maxBodyBytes);
  const problem = await settings.checkSignature(signature, body, settings.url ?? request.url);
  if (problem) return unauthorized(problem);

  let event: EventInput;
  let messageId: string;
  try {
    event = parseMessage(body);
    messageId = messageIdOf(request);
  } catch (error) {
    if (error instanceof ValidationError) return rejected(error.message);
    throw error;
  }
  return publishOnce(event, messageId, settings);
}

function messageIdOf(request: Request): string {
  const id = request.headers.get(MESSAGE_ID_HEADER);
  if (!id || id.length > MAX_MESSAGE_ID_LENGTH || !MESSAGE_ID.test(id)) {
    throw new ValidationError(
      'INVALID_DATA',
      `The ${MESSAGE_ID_HEADER} header is ${id ? `not 1–${MAX_MESSAGE_ID_LENGTH} printable ASCII characters` : 'missing'}; ` +
        'QStash sends it with every delivery, so check that no proxy strips or rewrites it',
    );
  }
  return id;
}

/**
 * Publishes with the idempotency key `qstash:<message id>`: looking the key up, storing the
 * event and remembering the key are one step in the backend, so however often QStash delivers
 * the message — and wherever an attempt died — it is published once.
 */
async function publishOnce(event: EventInput, messageId: string, settings: Settings): Promise<Response> {
  try {
    const { ids, repeated } = await publishEvents([event], {
      ...settings.publishing,
      idempotencyKey: KEY_PREFIX + messageId,
      idempotencySeconds: settings.idempotencySeconds,
    });
    return published(ids[0] as string, repeated);
  } catch (error) {
    if (error instanceof ValidationError) return rejected(error.message);
    if (error instanceof BackendError) return unavailable(error.message);
    throw error;
  }
}
