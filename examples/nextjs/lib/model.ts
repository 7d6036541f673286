import { simulateReadableStream } from 'ai';
import { MockLanguageModelV3 } from 'ai/test';

/** The answer the mock model gives to `prompt`: 40 numbered words after an echo of the question. */
export function answerTo(prompt: string): string[] {
  return [`You asked: ${prompt}.`, ...Array.from({ length: 40 }, (_, n) => `word-${n + 1}`)].map((word, n, all) =>
    n < all.length - 1 ? `${word} ` : `${word}.`,
  );
}

/** A language model with no network: streams answerTo(the last user message), a word every 100 ms. */
export const model = new MockLanguageModelV3({
  doStream: async ({ prompt }) => {
    const last = [...prompt].reverse().find((message) => message.role === 'user');
    const text = last && Array.isArray(last.content) ? last.content.map((part) => (part.type === 'text' ? part.text : '')).join('') : '';
    return {
      stream: simulateReadableStream({
        initialDelayInMs: 100,
        chunkDelayInMs: 100,
        chunks: [
          { type: 'text-start', id: 'answer' },
          ...answerTo(text).map((delta) => ({ type: 'text-delta' as const, id: 'answer', delta })),
          { type: 'text-end', id: 'answer' },
          {
            type: 'finish',
            finishReason: { unified: 'stop', raw: 'stop' },
            usage: {
              inputTokens: { total: 1, noCache: 1, cacheRead: 0, cacheWrite: 0 },
              outputTokens: { total: 41, text: 41, reasoning: 0 },
            },
          },
        ],
      }),
    };
  },
});
