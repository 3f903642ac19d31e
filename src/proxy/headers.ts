// Hop-by-hop headers (HTTP-PROXY.md item 6) and the request/response header edits done once per request.
import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http';
import { keyHeaders } from './auth.js';

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

/**
 * Never removed because a client listed them in Connection: they frame the body, route the request, or are what the
 * proxy judged it by. Why the last: `Connection: content-type` with `Content-Type: text/plain` made the proxy leave the
 * body unread (no model allowlist, no usage) and then drop the type, so vLLM read the body as JSON all the same; a
 * listed `X-Request-Id` dropped the proxy's own id on the way.
 */
const keptWhenListed: ReadonlySet<string> = new Set(['content-length', 'transfer-encoding', 'host', 'content-type', 'content-encoding', 'x-request-id']);

/** Names listed in a Connection header (they are hop-by-hop too). */
export function connectionTokens(value: string | string[] | undefined): string[] {
  if (value === undefined) return [];
  const text = Array.isArray(value) ? value.join(',') : value;
  return text.split(',').map((t) => t.trim().toLowerCase()).filter((t) => t.length > 0);
}

/** Request headers that never go upstream besides the hop-by-hop ones: keys (auth.ts), `Expect` and `Host` (replaced). */
const notForwarded: ReadonlySet<string> = new Set([...hopByHop, ...keyHeaders, 'expect', 'host']);

/**
 * The headers sent upstream, built in one pass over the client's (which stay untouched): without keys, hop-by-hop
 * headers (a client's `Connection: close` would defeat the upstream pool, HTTP-PROXY.md item 6) and names listed in
 * `Connection`, without `Expect` (Node already answered 100 Continue; upstream it would only delay the body); with
 * `Host` set to the backend's, the `X-Forwarded-For/-Port/-Proto/-Host` chain, and, with a rewritten body, its
 * length (item 9). `Transfer-Encoding` stays when the body is forwarded as it came (chunked without a length).
 */
export function upstreamHeaders(
  headers: IncomingHttpHeaders,
  newBodyLength: number | null,
  backendHost: string,
  client: { address: string | undefined; encrypted: boolean },
): OutgoingHttpHeaders {
  const listed = headers.connection === undefined ? null : connectionTokens(headers.connection);
  const out: OutgoingHttpHeaders = {};
  for (const name in headers) {
    if (notForwarded.has(name) || (listed !== null && listed.includes(name) && !keptWhenListed.has(name))) continue;
    out[name] = headers[name];
  }
  if (newBodyLength !== null) out['content-length'] = String(newBodyLength);
  else if (headers['transfer-encoding'] !== undefined) out['transfer-encoding'] = headers['transfer-encoding'];
  const host = headers.host;
  const proto = client.encrypted ? 'https' : 'http';
  const colon = host === undefined ? -1 : host.lastIndexOf(':');
  const port = host !== undefined && colon > host.lastIndexOf(']') ? host.slice(colon + 1) : client.encrypted ? '443' : '80';
  out['x-forwarded-for'] = appendForwarded(headers['x-forwarded-for'], client.address ?? '');
  out['x-forwarded-port'] = appendForwarded(headers['x-forwarded-port'], port);
  out['x-forwarded-proto'] = appendForwarded(headers['x-forwarded-proto'], proto);
  out['x-forwarded-host'] = headers['x-forwarded-host'] ?? host ?? '';
  out.host = backendHost;
  return out;
}

/** `prior,value` (or `value`): an X-Forwarded-* chain grows by one hop. */
function appendForwarded(prior: string | string[] | undefined, value: string): string {
  const text = Array.isArray(prior) ? prior.join(',') : prior;
  return text === undefined || text === '' ? value : text + ',' + value;
}

/** The backend's response headers without hop-by-hop ones, plus `X-Accel-Buffering: no` on event streams. */
export function responseHeaders(headers: IncomingHttpHeaders): OutgoingHttpHeaders {
  const listed = headers.connection === undefined ? null : new Set(connectionTokens(headers.connection));
  const out: OutgoingHttpHeaders = {};
  for (const name in headers) {
    if (hopByHop.has(name) || (listed !== null && listed.has(name) && !keptWhenListed.has(name))) continue;
    out[name] = headers[name];
  }
  // With both framings the body is read as chunked (Transfer-Encoding wins); the stale length must not reach the
  // client, which would frame the body by it: what follows would be read as the next response (RFC 9112 6.1).
  if (headers['transfer-encoding'] !== undefined) delete out['content-length'];
  const type = headers['content-type'];
  // Tells nginx-style buffering proxies in front of us to pass events through at once.
  if (type !== undefined && type.startsWith('text/event-stream')) out['x-accel-buffering'] = 'no';
  return out;
}

/** Query parameters named like a key: a client may send its key there as well, and vLLM has no use for one. */
const keyParams: ReadonlySet<string> = new Set(['api_key', 'api-key', 'apikey', 'key', 'x-api-key', 'access_token']);

/**
 * The request target without key-named query parameters. Why: vLLM's uvicorn logs every request line, query
 * included, and that line reaches llmserve's log; the key is the proxy's alone, never vLLM's (README, security).
 */
export function withoutKeyParams(target: string): string {
  const q = target.indexOf('?');
  if (q < 0) return target;
  const kept = target
    .slice(q + 1)
    .split('&')
    .filter((part) => {
      const eq = part.indexOf('=');
      const raw = eq < 0 ? part : part.slice(0, eq);
      let name: string;
      try {
        name = decodeURIComponent(raw.replace(/\+/g, ' '));
      } catch {
        name = raw;
      }
      return !keyParams.has(name.trim().toLowerCase());
    });
  return kept.length === 0 ? target.slice(0, q) : `${target.slice(0, q)}?${kept.join('&')}`;
}
