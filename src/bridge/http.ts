import type { ServerResponse } from 'node:http';

/** Every bridge answer except a live subscription and a RESP2 reply is JSON, errors included. */
function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  sendJsonText(res, status, JSON.stringify(body), headers);
}

/** JSON written by the bridge itself (exact integers, see encoding.ts). */
export function sendJsonText(res: ServerResponse, status: number, json: string, headers: Record<string, string> = {}): void {
  send(res, status, 'application/json; charset=utf-8', Buffer.from(json, 'utf8'), headers);
}

/** `Upstash-Response-Format: resp2` replies. */
export function sendResp2(res: ServerResponse, status: number, bytes: Buffer): void {
  send(res, status, 'application/octet-stream', bytes, {});
}

export function sendError(res: ServerResponse, status: number, message: string, headers?: Record<string, string>): void {
  sendJson(res, status, { error: message }, headers);
}

function send(res: ServerResponse, status: number, type: string, body: Buffer, headers: Record<string, string>): void {
  if (res.headersSent) {
    // A stream was already under way; the only thing left to say is that it is over.
    if (!res.writableEnded) res.end();
    return;
  }
  if (res.destroyed) return;
  res.writeHead(status, { 'Content-Type': type, 'Content-Length': body.length, ...headers });
  res.end(body);
}
