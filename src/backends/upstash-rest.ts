import { BackendError } from '../errors.js';
import type { RedisCommand, RedisReply, RedisTransport } from './redis-streams.js';
import type { CallOptions } from './types.js';

/**
 * A minimal client for the Upstash Redis REST protocol (https://upstash.com/docs/redis/features/restapi):
 * `POST /pipeline` and `POST /subscribe/<channel>`. edge-sse speaks it directly with `fetch` so it
 * can pass an AbortSignal to every call and notice when a subscription stream ends.
 */
export interface RestCredentials {
  url: string;
  token: string;
}

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
    const response = await this.post('/pipeline', JSON.stringify(commands), options);
    const body = (await response.json()) as { result?: RedisReply; error?: string }[];
    if (!Array.isArray(body) || body.length !== commands.length) {
      throw new BackendError('BACKEND_ERROR', `${this.base}/pipeline answered with something other than ${commands.length} replies`);
    }
    return body.map((reply) => (reply.error !== undefined ? new Error(reply.error) : (reply.result ?? null)));
  }

  /** Opens a pub/sub stream; resolves once the server answered (the body is SSE). */
  async subscribe(channel: string, options: CallOptions): Promise<ReadableStream<Uint8Array>> {
    // Like @upstash/redis, the channel goes into the path as is (channel names are URL-safe).
    const response = await this.post(`/subscribe/${channel}`, '[]', options, { Accept: 'text/event-stream' });
    if (!response.body) throw new BackendError('BACKEND_ERROR', 'The subscription response has no body');
    return response.body;
  }

  private async post(path: string, body: string, { signal, onRequest }: CallOptions, headers: Record<string, string> = {}): Promise<Response> {
    onRequest?.();
    const { url, token } = this.target();
    this.requests++;
    let response: Response;
    try {
      response = await this.fetcher(url + path, {
        method: 'POST',
        headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json', ...headers },
        body,
        signal,
      });
    } catch (error) {
      if (signal?.aborted) throw error;
      throw new BackendError('BACKEND_UNAVAILABLE', `Redis over HTTP is unreachable at ${this.base}: ${(error as Error).message}`, {
        cause: error,
      });
    }
    if (!response.ok) throw await httpFailure(response, this.base);
    return response;
  }
}

async function httpFailure(response: Response, base: string): Promise<BackendError> {
  const text = await response.text().catch(() => '');
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
