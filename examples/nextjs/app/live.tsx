'use client';

import { type FormEvent, useEffect, useState } from 'react';

interface Received {
  id: string;
  type: string;
  data: string;
}

/** Listens to one channel with EventSource and publishes to it through /api/send. */
export function Live({ channel }: { channel: string }) {
  const [events, setEvents] = useState<Received[]>([]);
  const [state, setState] = useState('connecting');
  const [error, setError] = useState('');

  useEffect(() => {
    // EventSource reconnects by itself and sends Last-Event-ID, so nothing is missed.
    const source = new EventSource(`/api/stream?channel=${encodeURIComponent(channel)}`);
    const add = (event: MessageEvent<string>) =>
      setEvents((list) => [{ id: event.lastEventId, type: event.type, data: event.data }, ...list].slice(0, 100));
    source.addEventListener('message', add);
    source.addEventListener('greeting', add);
    source.addEventListener('sse:ready', () => setState('live'));
    source.addEventListener('sse:gap', () => setError('Some events expired before this page could read them.'));
    source.onopen = () => setState('live');
    source.onerror = () => setState(source.readyState === EventSource.CLOSED ? 'closed' : 'reconnecting');
    return () => source.close();
  }, [channel]);

  async function publish(event: FormEvent<HTMLFormElement>) {
    event.preventDefault();
    const form = new FormData(event.currentTarget);
    const response = await fetch('/api/send', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ type: form.get('type'), data: form.get('data'), channel }),
    });
    setError(response.ok ? '' : ((await response.json()) as { error: string }).error);
  }

  return (
    <>
      <p>
        Channel <code>{channel}</code> (change it with <code>?channel=</code>): <strong id="state">{state}</strong>
      </p>
      <form id="publish-form" onSubmit={publish} style={{ display: 'flex', gap: '0.5rem' }}>
        <select id="type" name="type" defaultValue="message">
          <option value="message">message</option>
          <option value="greeting">greeting</option>
        </select>
        <input id="data" name="data" placeholder="Say something" required style={{ flex: 1 }} />
        <button type="submit">Send</button>
      </form>
      {error && <p role="alert">{error}</p>}
      <ul id="events">
        {events.map((event) => (
          <li key={event.id}>
            <code>{event.type}</code> {event.data}
          </li>
        ))}
      </ul>
    </>
  );
}
