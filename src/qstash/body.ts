/**
 * Reads a request body up to a size limit, never further: a body over the limit is refused as
 * early as its Content-Length says so, and otherwise its reading stops (and the stream is
 * cancelled) at the first chunk past the limit — before anyone checks who sent it.
 */
export async function readBodyUpTo(request: Request, limit: number): Promise<string | undefined> {
  const declared = Number(request.headers.get('Content-Length') ?? NaN);
  if (declared > limit) {
    await request.body?.cancel().catch(() => undefined);
    return undefined;
  }
  if (!request.body) return '';
  const reader = request.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > limit) {
      await reader.cancel().catch(() => undefined);
      return undefined;
    }
    chunks.push(value);
  }
  const bytes = new Uint8Array(size);
  let offset = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, offset);
    offset += chunk.byteLength;
  }
  // As Request.text() decodes: UTF-8, a BOM dropped, malformed bytes replaced.
  return new TextDecoder().decode(bytes);
}
