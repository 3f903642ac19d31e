// The proxy's own answers, in OpenAI's error shape, so SDKs map them to the right exception classes.
import { STATUS_CODES, type ServerResponse } from 'node:http';
import type { LimitError } from '../limits/rejections.js';
import { lingerAfterAnswer } from './linger.js';

/** The `code` values the proxy itself produces. */
export type ProxyErrorCode =
  | 'invalid_api_key'
  | 'unknown_url'
  | 'model_not_found'
  | 'method_not_allowed'
  | 'request_too_large'
  | 'bad_gateway'
  | 'service_unavailable'
  | 'gateway_timeout'
  | 'bad_request'
  | 'request_timeout'
  | 'headers_too_large'
  | 'expectation_failed';

/** One error answer: status, OpenAI `type`, stable `code`, a message that never contains a key. */
export interface ProxyError {
  status: number;
  type: string;
  code: ProxyErrorCode;
  message: string;
  param?: string | null;
  headers?: Record<string, string>;
}

/** The request's id (server.ts puts it in the request's headers) for an answer of the proxy's own. */
export function requestIdHeader(res: ServerResponse): { 'x-request-id'?: string } {
  const id = res.req?.headers['x-request-id'];
  return typeof id === 'string' ? { 'x-request-id': id } : {};
}

/** Writes a JSON body with the right length; does nothing when the client is gone or headers already went. */
export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  if (res.headersSent || res.destroyed) return;
  if (headers.connection === 'close') lingerAfterAnswer(res);
  const text = JSON.stringify(body);
  // The reason phrase given explicitly: a writeHead that failed on a backend's bad header left its phrase behind.
  res.writeHead(status, STATUS_CODES[status] ?? 'unknown', {
    ...headers,
    ...requestIdHeader(res),
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(text),
  });
  res.end(text);
}

/** Answers with an OpenAI-shaped error body (the proxy's own errors, and a key policy's refusals). */
export function sendError(res: ServerResponse, err: ProxyError | LimitError): void {
  sendJson(res, err.status, errorBody(err), err.headers);
}

/** OpenAI's error object, the one shape of every error body the proxy writes. */
function errorBody(err: Pick<ProxyError, 'message' | 'type' | 'code' | 'param'> | LimitError): { error: { message: string; type: string; param: string | null; code: string } } {
  return { error: { message: err.message, type: err.type, param: err.param ?? null, code: err.code } };
}

/** Seconds a client should wait before retrying while the backend is not ready. */
export const retryAfterSeconds = 5;

/** 401 for a request without any key. */
export const missingKey: ProxyError = {
  status: 401,
  type: 'invalid_request_error',
  code: 'invalid_api_key',
  message:
    "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
  headers: { 'www-authenticate': 'Bearer' },
};

/** 401 for a key that matches none of the configured ones (the key is never echoed). */
export const invalidKey: ProxyError = {
  status: 401,
  type: 'invalid_request_error',
  code: 'invalid_api_key',
  message: 'Incorrect API key provided.',
  headers: { 'www-authenticate': 'Bearer' },
};

/** 404 for a path outside the allowlist. */
export function unknownRoute(method: string, path: string): ProxyError {
  const shown = path.length > 200 ? path.slice(0, 200) + '...' : path;
  return { status: 404, type: 'invalid_request_error', code: 'unknown_url', message: `Unknown request URL: ${method} ${shown}.` };
}

/** 404 for a model that is neither the served name nor an alias (same wording as vLLM). */
export function unknownModel(model: string): ProxyError {
  const shown = model.length > 200 ? model.slice(0, 200) + '...' : model;
  return { status: 404, type: 'invalid_request_error', code: 'model_not_found', param: 'model', message: `The model \`${shown}\` does not exist.` };
}

/** 405 for a known path with the wrong method. */
export function methodNotAllowed(method: string, allow: readonly string[]): ProxyError {
  return {
    status: 405,
    type: 'invalid_request_error',
    code: 'method_not_allowed',
    message: `Method ${method} is not allowed here; use ${allow.join(' or ')}.`,
    headers: { allow: allow.join(', ') },
  };
}

/**
 * 400 for a body the proxy must read (a key's allowlist or limits, an upload's model) and cannot read as vLLM would:
 * forwarded, vLLM might read it otherwise than the proxy checked it.
 */
export function unreadableBody(why: string): ProxyError {
  return { status: 400, type: 'invalid_request_error', code: 'bad_request', message: `The request body cannot be read: ${why}.` };
}

/** 413 for a body over the cap; the connection is closed since the rest of the body is not read. */
export function tooLarge(max: number): ProxyError {
  return {
    status: 413,
    type: 'invalid_request_error',
    code: 'request_too_large',
    message: `Request body too large: the limit is ${max} bytes.`,
    headers: { connection: 'close' },
  };
}

/**
 * 503 while the backend is starting, restarting or draining; and for a model whose restart budget ran out, without
 * Retry-After since it does not come back by itself. Each closes the connection: a client's retry (OpenAI's SDKs
 * retry a 503 by themselves) on the same keep-alive socket would only reach this instance again, while a new
 * connection reaches a replica that serves (a load balancer, or kube-proxy, balances per connection).
 */
export function unavailable(state: string): ProxyError {
  if (state === 'failed') {
    return {
      status: 503,
      type: 'server_error',
      code: 'service_unavailable',
      message: 'The model server failed repeatedly and was stopped; it stays down until the service restarts.',
      headers: { connection: 'close' },
    };
  }
  const why = state === 'draining' ? 'is shutting down' : state === 'restarting' ? 'is restarting' : 'is starting';
  return {
    status: 503,
    type: 'server_error',
    code: 'service_unavailable',
    message: `The model server ${why}; retry later.`,
    headers: { 'retry-after': String(retryAfterSeconds), connection: 'close' },
  };
}

/**
 * 400 for an HTTP/1.1 request without a Host header (RFC 9112 section 3.2 requires the refusal). Node's server would
 * send it itself, bare (no body, no request id) and out of the access log; server.ts turns that check off so that it
 * comes here. It closes the connection, as Node's and nginx's do.
 */
export const missingHost: ProxyError = {
  status: 400,
  type: 'invalid_request_error',
  code: 'bad_request',
  message: 'An HTTP/1.1 request must have a Host header; send one (every HTTP client library does).',
  headers: { connection: 'close' },
};

/**
 * 502 when the backend cannot be reached or broke the connection before answering. It closes the connection, as the
 * 503s do: it comes mostly from a vLLM that just went down (the moment before the supervisor says `restarting`), and
 * an SDK's own retry on a new connection can reach a replica that serves, where this one would only get another 502.
 */
export const badGateway: ProxyError = {
  status: 502,
  type: 'server_error',
  code: 'bad_gateway',
  message: 'The model server could not be reached.',
  headers: { 'retry-after': String(retryAfterSeconds), connection: 'close' },
};

/** 504 when the backend sent no response headers within the first-byte timeout. */
export function gatewayTimeout(seconds: number): ProxyError {
  return { status: 504, type: 'server_error', code: 'gateway_timeout', message: `The model server did not answer within ${seconds} s.` };
}

/**
 * The raw HTTP answer to a request Node's parser refused or timed out (server 'clientError': there is no response
 * object), still in OpenAI's shape, and closing the connection since the rest of that request cannot be trusted.
 */
export function clientErrorResponse(errorCode: string | undefined): { status: number; raw: string } {
  const [status, reason, code, message]: [number, string, ProxyErrorCode, string] =
    errorCode === 'ERR_SSL_HTTP_REQUEST'
      ? [400, 'Bad Request', 'bad_request', 'This port serves HTTPS: use https:// in the client\'s base URL, not http://.']
      : errorCode === 'ERR_HTTP_REQUEST_TIMEOUT'
      ? [408, 'Request Timeout', 'request_timeout', 'The request was not received in time (proxy.headers_timeout / proxy.body_timeout).']
      : errorCode === 'HPE_HEADER_OVERFLOW'
        ? [431, 'Request Header Fields Too Large', 'headers_too_large', 'The request headers are too large.']
        : [400, 'Bad Request', 'bad_request', 'The request is not valid HTTP/1.1.'];
  return rawError(status, reason, code, message);
}

/** The raw answer to CONNECT: llmserve is no forward proxy and tunnels nothing. */
export function connectRefused(): { status: number; raw: string } {
  return rawError(405, 'Method Not Allowed', 'method_not_allowed', 'CONNECT is not supported: this is an API server, not a forward proxy; send requests to its URL directly.');
}

/**
 * The answer to an HTTP/2 client with prior knowledge (`PRI * HTTP/2.0`: gRPC-style clients, a mesh sidecar told the
 * port speaks h2c): HTTP/2 frames it can read, an empty SETTINGS then a GOAWAY with HTTP_1_1_REQUIRED (RFC 9113
 * section 7) and the reason as its debug text. An HTTP/1.1 answer was unreadable to it ("Empty reply from server").
 */
export function http2Refusal(): { status: number; raw: Buffer } {
  const text = Buffer.from('this port speaks HTTP/1.1 only (llmserve): use HTTP/1.1 or an h2c upgrade', 'latin1');
  const frame = (type: number, payload: Buffer): Buffer => {
    const head = Buffer.alloc(9);
    head.writeUIntBE(payload.length, 0, 3);
    head[3] = type;
    return Buffer.concat([head, payload]);
  };
  const goaway = Buffer.alloc(8);
  goaway.writeUInt32BE(0, 0); // last stream id: none was processed
  goaway.writeUInt32BE(0xd, 4); // HTTP_1_1_REQUIRED
  return { status: 505, raw: Buffer.concat([frame(0x4, Buffer.alloc(0)), frame(0x7, Buffer.concat([goaway, text]))]) };
}

/** One raw HTTP/1.1 error answer in OpenAI's shape that closes the connection. */
function rawError(status: number, reason: string, code: ProxyErrorCode, message: string): { status: number; raw: string } {
  const body = JSON.stringify(errorBody({ message, type: 'invalid_request_error', code }));
  return { status, raw: `HTTP/1.1 ${status} ${reason}\r\ncontent-type: application/json\r\nconnection: close\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body}` };
}

/**
 * 417 for an `Expect` other than `100-continue`, which RFC 9110 (section 10.1.1) says to refuse so. Node would answer
 * it itself, bare and out of the access log: server.ts hands such requests to the handler instead.
 */
export function expectationFailed(value: string): ProxyError {
  const shown = value.length > 100 ? value.slice(0, 100) + '...' : value;
  return { status: 417, type: 'invalid_request_error', code: 'expectation_failed', message: `Expect: ${shown} is not supported; only 100-continue is (or send no Expect header).` };
}
