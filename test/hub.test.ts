import { describe, expect, it } from 'vitest';
import { BackendError } from '../src/index.js';
import { memoryBackend } from '../src/backends/memory/index.js';
import type { FeedListener, LiveFeed } from '../src/backends/contract.js';
import { Hub, type HubListener } from '../src/server/hub.js';
import { spyBackend } from './helpers/spy-backend.js';

/** A feed that reports where it starts when the test says so (as the Upstash subscribe feed does, once subscribed). */
function reportingBackend() {
  let listener!: FeedListener;
  const following: [string, string][] = [];
  const feed: LiveFeed = {
    follow: (channel, from) => void following.push([channel, from]),
    unfollow: (channel) =>
      following.splice(
        following.findIndex(([followed]) => followed === channel),
        1,
      ),
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

describe('Hub', () => {
  it('follows each new channel from the head, joins at the position the feed reports, and reads nothing itself', async () => {
    const { backend, calls, following, report } = reportingBackend();
    const hub = new Hub(backend);
    const joining = hub.join(['a', 'b'], quiet);
    expect(following).toEqual([
      ['a', 'head'],
      ['b', 'head'],
    ]);
    report().onFollowing('a', '5-0');
    report().onFollowing('b', '0-0');
    await expect(joining).resolves.toEqual(['5-0', '0-0']);
    expect(calls.filter((call) => call.method === 'tail' || call.method === 'read')).toHaveLength(0);
  });

  it('rejects the join, never hangs, when the feed fails, the hub closes or everyone leaves first', async () => {
    const failing = reportingBackend();
    const failed = new Hub(failing.backend).join(['a'], quiet);
    failing.report().onError('a', new BackendError('BACKEND_UNAVAILABLE', 'down'));
    await expect(failed).rejects.toThrow('down');

    const closing = new Hub(reportingBackend().backend);
    const closed = closing.join(['a'], quiet);
    closing.close();
    await expect(closed).rejects.toBeInstanceOf(BackendError);

    const leaving = new Hub(reportingBackend().backend);
    const left = leaving.join(['a'], quiet);
    leaving.leave(['a'], quiet);
    await expect(left).rejects.toBeInstanceOf(BackendError);
  });
});
