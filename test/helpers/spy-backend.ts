import type { Backend, LiveFeed } from '../../src/backends/index.js';
import type { BackendError } from '../../src/index.js';

export interface BackendCall {
  method: 'append' | 'read' | 'tail' | 'follow' | 'unfollow' | 'closeFeed';
  channels: string[];
}

/** Wraps a real backend and records every call the library makes to it. */
export function spyBackend(inner: Backend, overrides: Partial<Backend> = {}) {
  const calls: BackendCall[] = [];
  const record = (method: BackendCall['method'], channels: string[]) => calls.push({ method, channels });
  const backend: Backend = {
    name: inner.name,
    shareable: inner.shareable,
    append: (events, retention, options) => {
      record(
        'append',
        events.map((event) => event.channel),
      );
      return inner.append(events, retention, options);
    },
    read: (requests, limit, options) => {
      record(
        'read',
        requests.map((request) => request.channel),
      );
      return inner.read(requests, limit, options);
    },
    tail: (channels, count, options) => {
      record('tail', [...channels]);
      return inner.tail(channels, count, options);
    },
    createFeed: (listener, options) => {
      const feed = inner.createFeed(listener, options);
      const spied: LiveFeed = {
        follow: (channel, from) => {
          record('follow', [channel]);
          feed.follow(channel, from);
        },
        unfollow: (channel) => {
          record('unfollow', [channel]);
          feed.unfollow(channel);
        },
        close: () => {
          record('closeFeed', []);
          feed.close();
        },
      };
      return spied;
    },
    stats: () => inner.stats(),
    close: () => inner.close(),
    ...overrides,
  };
  return { backend, calls };
}

/** An override whose feed fails every channel it is asked to follow, as when Redis is unreachable. */
export function failingToFollow(error: BackendError): Partial<Backend> {
  return {
    createFeed: (listener) => ({
      follow: (channel) => queueMicrotask(() => listener.onError(channel, error)),
      unfollow() {},
      close() {},
    }),
  };
}
