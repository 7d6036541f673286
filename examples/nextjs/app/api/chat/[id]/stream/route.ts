import { UI_MESSAGE_STREAM_HEADERS } from 'ai';
import { isChatId, readChat } from '../../../../../lib/chats';
import { streams } from '../../../../../lib/resumable';

export const maxDuration = 300;

/**
 * GET /api/chat/<id>/stream: what useChat's `resume` asks for when the page loads. The answer
 * being streamed, from its start (the client replays it), or 204 when there is none.
 */
export async function GET(_request: Request, { params }: { params: Promise<{ id: string }> }): Promise<Response> {
  const { id } = await params;
  if (!isChatId(id)) return Response.json({ error: 'Unknown chat id' }, { status: 400 });
  const { activeStreamId } = readChat(id);
  if (!activeStreamId) return new Response(null, { status: 204 });
  const stream = await streams.resumeExistingStream(activeStreamId);
  if (!stream) return new Response(null, { status: 204 }); // finished meanwhile: the page has it
  return new Response(stream.pipeThrough(new TextEncoderStream()), { headers: UI_MESSAGE_STREAM_HEADERS });
}
