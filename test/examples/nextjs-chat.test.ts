/**
 * examples/nextjs's resumable AI chat in Debian's Chromium: AI SDK's useChat with `resume`, its
 * streamText with a mock model (no network), edge-sse/resumable over the Upstash REST protocol
 * (an edge-sse bridge in front of the real Redis). Send a prompt, reload the page mid-answer:
 * the rest of the answer arrives, once, in order.
 */
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ARTIFACTS, type Browser, launchChromium } from '../e2e/browser.ts';
import { REDIS_URL, deleteKeysWithPrefix } from '../helpers/redis.ts';
import { answerTo } from '../../examples/nextjs/lib/model.ts';
import { type RunningExample, startNextExample } from './nextjs-build.ts';

let example: RunningExample;
let browser: Browser;
let base: string;
const chatIds: string[] = [];

beforeAll(async () => {
  example = await startNextExample('/api/chat');
  base = example.base;
  browser = await launchChromium();
}, 300_000);

afterAll(async () => {
  await browser?.close();
  await example?.stop();
  // The answers' channels are `sse:resumable-stream/<chat id>-…`, with the keys that made them once.
  const redis = new Redis(REDIS_URL);
  for (const chatId of chatIds) {
    await deleteKeysWithPrefix(redis, `sse:resumable-stream/${chatId}-`);
    for (const kind of ['start', 'follow'])
      await deleteKeysWithPrefix(redis, `sse:#idem:edge-sse/resumable:${kind}:resumable-stream/${chatId}-`);
  }
  redis.disconnect();
});

const assistantText = (page: import('playwright-core').Page) => page.locator('#messages li[data-role="assistant"]').allInnerTexts();

describe('examples/nextjs: resumable AI chat in Chromium', () => {
  it('reloaded mid-answer, the page gets the rest of the answer once, in order', async () => {
    const chatId = `e2e${randomBytes(6).toString('hex')}`;
    chatIds.push(chatId);
    const page = await browser.context.newPage();
    const resumes: number[] = [];
    page.on('response', (response) => {
      if (response.url().endsWith(`/api/chat/${chatId}/stream`)) resumes.push(response.status());
    });
    await page.goto(`${base}/chat?id=${chatId}`);
    await page.fill('#prompt', 'tell me something long');
    await page.click('#chat-form button');
    const words = answerTo('tell me something long');
    const expected = `assistant: ${words.join('')}`;
    await page.waitForFunction(() => /word-5 /.test(document.querySelector('#messages li[data-role="assistant"]')?.textContent ?? ''));
    const before = (await assistantText(page))[0]!;
    expect(before).not.toContain('word-40.'); // mid-answer
    expect(resumes).toEqual([204]); // the first load had nothing to resume

    const resuming = page.waitForResponse((response) => response.url().endsWith(`/api/chat/${chatId}/stream`));
    await page.reload();
    expect((await resuming).status()).toBe(200); // the answer was still streaming: resumed from Redis
    await page.waitForFunction(
      () => /word-40\./.test(document.querySelector('#messages li[data-role="assistant"]')?.textContent ?? ''),
      undefined,
      { timeout: 15_000 },
    );
    await page.waitForFunction(() => document.querySelector('#status')?.textContent === 'ready');
    expect(resumes).toEqual([204, 200]);
    const after = await assistantText(page);
    expect(after).toEqual([expected]); // one answer, whole, each word once and in order
    expect(await page.locator('#messages li[data-role="user"]').allInnerTexts()).toEqual(['user: tell me something long']);
    await page.screenshot({ path: join(ARTIFACTS, 'nextjs-chat-resumed.png') });

    // Once the answer is complete the chat holds it: a reload shows it with nothing to resume.
    const resumeAsked = page.waitForResponse((response) => response.url().endsWith(`/api/chat/${chatId}/stream`));
    await page.reload();
    await resumeAsked;
    await page.waitForFunction(() => document.querySelectorAll('#messages li').length === 2);
    expect(await assistantText(page)).toEqual([expected]);
    expect(resumes).toEqual([204, 200, 204]);
    await page.close();
  });
});
