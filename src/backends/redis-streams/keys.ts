/** Where a channel's events and edge-sse's own values are kept in Redis, and the pub/sub names that wake readers. */
import { invalidOption } from '../../common/errors.js';

export const DEFAULT_PREFIX = 'sse:';

/**
 * Maps channels to Redis keys: a channel's stream is `<prefix>{<channel>}`, edge-sse's own keys
 * are `<prefix>#…`. Prefixes hold no `{`, `}` or `#` and channel names no `{`, `}` or `#`, so a key
 * reads back one way only — the prefix ends at its first `{` or `#` — and no prefix and channel
 * make another's key (with `<prefix><channel>`, prefix `a:` with channel `b:c` was prefix `a:b:`
 * with channel `c`). The braces are a Redis Cluster hash tag: every key of a channel hashes to
 * the slot of its name.
 */
export class KeySpace {
  constructor(readonly prefix: string) {
    // No comma or space either: the prefix is part of pub/sub channel names, which wake-up lines split on.
    if (typeof prefix !== 'string' || !/^[^\s,{}#]{1,64}$/.test(prefix)) {
      throw invalidOption(
        `Option prefix must be 1–64 characters without spaces, commas, "{", "}" or "#" (they delimit the ` +
          `channel and edge-sse's own keys), got ${JSON.stringify(prefix)}`,
      );
    }
  }

  stream(channel: string): string {
    return `${this.prefix}{${channel}}`;
  }

  /**
   * The pub/sub channel that wakes a channel's readers: `<prefix>!<tag>:<channel>`, `tag` naming
   * the app id (app-id.ts). Pub/sub names are one space for every database of a Redis, so the tag
   * keeps apart apps that share the prefix; and as no channel name holds `!`, the last `!` ends
   * the prefix: two prefixes never make the same name. (`!` rather than `#`: the name goes into
   * a `/subscribe/<name>` URL path unescaped.)
   */
  notify(channel: string, tag: string): string {
    return `${this.prefix}!${tag}:${channel}`;
  }

  /**
   * On a Redis Cluster, the shard channel (`SSUBSCRIBE`/`SPUBLISH`) that wakes a channel's readers:
   * named like its stream, so in its slot. Shard channels and keys are separate name spaces.
   */
  wakeUpShard(channel: string): string {
    return this.stream(channel);
  }

  /** Keys of edge-sse's own, outside every channel's: `#` is in no prefix and no channel name. */
  appId(): string {
    return `${this.prefix}#id`;
  }

  idempotency(key: string): string {
    return `${this.prefix}#idem:${key}`;
  }

  /**
   * An idempotency key kept in `channel`'s slot, for a Redis Cluster, where a script may only
   * touch keys of one slot: `<prefix>{<channel>}#idem:<key>`.
   */
  idempotencyBeside(channel: string, key: string): string {
    return `${this.stream(channel)}#idem:${key}`;
  }

  /** The channel of a stream key or wake-up shard channel (`<prefix>{<channel>}`). */
  channelOf(key: string): string {
    return key.slice(this.prefix.length + 1, -1);
  }
}
