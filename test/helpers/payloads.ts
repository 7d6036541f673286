/** Payloads that break naive SSE encoders. */
export const TRICKY_PAYLOADS: Record<string, string> = {
  'empty string': '',
  'leading space': ' leading space',
  'two leading spaces': '  two',
  'leading colon': ':not a comment',
  CR: 'a\rb',
  LF: 'a\nb',
  CRLF: 'a\r\nb',
  'trailing newline': 'line\n',
  'only newlines': '\n\n\n',
  'mixed line breaks': '\r\n\r\n\n\r',
  NUL: 'nul\0inside',
  'unicode and emoji': 'héllo wörld 🌍👩‍👩‍👧 中文 \u2028 \u2029',
  'looks like frames': 'data: x\n\nevent: evil',
  'id and retry lines': 'id: 666\nretry: 1',
  'JSON with newlines in strings': JSON.stringify({ text: 'line1\nline2', nested: { crlf: 'a\r\nb' } }),
  '50 KB': 'x'.repeat(50 * 1024),
};
