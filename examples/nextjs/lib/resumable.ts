import { after } from 'next/server';
import { createResumableStreamContext } from 'edge-sse/resumable';
import { backend } from './sse';

/**
 * Resumable answers, kept in Redis beside the events (the same backend): a reload, a dropped
 * connection or a second tab picks the answer up again, on any instance. `after` keeps the
 * function alive until the whole answer is stored, even after its client left.
 */
export const streams = createResumableStreamContext({ backend, waitUntil: after });
