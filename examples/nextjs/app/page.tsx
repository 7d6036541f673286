import { Live } from './live';

// `?channel=` picks the channel to listen and publish to (default "sse", as in Flask-SSE).
export default async function Page({ searchParams }: { searchParams: Promise<{ channel?: string | string[] }> }) {
  const { channel } = await searchParams;
  const name = typeof channel === 'string' && channel !== '' ? channel : 'sse';
  return (
    <main>
      <h1>edge-sse on Next.js</h1>
      <Live channel={name} />
    </main>
  );
}
