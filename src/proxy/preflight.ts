// What a CORS pre-flight is, judged as vLLM's CORS layer (Starlette's CORSMiddleware) will see the request upstream.
import type { IncomingMessage } from 'node:http';
import { connectionTokens } from './headers.js';

/**
 * True for a browser's CORS pre-flight, which the proxy forwards without a key: OPTIONS with `Origin` and
 * `Access-Control-Request-Method` (both, as the middleware needs to answer it itself), neither named in `Connection`
 * (the forwarder drops such headers, and vLLM would then pass the bare OPTIONS to its endpoints), and no body (a
 * browser sends none, and a key-free request carries nothing to vLLM).
 */
export function isPreflight(req: IncomingMessage): boolean {
  const { headers } = req;
  if (req.method !== 'OPTIONS' || headers.origin === undefined || headers['access-control-request-method'] === undefined) return false;
  if (headers['transfer-encoding'] !== undefined || (headers['content-length'] !== undefined && headers['content-length'] !== '0')) return false;
  if (headers.connection === undefined) return true;
  const listed = connectionTokens(headers.connection);
  return !listed.includes('origin') && !listed.includes('access-control-request-method');
}
