/** @type {import('next').NextConfig} */
const nextConfig = {
  // Events must reach the browser one by one: edge-sse sends `Cache-Control: no-transform`,
  // which keeps Next's gzip off the stream, so compression can stay on for everything else.
};

export default nextConfig;
