import { afterEach, describe, expect, it, vi } from 'vitest';
import { ValidationError, channelTokenAuthorizer, createChannelToken, createSSE, memoryBackend, verifyChannelToken } from '../src/index.js';
import { SSEReader, streamRequest } from './helpers/sse.js';

const SECRET = 'a-test-secret-of-at-least-32-characters!';

async function errorOf(response: Response, status: number): Promise<string> {
  expect(response.status).toBe(status);
  return ((await response.json()) as { error: string }).error;
}

afterEach(() => void vi.useRealTimers());

describe('channel tokens', () => {
  it('round-trips channels, expiry and subject', async () => {
    const token = await createChannelToken({ channels: ['user:7', 'news'], expiresIn: 60, subject: 'user-7' }, SECRET);
    const grant = await verifyChannelToken(token, SECRET);
    expect(grant.channels).toEqual(['user:7', 'news']);
    expect(grant.subject).toBe('user-7');
    expect(grant.expiresAt).toBeGreaterThan(Date.now() + 55_000);
    expect(grant.expiresAt).toBeLessThanOrEqual(Date.now() + 60_000);
  });

  it.each([
    [
      'a tampered payload',
      async (token: string) => `${Buffer.from(JSON.stringify({ c: ['admin'], exp: 9e9 })).toString('base64url')}.${token.split('.')[1]}`,
      /signature does not match/,
    ],
    ['a tampered signature', async (token: string) => `${token.slice(0, -2)}AA`, /signature does not match/],
    [
      'a token signed with another secret',
      async () => createChannelToken({ channels: ['news'], expiresIn: 60 }, `${SECRET}-other`),
      /signature does not match/,
    ],
    ['garbage', async () => 'not-a-token', /not of the form/],
    ['a token in three parts', async (token: string) => `${token}.x`, /not of the form/],
  ])('refuses %s', async (_, make, reason) => {
    const token = await createChannelToken({ channels: ['news'], expiresIn: 60 }, SECRET);
    const error = await verifyChannelToken(await make(token), SECRET).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(ValidationError);
    expect((error as ValidationError).code).toBe('INVALID_TOKEN');
    expect((error as Error).message).toMatch(reason);
  });

  it('refuses an expired token', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    const token = await createChannelToken({ channels: ['news'], expiresIn: 1 }, SECRET);
    await expect(verifyChannelToken(token, SECRET)).resolves.toMatchObject({ channels: ['news'] });
    vi.setSystemTime(Date.now() + 1100);
    await expect(verifyChannelToken(token, SECRET)).rejects.toThrow(/expired/);
  });

  it('refuses weak secrets and bad options up front', async () => {
    await expect(createChannelToken({ channels: ['news'], expiresIn: 60 }, 'short')).rejects.toThrow(/at least 32 characters/);
    expect(() => channelTokenAuthorizer('short')).toThrow(/at least 32 characters/);
    await expect(createChannelToken({ channels: [], expiresIn: 60 }, SECRET)).rejects.toThrow(/at least one channel/);
    await expect(createChannelToken({ channels: ['a b'], expiresIn: 60 }, SECRET)).rejects.toThrow(/Invalid channel/);
    await expect(createChannelToken({ channels: ['news'], expiresIn: 0 }, SECRET)).rejects.toThrow(/expiresIn/);
  });
});

describe('channelTokenAuthorizer', () => {
  const sse = createSSE({ backend: memoryBackend(), authorize: channelTokenAuthorizer(SECRET, { cookie: 'sse_token' }) });

  it('allows the channels a token grants, from ?token= or a cookie', async () => {
    const token = await createChannelToken({ channels: ['news', 'user:7'], expiresIn: 60 }, SECRET);
    const byQuery = await sse.handler(streamRequest(`?channel=news&channel=user:7&token=${token}`));
    expect(byQuery.status).toBe(200);
    await byQuery.body!.cancel();
    const byCookie = await sse.handler(streamRequest('?channel=news', { Cookie: `other=1; sse_token=${token}` }));
    expect(byCookie.status).toBe(200);
    await byCookie.body!.cancel();
  });

  it('answers 401 without a valid token and 403 for a channel it does not grant', async () => {
    expect(await errorOf(await sse.handler(streamRequest('?channel=news')), 401)).toMatch(/channel token is required/);
    expect(await errorOf(await sse.handler(streamRequest('?channel=news&token=x.y')), 401)).toMatch(/Invalid channel token/);
    const token = await createChannelToken({ channels: ['news'], expiresIn: 60 }, SECRET);
    expect(await errorOf(await sse.handler(streamRequest(`?channel=news&channel=secret&token=${token}`)), 403)).toBe(
      'The channel token does not grant secret',
    );
  });

  it('answers 401, not a 500, to a token cookie that is not valid percent-encoding', async () => {
    for (const value of ['%', '%E0%A4%A', 'abc%zz']) {
      const response = await sse.handler(streamRequest('?channel=news', { Cookie: `sse_token=${value}` }));
      expect(await errorOf(response, 401)).toBe('The sse_token cookie is not valid percent-encoding');
    }
  });

  it('grants only its channels on resume too', async () => {
    const token = await createChannelToken({ channels: ['news'], expiresIn: 60 }, SECRET);
    const response = await sse.handler(streamRequest(`?channel=news&channel=secret&token=${token}`, { 'Last-Event-ID': '0-0,0-0' }));
    expect(response.status).toBe(403);
  });

  it('ends the stream when the token expires, with a retry hint to come back with a fresh one', async () => {
    const reasons: string[] = [];
    const expiring = createSSE({
      backend: memoryBackend(),
      authorize: channelTokenAuthorizer(SECRET),
      onDisconnect: (_, reason) => reasons.push(reason),
    });
    const token = await createChannelToken({ channels: ['news'], expiresIn: 1 }, SECRET);
    const started = Date.now();
    const reader = new SSEReader(await expiring.handler(streamRequest(`?channel=news&token=${token}`)));
    await reader.waitForEnd(3000);
    expect(Date.now() - started).toBeLessThan(1500);
    expect(reader.retries).toEqual([1000]);
    expect(reasons).toEqual(['expired']);
  });
});
