/**
 * Reading a body (a request's or a response's) without trusting its size: one over the limit is
 * refused as early as its Content-Length says so, and otherwise its reading stops, and the stream
 * is cancelled, at the first chunk past the limit. What was read is dropped at once.
 */
export async function readTextUpTo(message: Request | Response, maxBytes: number): Promise<string | undefined> {
  const declared = Number(message.headers.get('Content-Length') ?? NaN);
  if (declared > maxBytes) {
    await message.body?.cancel().catch(() => undefined);
    return undefined;
  }
  if (!message.body) return '';
  const reader = message.body.getReader();
  // As Request.text() decodes: UTF-8, a BOM dropped, malformed bytes replaced.
  const decoder = new TextDecoder();
  const parts: string[] = [];
  let bytes = 0;
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    bytes += value.byteLength;
    if (bytes > maxBytes) {
      await reader.cancel().catch(() => undefined);
      return undefined;
    }
    parts.push(decoder.decode(value, { stream: true }));
  }
  parts.push(decoder.decode());
  return parts.join('');
}
