// A minimal HTTP/1.1 GET over a plain TCP socket, for `check`: loading node:http (client, parser, streams) costs
// more than the checks themselves, and `check` runs every few seconds in probe scripts.
import net from 'node:net';
import { httpGet, type HttpCheckResult } from './http-check.js';

const MAX_BODY = 65536;

/** GETs an http: URL with a deadline over a raw socket (https: goes to httpGet); never throws. */
export function rawGet(url: string, options: { timeoutMs: number; headers?: Record<string, string>; insecure?: boolean }): Promise<HttpCheckResult> {
  const target = new URL(url);
  if (target.protocol !== 'http:') return httpGet(url, options);
  const started = performance.now();
  return new Promise((resolve) => {
    let settled = false;
    const chunks: Buffer[] = [];
    let size = 0;
    const host = target.hostname.replace(/^\[|\]$/g, '');
    const socket = net.connect({ host, port: Number(target.port || 80) });
    const finish = (result: Omit<HttpCheckResult, 'ms'>) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      resolve({ ...result, ms: Math.round((performance.now() - started) * 10) / 10 });
    };
    const timer = setTimeout(() => finish({ ok: false, status: null, error: `timed out after ${options.timeoutMs} ms`, body: '', timedOut: true }), options.timeoutMs);
    socket.on('connect', () => {
      let head = `GET ${target.pathname}${target.search} HTTP/1.1\r\nHost: ${target.host}\r\nConnection: close\r\nAccept: application/json\r\n`;
      for (const [k, v] of Object.entries(options.headers ?? {})) head += `${k}: ${v}\r\n`;
      socket.write(head + '\r\n');
    });
    socket.on('data', (chunk: Buffer) => {
      if (size < MAX_BODY * 2) chunks.push(chunk);
      size += chunk.length;
      // Stop reading once a whole answer is in: Connection: close is a request, not every server honours it.
      const parsed = parseResponse(Buffer.concat(chunks));
      if (parsed) finish(parsed);
    });
    socket.on('end', () => finish(parseResponse(Buffer.concat(chunks), true) ?? { ok: false, status: null, error: 'connection closed before a complete answer', body: '' }));
    socket.on('error', (err: NodeJS.ErrnoException) => finish({ ok: false, status: null, error: err.code ?? err.message, body: '' }));
  });
}

/** Parses a complete HTTP/1.x response (content-length, chunked, or until close); null while incomplete. */
export function parseResponse(data: Buffer, closed = false): Omit<HttpCheckResult, 'ms'> | null {
  const headEnd = data.indexOf('\r\n\r\n');
  if (headEnd < 0) {
    if (!closed) return null;
    return { ok: false, status: null, error: data.length === 0 ? 'connection closed without an answer' : 'malformed HTTP answer', body: '' };
  }
  const lines = data.subarray(0, headEnd).toString('latin1').split('\r\n');
  const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(lines[0] ?? '')?.[1]);
  if (!Number.isInteger(status)) return { ok: false, status: null, error: 'malformed HTTP status line', body: '' };
  const headers = new Map<string, string>();
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(':');
    if (colon > 0) headers.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim());
  }
  const rest = data.subarray(headEnd + 4);
  let body: Buffer | null;
  if (headers.get('transfer-encoding')?.toLowerCase().includes('chunked')) body = dechunk(rest);
  else if (headers.has('content-length')) body = rest.length >= Number(headers.get('content-length')) ? rest.subarray(0, Number(headers.get('content-length'))) : null;
  else body = closed ? rest : null;
  if (body === null) return closed ? { ok: false, status, error: 'connection closed before the whole body', body: '' } : null;
  return { ok: status >= 200 && status < 300, status, error: null, body: body.subarray(0, MAX_BODY).toString('utf8') };
}

/** Decodes a chunked body; null while the terminating chunk has not arrived. */
function dechunk(data: Buffer): Buffer | null {
  const parts: Buffer[] = [];
  let at = 0;
  for (;;) {
    const lineEnd = data.indexOf('\r\n', at);
    if (lineEnd < 0) return null;
    const length = parseInt(data.subarray(at, lineEnd).toString('latin1'), 16);
    if (!Number.isFinite(length)) return null;
    if (length === 0) return Buffer.concat(parts);
    const start = lineEnd + 2;
    if (data.length < start + length + 2) return null;
    parts.push(data.subarray(start, start + length));
    at = start + length + 2;
  }
}
