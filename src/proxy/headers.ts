// Hop-by-hop headers (HTTP-PROXY.md item 6) and the request/response header edits done once per request.
import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http';
import { stripKeyHeaders } from './auth.js';

/** Headers that belong to one connection and must never be forwarded, either way. */
const hopByHop: ReadonlySet<string> = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'proxy-authorization',
  'proxy-authenticate',
]);

/** Never removed because a client listed them in Connection: they frame the body or route the request. */
const framing: ReadonlySet<string> = new Set(['content-length', 'transfer-encoding', 'host']);

/** Names listed in a Connection header (they are hop-by-hop too). */
function connectionTokens(value: string | string[] | undefined): string[] {
  if (value === undefined) return [];
  const text = Array.isArray(value) ? value.join(',') : value;
  return text.split(',').map((t) => t.trim().toLowerCase()).filter((t) => t.length > 0);
}

/**
 * Edits the client's headers in place before `proxy.web` (HTTP-PROXY.md item 4: with `Expect: 100-continue`
 * http-proxy skips `proxyReq`, so edits made there would not happen). Drops keys, hop-by-hop headers (a client's
 * `Connection: close` would defeat the upstream pool, item 6) and `Expect` (Node already answered 100 Continue to
 * the client; upstream it would only delay the body). With a rewritten body, sets its length (item 9).
 */
export function prepareRequestHeaders(headers: IncomingHttpHeaders, newBodyLength: number | null): void {
  for (const token of connectionTokens(headers.connection)) if (!framing.has(token)) delete headers[token];
  for (const name of hopByHop) if (name !== 'transfer-encoding') delete headers[name];
  delete headers.expect;
  stripKeyHeaders(headers);
  if (newBodyLength !== null) {
    headers['content-length'] = String(newBodyLength);
    delete headers['transfer-encoding'];
  }
}

/** The backend's response headers without hop-by-hop ones, plus `X-Accel-Buffering: no` on event streams. */
export function responseHeaders(headers: IncomingHttpHeaders): OutgoingHttpHeaders {
  const listed = headers.connection === undefined ? null : new Set(connectionTokens(headers.connection));
  const out: OutgoingHttpHeaders = {};
  for (const name in headers) {
    if (hopByHop.has(name) || (listed !== null && listed.has(name) && !framing.has(name))) continue;
    out[name] = headers[name];
  }
  const type = headers['content-type'];
  // Tells nginx-style buffering proxies in front of us to pass events through at once.
  if (type !== undefined && type.startsWith('text/event-stream')) out['x-accel-buffering'] = 'no';
  return out;
}
