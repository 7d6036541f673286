import { convertToModelMessages, generateId, streamText, type UIMessage } from 'ai';
import { isChatId, readChat, saveChat } from '../../../lib/chats';
import { model } from '../../../lib/model';
import { streams } from '../../../lib/resumable';

export const maxDuration = 300;

/**
 * POST /api/chat { id, message } → the answer as AI SDK's UI message stream. A copy of the same
 * stream is stored as a resumable stream, whose id the chat keeps until the answer is complete:
 * a client that reloads resumes it through GET /api/chat/<id>/stream.
 */
export async function POST(request: Request): Promise<Response> {
  const { id, message } = (await request.json().catch(() => ({}))) as { id?: unknown; message?: UIMessage };
  if (!isChatId(id) || typeof message !== 'object' || message === null) {
    return Response.json({ error: 'Send { id, message }: a chat id of A-Z a-z 0-9 _ - and the new UI message' }, { status: 400 });
  }
  const messages = [...readChat(id).messages, message];
  saveChat(id, { messages, activeStreamId: null });
  // No abortSignal: the answer runs to its end whoever reads it, so that it can be resumed.
  const result = streamText({ model, messages: await convertToModelMessages(messages) });
  return result.toUIMessageStreamResponse({
    originalMessages: messages,
    generateMessageId: generateId,
    onFinish: ({ messages: finished }) => saveChat(id, { messages: finished, activeStreamId: null }),
    async consumeSseStream({ stream }) {
      const streamId = `${id}-${generateId()}`; // one stream per answer, named after its chat
      await streams.createNewResumableStream(streamId, () => stream);
      saveChat(id, { activeStreamId: streamId });
    },
  });
}
