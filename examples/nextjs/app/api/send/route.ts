import { ValidationError, sendEvent } from 'edge-sse';
import { backend } from '../../../lib/sse';

/**
 * POST /api/send { "type": "message", "data": …, "channel": "sse" } → { "id": … }.
 * This demo lets anyone publish: check who is calling before you deploy it for real.
 */
export async function POST(request: Request): Promise<Response> {
  let body: { type?: unknown; data?: unknown; channel?: unknown };
  try {
    body = await request.json();
  } catch {
    return Response.json({ error: 'Send a JSON object: { "type": "message", "data": "hello", "channel": "sse" }' }, { status: 400 });
  }
  if (typeof body !== 'object' || body === null) return Response.json({ error: 'Send a JSON object' }, { status: 400 });
  try {
    const id = await sendEvent(body.type as string, body.data, {
      backend,
      channel: typeof body.channel === 'string' && body.channel !== '' ? body.channel : undefined,
    });
    return Response.json({ id });
  } catch (error) {
    if (error instanceof ValidationError) return Response.json({ error: error.message }, { status: 400 });
    throw error;
  }
}
