/**
 * The app id: a random 128-bit hex string at `<prefix>#id`, kept without a TTL. Everyone who uses
 * that Redis database under that prefix shares it, and nobody else learns it (pub/sub shows only a
 * hash of it). Wake-ups are signed with it and published on channels named by its hash, so
 * another app on the same Redis — another prefix, or another database number, which pub/sub
 * ignores — never hears them, and someone who can only PUBLISH cannot forge one.
 *
 * Whoever needs it and finds none creates it: the publish script (in the same step as its XADDs)
 * or a reader (`SET NX`, then `GET`). Each offers the id it last knew, so a key that was deleted
 * comes back as it was and the readers listening on its channels keep hearing.
 */
import type { CallOptions } from '../contract.js';
import type { Reply } from './commands/command.js';
import { appIdCommands, decodeAppId } from './commands/app-id.js';
import type { KeySpace } from './keys.js';
import { sha1Hex, toHex } from './sha1.js';
import type { RedisCommand, RedisTransport } from './transport.js';

export class AppId {
  private known: string | undefined;
  private asking: Promise<string> | undefined;
  private listeners = new Set<(id: string) => void>();

  /**
   * `shared`: whether one process may share a request and its outcome between connections
   * (false on Cloudflare Workers, where one request's I/O must not serve another).
   */
  constructor(
    private transport: RedisTransport,
    private keys: KeySpace,
    private shared: boolean,
  ) {}

  get current(): string | undefined {
    return this.known;
  }

  /** What to offer when none is stored: the id last known, else a fresh one. */
  candidate(): string {
    return this.known ?? randomId();
  }

  /** Ensures and reads the id, for a pipeline; pass both replies to `learnFrom`. */
  commands(): RedisCommand[] {
    return appIdCommands(this.keys, this.candidate());
  }

  /** The id, asked of Redis the first time (one request) and remembered. */
  async get(call: CallOptions): Promise<string> {
    if (this.known !== undefined) return this.known;
    if (!this.shared) return this.ask(call);
    // Shared between callers, so no caller's signal may end it for the others.
    this.asking ??= this.ask({ onRequest: call.onRequest }).finally(() => (this.asking = undefined));
    return this.asking;
  }

  private async ask(call: CallOptions): Promise<string> {
    const [set, get] = await this.transport.pipeline(this.commands(), call);
    return this.learnFrom(set, get);
  }

  /** Reads the replies to `commands()`; a GET that found nothing (the SET refused) is a failure. */
  learnFrom(set: Reply | undefined, get: Reply | undefined): string {
    return this.learn(decodeAppId(this.keys, set, get));
  }

  /** Takes the id Redis holds now; listeners hear when it changed (Redis lost it and someone made a new one). */
  learn(id: string): string {
    if (id === this.known) return id;
    const changed = this.known !== undefined;
    this.known = id;
    if (changed && this.shared) for (const listener of this.listeners) listener(id);
    return id;
  }

  /** Calls `listener` with each new id (only where connections may share I/O). Returns the unsubscribe. */
  onChange(listener: (id: string) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
}

function randomId(): string {
  return toHex(crypto.getRandomValues(new Uint8Array(16)));
}

const tags = new Map<string, Promise<string>>();

/** The public name of an app id in pub/sub channel names: the first 16 hex digits of its SHA-1. */
export function tagOf(id: string): Promise<string> {
  let tag = tags.get(id);
  if (!tag) {
    if (tags.size > 16) tags.clear();
    tags.set(id, (tag = sha1Hex(id).then((hex) => hex.slice(0, 16))));
  }
  return tag;
}
