'use client';

import { useChat } from '@ai-sdk/react';
import { DefaultChatTransport, type UIMessage } from 'ai';
import { type FormEvent, useState } from 'react';

/** useChat with `resume`: on load it asks GET /api/chat/<id>/stream for an answer still streaming. */
export function Chat({ id, initialMessages }: { id: string; initialMessages: UIMessage[] }) {
  const [transport] = useState(
    () =>
      new DefaultChatTransport({
        api: '/api/chat',
        // The server keeps the history: send only the new message.
        prepareSendMessagesRequest: ({ id: chatId, messages }) => ({ body: { id: chatId, message: messages.at(-1) } }),
      }),
  );
  const { messages, sendMessage, status } = useChat({ id, messages: initialMessages, resume: true, transport });
  const [input, setInput] = useState('');

  function submit(event: FormEvent<HTMLFormElement>) {
    event.preventDefault();
    if (input.trim() === '') return;
    void sendMessage({ text: input });
    setInput('');
  }

  return (
    <>
      <ul id="messages">
        {messages.map((message) => (
          <li key={message.id} data-role={message.role}>
            <strong>{message.role}:</strong>{' '}
            {message.parts.map((part, index) => (part.type === 'text' ? <span key={index}>{part.text}</span> : null))}
          </li>
        ))}
      </ul>
      <p>
        Status: <strong id="status">{status}</strong>
      </p>
      <form id="chat-form" onSubmit={submit} style={{ display: 'flex', gap: '0.5rem' }}>
        <input
          id="prompt"
          value={input}
          onChange={(event) => setInput(event.target.value)}
          placeholder="Ask something"
          style={{ flex: 1 }}
        />
        <button type="submit" disabled={status === 'streaming' || status === 'submitted'}>
          Send
        </button>
      </form>
    </>
  );
}
