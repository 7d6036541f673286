import { describe, expect, it } from 'vitest';
import { BackendError } from '../src/index.js';
import { memoryBackend } from '../src/backends/memory/index.js';
import type { FeedListener, LiveFeed } from '../src/backends/contract.js';
import { Hub, type HubListener } from '../src/server/hub.js';
import { spyBackend } from './helpers/spy-backend.js';

/** A feed that listens first and reports the head when told to: the shape of the Upstash subscribe feed. */
function headFindingBackend() {
  let listener!: FeedListener;
  const following: string[] = [];
  const feed: LiveFeed = {
    follow: () => {
      throw new Error('not used: the hub lets this feed find the head');
    },
    followFromHead: (channel) => void following.push(channel),
    unfollow: (channel) => following.splice(following.indexOf(channel), 1),
    close: () => following.splice(0),
  };
  const { backend, calls } = spyBackend(memoryBackend(), {
    createFeed: (feedListener) => {
      listener = feedListener;
      return feed;
    },
  });
  return { backend, calls, following, report: () => listener };
}

const quiet: HubListener = { onEvents: () => {}, onError: () => {} };

describe('Hub with a feed that finds the head itself', () => {
  it('joins at the head the feed reports, and reads nothing itself', async () => {
    const { backend, calls, following, report } = headFindingBackend();
    const hub = new Hub(backend);
    const joining = hub.join(['a', 'b'], quiet);
    expect(following).toEqual(['a', 'b']);
    report().onHead!('a', '5-0');
    report().onHead!('b', '0-0');
    await expect(joining).resolves.toEqual(['5-0', '0-0']);
    expect(calls.filter((call) => call.method === 'tail')).toHaveLength(0);
  });

  it('rejects the join, never hangs, when the feed fails, the hub closes or everyone leaves first', async () => {
    const failing = headFindingBackend();
    const failed = new Hub(failing.backend).join(['a'], quiet);
    failing.report().onError('a', new BackendError('BACKEND_UNAVAILABLE', 'down'));
    await expect(failed).rejects.toThrow('down');

    const closing = new Hub(headFindingBackend().backend);
    const closed = closing.join(['a'], quiet);
    closing.close();
    await expect(closed).rejects.toBeInstanceOf(BackendError);

    const leaving = new Hub(headFindingBackend().backend);
    const left = leaving.join(['a'], quiet);
    leaving.leave(['a'], quiet);
    await expect(left).rejects.toBeInstanceOf(BackendError);
  });
});
