import { EventSource } from 'eventsource';

interface ReceivedEvent {
  type: string;
  id: string;
  data: string;
}

/**
 * Opens the `eventsource` npm client (a real client nobody here wrote) on `url`, records the
 * `types` it is told to listen for, and resolves once `sse:ready` says the stream joined the live
 * feed: nothing published after that is missed. The caller closes `source`.
 */
export async function listenWithEventSource(url: string, types: string[]) {
  const source = new EventSource(url);
  const received: ReceivedEvent[] = [];
  for (const type of types) {
    source.addEventListener(type, (event) => received.push({ type, id: event.lastEventId, data: event.data }));
  }
  try {
    await new Promise((resolve, reject) => {
      source.addEventListener('sse:ready', resolve, { once: true });
      source.addEventListener('error', reject, { once: true });
    });
  } catch (error) {
    source.close();
    throw error;
  }
  return { source, received };
}
