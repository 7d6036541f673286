import { generateId } from 'ai';
import { redirect } from 'next/navigation';
import { isChatId, readChat } from '../../lib/chats';
import { Chat } from './chat';

export const dynamic = 'force-dynamic';

// `/chat?id=…` opens a chat; without one, a new chat.
export default async function ChatPage({ searchParams }: { searchParams: Promise<{ id?: string | string[] }> }) {
  const { id } = await searchParams;
  if (!isChatId(id)) redirect(`/chat?id=${generateId()}`);
  return (
    <main>
      <h1>Resumable AI chat</h1>
      <p>Reload the page while the answer streams: it picks up where it was.</p>
      <Chat id={id} initialMessages={readChat(id).messages} />
    </main>
  );
}
