/** Who may read streams from another origin. `true` allows any origin (without credentials). */
export type CorsOption =
  | boolean
  | string
  | {
      /** Allowed origins, or a predicate; the request's origin is echoed back when allowed. */
      origin: string | readonly string[] | ((origin: string) => boolean);
      /** Lets `new EventSource(url, { withCredentials: true })` send cookies. */
      credentials?: boolean;
      /** Seconds a browser may cache a preflight answer (default 600). */
      maxAge?: number;
    };

/** CORS response headers for a request from `origin`, or none when it is not allowed (or CORS is off). */
export function corsHeaders(cors: CorsOption | undefined, origin: string | null): Record<string, string> {
  if (!cors) return {};
  if (cors === true) return { 'Access-Control-Allow-Origin': '*' };
  const allowed = typeof cors === 'string' ? cors : allowedOrigin(cors.origin, origin);
  if (!allowed) return {};
  const headers: Record<string, string> = { 'Access-Control-Allow-Origin': allowed };
  if (allowed !== '*') headers.Vary = 'Origin';
  if (typeof cors === 'object' && cors.credentials) headers['Access-Control-Allow-Credentials'] = 'true';
  return headers;
}

export function preflightHeaders(cors: CorsOption, origin: string | null): Record<string, string> {
  const headers = corsHeaders(cors, origin);
  if (!headers['Access-Control-Allow-Origin']) return headers;
  const maxAge = typeof cors === 'object' ? (cors.maxAge ?? 600) : 600;
  return {
    ...headers,
    'Access-Control-Allow-Methods': 'GET, OPTIONS',
    'Access-Control-Allow-Headers': 'Last-Event-ID, Cache-Control, Authorization',
    'Access-Control-Max-Age': String(maxAge),
  };
}

function allowedOrigin(rule: string | readonly string[] | ((origin: string) => boolean), origin: string | null): string | undefined {
  if (typeof rule === 'string') return rule === '*' ? '*' : rule === origin ? origin : undefined;
  if (origin === null) return undefined;
  const allowed = typeof rule === 'function' ? rule(origin) : rule.includes(origin);
  return allowed ? origin : undefined;
}
