/**
 * Signed channel access. EventSource cannot send headers, so a grant travels in the URL
 * (`?token=`) or a cookie: `<payload>.<signature>`, both base64url, the payload a small JSON
 * `{ c: channels, exp: epoch seconds, sub?: subject }`, signed with HMAC-SHA256 through WebCrypto
 * (so it runs on every runtime; `crypto.subtle.verify` compares in constant time).
 */
import { ValidationError, invalidOption } from '../common/errors.js';
import { errorResponse } from '../common/responses.js';
import type { Authorize } from './handler.js';
import { assertChannel } from '../wire/names.js';

export interface ChannelGrant {
  channels: string[];
  /** Epoch milliseconds. */
  expiresAt: number;
  subject?: string;
}

export interface ChannelTokenOptions {
  channels: readonly string[];
  /** Seconds from now (at most 30 days). */
  expiresIn: number;
  /** Who it was issued to, for your own checks and logs. */
  subject?: string;
}

const MAX_EXPIRES_IN = 30 * 24 * 3600;
const encoder = new TextEncoder();

export async function createChannelToken(options: ChannelTokenOptions, secret: string): Promise<string> {
  const { channels, expiresIn, subject } = options;
  if (!Array.isArray(channels) || channels.length === 0) throw invalidOption('A channel token needs at least one channel');
  channels.forEach(assertChannel);
  if (!Number.isInteger(expiresIn) || expiresIn < 1 || expiresIn > MAX_EXPIRES_IN) {
    throw invalidOption(`expiresIn must be a whole number of seconds from 1 to ${MAX_EXPIRES_IN}, got ${String(expiresIn)}`);
  }
  const payload: { c: readonly string[]; exp: number; sub?: string } = {
    c: channels,
    exp: Math.floor(Date.now() / 1000) + expiresIn,
  };
  if (subject !== undefined) payload.sub = subject;
  const body = toBase64Url(encoder.encode(JSON.stringify(payload)));
  const signature = await crypto.subtle.sign('HMAC', await signingKey(secret), encoder.encode(body));
  return `${body}.${toBase64Url(new Uint8Array(signature))}`;
}

/** Checks the signature and expiry; throws an INVALID_TOKEN ValidationError saying which failed. */
export async function verifyChannelToken(token: string, secret: string): Promise<ChannelGrant> {
  const [body, signature, extra] = token.split('.');
  if (!body || !signature || extra !== undefined) throw invalidToken('it is not of the form <payload>.<signature>');
  const signatureBytes = fromBase64Url(signature);
  const valid =
    signatureBytes !== undefined && (await crypto.subtle.verify('HMAC', await signingKey(secret), signatureBytes, encoder.encode(body)));
  if (!valid) throw invalidToken('its signature does not match');
  const grant = parsePayload(body);
  if (grant.expiresAt <= Date.now()) throw invalidToken('it has expired; get a fresh one');
  return grant;
}

export interface ChannelTokenAuthorizerOptions {
  /** Query parameter carrying the token (default `token`). */
  param?: string;
  /** Cookie carrying the token, tried when the parameter is absent. */
  cookie?: string;
}

/**
 * An `authorize` for `createStreamHandler`: a valid token naming every requested channel allows the
 * stream until the token expires (then the stream ends and the client must come back with a fresh
 * one). Missing or invalid → 401, a channel not granted → 403, each with the reason.
 */
export function channelTokenAuthorizer(secret: string, options: ChannelTokenAuthorizerOptions = {}): Authorize {
  void signingKey(secret); // Refuse a weak secret now, not on the first request.
  const param = options.param ?? 'token';
  return async (request, channels) => {
    let token: string | undefined;
    try {
      token = new URL(request.url).searchParams.get(param) ?? cookie(request, options.cookie);
    } catch (error) {
      if (error instanceof URIError) return errorResponse(401, `The ${options.cookie} cookie is not valid percent-encoding`);
      throw error;
    }
    if (!token)
      return errorResponse(401, `A channel token is required (?${param}=…${options.cookie ? ` or the ${options.cookie} cookie` : ''})`);
    let grant: ChannelGrant;
    try {
      grant = await verifyChannelToken(token, secret);
    } catch (error) {
      if (error instanceof ValidationError) return errorResponse(401, error.message);
      throw error;
    }
    const refused = channels.filter((channel) => !grant.channels.includes(channel));
    if (refused.length > 0) return errorResponse(403, `The channel token does not grant ${refused.join(', ')}`);
    return { expiresAt: grant.expiresAt };
  };
}

const keys = new Map<string, Promise<CryptoKey>>();

function signingKey(secret: string): Promise<CryptoKey> {
  if (typeof secret !== 'string' || secret.length < 32) {
    throw invalidOption('The channel token secret must be a string of at least 32 characters');
  }
  let key = keys.get(secret);
  if (!key) {
    key = crypto.subtle.importKey('raw', encoder.encode(secret), { name: 'HMAC', hash: 'SHA-256' }, false, ['sign', 'verify']);
    keys.set(secret, key);
  }
  return key;
}

function parsePayload(body: string): ChannelGrant {
  let payload: unknown;
  try {
    payload = JSON.parse(new TextDecoder().decode(fromBase64Url(body) ?? new Uint8Array()));
  } catch {
    throw invalidToken('its payload is not JSON');
  }
  const { c, exp, sub } = (payload ?? {}) as { c?: unknown; exp?: unknown; sub?: unknown };
  if (!Array.isArray(c) || !c.every((channel) => typeof channel === 'string') || typeof exp !== 'number') {
    throw invalidToken('its payload lacks channels or expiry');
  }
  const grant: ChannelGrant = { channels: c as string[], expiresAt: exp * 1000 };
  if (typeof sub === 'string') grant.subject = sub;
  return grant;
}

function cookie(request: Request, name: string | undefined): string | undefined {
  if (!name) return undefined;
  for (const part of (request.headers.get('Cookie') ?? '').split(';')) {
    const [key, ...value] = part.trim().split('=');
    if (key === name) return decodeURIComponent(value.join('='));
  }
  return undefined;
}

function invalidToken(reason: string): ValidationError {
  return new ValidationError('INVALID_TOKEN', `Invalid channel token: ${reason}`);
}

function toBase64Url(bytes: Uint8Array): string {
  let binary = '';
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

function fromBase64Url(text: string): Uint8Array<ArrayBuffer> | undefined {
  if (!/^[A-Za-z0-9_-]*$/.test(text) || text.length % 4 === 1) return undefined;
  const binary = atob(text.replace(/-/g, '+').replace(/_/g, '/'));
  return Uint8Array.from(binary, (char) => char.charCodeAt(0));
}
