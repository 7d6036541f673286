import type { UIMessage } from 'ai';

/**
 * The chats: their messages, and the id of the answer being streamed, if any. Kept in this
 * process for the example (on `globalThis`, which every route of `next start` shares); an app
 * keeps them in its database, so that every instance sees them.
 */
export interface StoredChat {
  messages: UIMessage[];
  activeStreamId: string | null;
}

const chats: Map<string, StoredChat> = ((globalThis as { exampleChats?: Map<string, StoredChat> }).exampleChats ??= new Map());

/** Chat ids come from URLs: the same characters AI SDK's generateId uses. */
export function isChatId(id: unknown): id is string {
  return typeof id === 'string' && /^[A-Za-z0-9_-]{1,64}$/.test(id);
}

export function readChat(id: string): StoredChat {
  return chats.get(id) ?? { messages: [], activeStreamId: null };
}

export function saveChat(id: string, update: Partial<StoredChat>): void {
  chats.set(id, { ...readChat(id), ...update });
}
