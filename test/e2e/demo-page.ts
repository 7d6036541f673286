import type { Page } from 'playwright-core';

interface ShownEvent {
  channel: string;
  type: string;
  id: string;
  data: string;
}

declare global {
  interface Window {
    __shown: ShownEvent[];
    __states: string[];
  }
}

/**
 * Records, from the DOM, every event the demo page shows and every state it displays: the page
 * keeps only its newest 200 events on screen, so counting what is left at the end would not do.
 */
async function recordDisplay(page: Page): Promise<void> {
  await page.addInitScript(() => {
    window.__shown = [];
    window.__states = [];
    new MutationObserver((mutations) => {
      for (const mutation of mutations) {
        for (const node of mutation.addedNodes) {
          if (!(node instanceof HTMLElement)) continue;
          if (node.matches('#events li[data-testid=event]')) {
            const { channel = '', type = '', id = '' } = node.dataset;
            window.__shown.push({ channel, type, id, data: node.querySelector('.data')?.textContent ?? '' });
          }
        }
        const state = mutation.target instanceof Element && mutation.target.id === 'state' ? mutation.target : undefined;
        if (state && mutation.type === 'attributes') window.__states.push(state.getAttribute('data-state') ?? '');
      }
    }).observe(document, { childList: true, subtree: true, attributes: true, attributeFilter: ['data-state'] });
  });
}

export const shown = (page: Page) => page.evaluate(() => window.__shown);
export const states = (page: Page) => page.evaluate(() => window.__states);

/** Opens the demo listening to `channel` and waits for the stream to be open. */
export async function openDemo(page: Page, url: string, channel: string): Promise<void> {
  await recordDisplay(page);
  await page.goto(`${url}/?channel=${encodeURIComponent(channel)}`);
  await page.locator('#state[data-state=open]').waitFor();
}

/**
 * Publishes each text with the page's own form, one after another as fast as the server answers
 * (each waits for #publish-status), so publication order is the order given.
 */
export async function publishWithForm(page: Page, channel: string, texts: string[]): Promise<void> {
  await page.fill('#channel', channel);
  await page.evaluate(async (texts) => {
    const form = document.getElementById('publish-form') as HTMLFormElement;
    const data = document.getElementById('data') as HTMLTextAreaElement;
    const status = document.getElementById('publish-status') as HTMLOutputElement;
    const settled = () =>
      new Promise<string>((resolve) => {
        const observer = new MutationObserver(() => {
          if (!status.dataset.status) return;
          observer.disconnect();
          resolve(status.dataset.status);
        });
        observer.observe(status, { attributes: true, childList: true, characterData: true, subtree: true });
      });
    for (const text of texts) {
      data.value = text;
      const outcome = settled();
      form.requestSubmit();
      if ((await outcome) !== 'ok') throw new Error(`publishing ${text} failed: ${status.textContent}`);
    }
  }, texts);
}
