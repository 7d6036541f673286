import { BackendError, ValidationError, invalidOption } from '../errors.js';
import { wholeNumber } from '../options.js';
import { DEFAULT_MAX_EVENT_BYTES, type EventInput, type PublishOptions, prepareEvent, sendEvent } from '../publish.js';
import { type Env, resolveEnv } from '../env.js';
import { parseMessage } from './message.js';
import { duplicate, methodNotAllowed, published, rejected, unauthorized, unavailable } from './responses.js';
import { SIGNATURE_HEADER, signatureCheck } from './signature.js';
import { resolveSigningKeys } from './signing-keys.js';
import { absoluteUrl } from './url.js';

export interface PublishHandlerOptions extends PublishOptions {
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
  /** Seconds of clock difference with QStash tolerated on `exp` and `nbf` (default 5). */
  clockToleranceSeconds?: number;
  /** Environment to read the signing keys from (default `process.env` where it exists). */
  env?: Env;
}

export type PublishHandler = (request: Request) => Promise<Response>;

export const MESSAGE_ID_HEADER = 'Upstash-Message-Id';
export const DEFAULT_IDEMPOTENCY_SECONDS = 2 * 86_400;
const MAX_MESSAGE_ID_LENGTH = 256;

/** A POST handler QStash delivers to: verifies the signature, then publishes the event once. */
export function createPublishHandler(options: PublishHandlerOptions): PublishHandler {
  const settings = resolveSettings(options);
  return (request) => handle(request, settings);
}

type Settings = ReturnType<typeof resolveSettings>;

function resolveSettings(options: PublishHandlerOptions) {
  if (!options || typeof options.backend?.claim !== 'function') {
    throw invalidOption('createPublishHandler needs a backend, e.g. { backend: upstashBackend() }');
  }
  const keys = resolveSigningKeys(options, resolveEnv(options.env));
  const clockTolerance = wholeNumber('clockToleranceSeconds', options.clockToleranceSeconds, 5, 0, 300);
  return {
    backend: options.backend,
    publishing: checkedPublishOptions(options),
    maxEventBytes: wholeNumber('maxEventBytes', options.maxEventBytes, DEFAULT_MAX_EVENT_BYTES, 1),
    idempotencySeconds: wholeNumber('idempotencySeconds', options.idempotencySeconds, DEFAULT_IDEMPOTENCY_SECONDS, 1),
    url: options.url === undefined ? undefined : absoluteUrl('url', options.url),
    checkSignature: signatureCheck(keys, clockTolerance),
  };
}

/** Bad retention options would otherwise fail every delivery instead of failing at startup. */
function checkedPublishOptions({ backend, maxEventBytes, maxLength, ttlSeconds }: PublishOptions): PublishOptions {
  wholeNumber('maxLength', maxLength, 1, 1);
  wholeNumber('ttlSeconds', ttlSeconds, 1, 1);
  return { backend, maxEventBytes, maxLength, ttlSeconds };
}

async function handle(request: Request, settings: Settings): Promise<Response> {
  if (request.method !== 'POST') return methodNotAllowed(request.method);
  const signature = request.headers.get(SIGNATURE_HEADER);
  if (!signature) return unauthorized(`the ${SIGNATURE_HEADER} header is missing`);
  const body = await request.text();
  const problem = await settings.checkSignature(signature, body, settings.url ?? request.url);
  if (problem) return unauthorized(problem);

  let event: EventInput;
  let messageId: string;
  try {
    event = parseMessage(body);
    // Checked before the id is claimed: a message that can never publish must not hold one.
    prepareEvent(event, settings.maxEventBytes);
    messageId = messageIdOf(request);
  } catch (error) {
    if (error instanceof ValidationError) return rejected(error.message);
    throw error;
  }
  return publishOnce(event, `qstash:${messageId}`, settings);
}

function messageIdOf(request: Request): string {
  const id = request.headers.get(MESSAGE_ID_HEADER);
  if (!id || id.length > MAX_MESSAGE_ID_LENGTH) {
    throw new ValidationError(
      'INVALID_DATA',
      `The ${MESSAGE_ID_HEADER} header is ${id ? 'too long' : 'missing'}; QStash sends it with every delivery, ` +
        'so check that no proxy strips it',
    );
  }
  return id;
}

async function publishOnce(event: EventInput, key: string, settings: Settings): Promise<Response> {
  const { backend, idempotencySeconds, publishing } = settings;
  let first: boolean;
  try {
    first = await backend.claim(key, idempotencySeconds);
  } catch (error) {
    if (error instanceof BackendError) return unavailable(error.message);
    throw error;
  }
  if (!first) return duplicate();
  try {
    return published(await sendEvent(event.type, event.data, { ...publishing, channel: event.channel }));
  } catch (error) {
    const released = await backend.release(key).then(
      () => true,
      () => false,
    );
    if (!(error instanceof BackendError)) throw error;
    return unavailable(released ? error.message : `${error.message}; forgetting ${key} failed too, so retries will be taken for duplicates`);
  }
}
