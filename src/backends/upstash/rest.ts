import { BackendError, backendTimeout } from '../../common/errors.js';
import { Deadline, describeCommands } from '../deadline.js';
import type { RedisCommand, RedisReply, RedisTransport } from '../redis-streams/transport.js';
import { guardLines, preview, readCapped } from './rest-body.js';
import type { CallOptions } from '../contract.js';

/**
 * A minimal client for the Upstash Redis REST protocol (https://upstash.com/docs/redis/features/restapi):
 * `POST /pipeline` and `POST /subscribe/<channel>`. edge-sse speaks it directly with `fetch` so it
 * can pass an AbortSignal to every call and notice when a subscription stream ends.
 */
export interface RestCredentials {
  url: string;
  token: string;
}

export interface RestLimits {
  /** Bound of every request: until the whole answer of a pipeline, until a subscription is confirmed. */
  timeoutMs: number;
  /** Largest answer read; a subscription's lines are capped by SUBSCRIPTION_LINE_BYTES. */
  maxResponseBytes: number;
}

/** A wake-up carries at most 32 KiB of events (redis-streams/commands/publish.ts): a line 32 times that is not one. */
const SUBSCRIPTION_LINE_BYTES = 1024 * 1024;
/** Enough of an error answer to quote its reason. */
const ERROR_BODY_BYTES = 64 * 1024;

export class UpstashRest implements RedisTransport {
  requests = 0;
  /** Subscription streams open now (kept by their readers). */
  openSubscriptions = 0;
  private resolved: RestCredentials | undefined;

  /**
   * `credentials` is called on the first request, not before: a build that imports a route
   * (`next build`) must not need the secrets; a missing one fails the first request instead.
   */
  constructor(
    private readonly credentials: () => RestCredentials,
    private readonly limits: RestLimits,
    private readonly fetcher: typeof fetch = (...args) => fetch(...args),
  ) {}

  private get base(): string {
    return this.target().url;
  }

  private target(): RestCredentials {
    if (!this.resolved) {
      const { url, token } = this.credentials();
      this.resolved = { url: url.replace(/\/+$/, ''), token };
    }
    return this.resolved;
  }

  async pipeline(commands: RedisCommand[], options: CallOptions = {}): Promise<(RedisReply | Error)[]> {
    const called = describeCommands(commands);
    const deadline = this.deadline(options, () => `POST ${this.base}/pipeline (${called.names})`, called.publishes);
    try {
      const response = await this.post('/pipeline', JSON.stringify(commands), options, deadline);
      const text = await readCapped(response, this.limits.maxResponseBytes, () => this.tooLarge('/pipeline'));
      return toReplies(parseJson(text, response, `${this.base}/pipeline`), commands.length, `${this.base}/pipeline`);
    } catch (error) {
      throw this.failure(error, deadline);
    } finally {
      deadline.end();
    }
  }

  /**
   * Opens a pub/sub stream; resolves once the server answered (the body is SSE, and lives on).
   * The bound lasts until the subscription is confirmed, which some servers send after the headers.
   */
  async subscribe(channel: string, options: CallOptions): Promise<ReadableStream<Uint8Array>> {
    const deadline = this.deadline(options, () => `POST ${this.base}/subscribe/${channel} (until the subscription is confirmed)`, false);
    try {
      // Like @upstash/redis, the channel goes into the path as is (channel names are URL-safe).
      const response = await this.post(`/subscribe/${channel}`, '[]', options, deadline, { Accept: 'text/event-stream' });
      // A page (a captive portal, a proxy's) is refused; any other body is read as SSE, whose
      // reader ignores lines it does not know (servers differ on the content type they send).
      if (/html/i.test(response.headers.get('content-type') ?? '')) {
        const text = await readCapped(response, ERROR_BODY_BYTES, () => this.tooLarge('/subscribe'));
        throw new BackendError(
          'BACKEND_ERROR',
          `${this.base}/subscribe answered ${describe(response, text)}, not an event stream${CHECK_URL}`,
        );
      }
      if (!response.body) throw new BackendError('BACKEND_ERROR', 'The subscription response has no body');
      return guardLines(response.body, {
        maxLineBytes: SUBSCRIPTION_LINE_BYTES,
        tooLong: () =>
          new BackendError(
            'BACKEND_ERROR',
            `${this.base}/subscribe sent a line over ${SUBSCRIPTION_LINE_BYTES} bytes: not a pub/sub message`,
          ),
        isAwaited: (line) => line.startsWith('data: subscribe,'),
        onAwaited: () => deadline.lift(),
      });
    } catch (error) {
      deadline.end();
      throw this.failure(error, deadline);
    }
  }

  /** Times out with a BACKEND_TIMEOUT error naming `what`, which fetch then rejects with. */
  private deadline({ signal }: CallOptions, what: () => string, publishes: boolean): Deadline {
    const { timeoutMs } = this.limits;
    return new Deadline(timeoutMs, signal, () => backendTimeout(`Redis over HTTP: ${what()}`, timeoutMs, publishes));
  }

  private async post(
    path: string,
    body: string,
    { onRequest }: CallOptions,
    deadline: Deadline,
    headers: Record<string, string> = {},
  ): Promise<Response> {
    onRequest?.();
    const { url, token } = this.target();
    this.requests++;
    let response: Response;
    try {
      response = await this.fetcher(url + path, {
        method: 'POST',
        headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json', ...headers },
        body,
        signal: deadline.signal,
      });
    } catch (error) {
      if (deadline.signal.aborted) throw error;
      throw new BackendError('BACKEND_UNAVAILABLE', `Redis over HTTP is unreachable at ${this.base}: ${(error as Error).message}`, {
        cause: error,
      });
    }
    if (!response.ok) throw await httpFailure(response, this.base);
    return response;
  }

  /** What a failed call throws: the caller's abort as is, a timeout as one, anything else as a BackendError. */
  private failure(error: unknown, deadline: Deadline): unknown {
    if (deadline.timedOut) return deadline.signal.reason;
    if (error instanceof BackendError || deadline.signal.aborted) return error;
    return new BackendError('BACKEND_ERROR', `Redis over HTTP failed at ${this.base}: ${(error as Error).message}`, { cause: error });
  }

  private tooLarge(path: string): BackendError {
    return new BackendError(
      'BACKEND_ERROR',
      `${this.base}${path} answered more than ${this.limits.maxResponseBytes} bytes (option maxResponseBytes); ` +
        'no Redis reply edge-sse asks for is that large',
    );
  }
}

const CHECK_URL = ': is the URL an Upstash REST endpoint (UPSTASH_REDIS_REST_URL)?';

function describe(response: Response, text: string): string {
  const type = response.headers.get('content-type') || 'no content type';
  return `${response.status} with ${type}: ${preview(text)}`;
}

function parseJson(text: string, response: Response, where: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    throw new BackendError('BACKEND_ERROR', `${where} answered ${describe(response, text)}, which is not JSON${CHECK_URL}`);
  }
}

/** The pipeline's answer, `[{ result } | { error }, …]`, one per command, checked before anything reads it. */
function toReplies(body: unknown, count: number, where: string): (RedisReply | Error)[] {
  const wrong = (what: string) =>
    new BackendError('BACKEND_ERROR', `${where} answered ${what} instead of ${count} replies ({ result } or { error })${CHECK_URL}`);
  if (!Array.isArray(body)) throw wrong(body === null ? 'null' : typeof body === 'object' ? 'an object' : typeof body);
  if (body.length !== count) throw wrong(`${body.length} items`);
  return body.map((reply: unknown) => {
    if (typeof reply !== 'object' || reply === null || Array.isArray(reply)) throw wrong('an item that is not an object');
    const { result, error } = reply as { result?: unknown; error?: unknown };
    if (error !== undefined) return new Error(String(error));
    if (result === undefined) return null;
    if (!isRedisReply(result)) throw wrong('a result that is not a Redis value (string, number, null or array)');
    return result;
  });
}

/** Strings, numbers, null and arrays of them, checked without recursion (nesting may be deep). */
function isRedisReply(value: unknown): value is RedisReply {
  const pending: unknown[] = [value];
  while (pending.length > 0) {
    const next = pending.pop();
    if (Array.isArray(next)) {
      for (const item of next) pending.push(item);
    } else if (next !== null && typeof next !== 'string' && typeof next !== 'number') return false;
  }
  return true;
}

async function httpFailure(response: Response, base: string): Promise<BackendError> {
  const text = await readCapped(response, ERROR_BODY_BYTES, () => new BackendError('BACKEND_ERROR', '')).catch(() => '');
  let reason = text.slice(0, 300);
  try {
    reason = (JSON.parse(text) as { error?: string }).error ?? reason;
  } catch {
    // Not JSON: keep the text.
  }
  if (response.status === 401 || response.status === 403) {
    return new BackendError('BACKEND_ERROR', `${base} refused the token (${response.status}): check UPSTASH_REDIS_REST_TOKEN. ${reason}`);
  }
  const code = response.status >= 500 ? 'BACKEND_UNAVAILABLE' : 'BACKEND_ERROR';
  return new BackendError(code, `${base} answered ${response.status}: ${reason}`);
}
