// The state of one request/response pair, shared by the server, the forwarder and the access log.
import { randomUUID } from 'node:crypto';
import type { UpstreamCall } from './upstream/client.js';
import type { Socket } from 'node:net';
import type { Meter } from '../usage/meter.js';

/** One request in flight: what the access log reports and what the forwarder must cancel. */
export interface Exchange {
  /** Monotonic start time, ms. */
  readonly start: number;
  readonly method: string;
  /** Path without the query string (never the query: it could hold secrets). */
  readonly path: string;
  readonly socket: Socket;
  /**
   * socket.bytesWritten when this response began: at the request for a response that has the socket at once; for
   * one queued behind another (pipelining), when the socket is handed to it; null until then.
   */
  bytesAtStart: number | null;
  /** socket.bytesWritten when this response ended, set only when a queued response took the socket from it. */
  bytesAtEnd: number | null;
  /** The client's X-Request-Id when it is a safe token, else a new UUID: sent to vLLM and back, and logged. */
  readonly requestId: string;
  /** Key name, `-` when none. */
  keyName: string;
  /** Requested model, `-` unless the body was parsed. */
  model: string;
  /** A health probe (not logged unless logHealth). */
  health: boolean;
  /** Time to first byte, ms, once response headers went out. */
  ttfb: number | null;
  /** The upstream request, once the forwarder created it. */
  proxyReq: UpstreamCall | null;
  /** The first-byte deadline, cleared when the response head arrives. */
  timer: NodeJS.Timeout | null;
  /** The client's response closed (finished or aborted). */
  closed: boolean;
  /**
   * The proxy already answered on its own (413 while streaming, 504), or the backend broke the response after its
   * head went out (`upstream-error`: the client's response was cut): later upstream errors are ignored.
   * `shutdown`: the proxy closed while the response was still going (it outlived drain.timeout).
   */
  answered: 'too-large' | 'timeout' | 'upstream-error' | 'shutdown' | 'request-timeout' | 'bad-request' | null;
  /** Why the proxy refused the request itself (`llmserve_rejected_total{reason}`), or null. */
  rejected: string | null;
  /** Watches the response for token usage; only for metered keys (a key with a policy, or usage.track: all). */
  meter: Meter | null;
  /** The limiter admitted the request: its parallel slot is freed and its tokens counted at the end. */
  admitted: boolean;
  /** The response is a stream (server-sent events), counted in llmserve_active_streams while open. */
  streaming: boolean;
  /** Counted as a key's usage (false for /metrics scrapes). */
  counted: boolean;
}

/**
 * A client's request id that may be kept: up to 128 visible ASCII characters without `"` or `\`, so that it goes into
 * a log line as it is (a UUID, a ULID, an AWS trace id `Root=1-...;Parent=...` all pass).
 */
const SAFE_REQUEST_ID = /^[!#-\[\]-~]{1,128}$/;

/** A fresh exchange for a request. */
export function newExchange(start: number, method: string, url: string | undefined, socket: Socket, clientRequestId?: string | string[]): Exchange {
  const raw = url ?? '';
  const q = raw.indexOf('?');
  return {
    start,
    method,
    path: q >= 0 ? raw.slice(0, q) : raw,
    socket,
    bytesAtStart: socket.bytesWritten,
    bytesAtEnd: null,
    requestId: typeof clientRequestId === 'string' && SAFE_REQUEST_ID.test(clientRequestId) ? clientRequestId : randomUUID(),
    keyName: '-',
    model: '-',
    health: false,
    ttfb: null,
    proxyReq: null,
    timer: null,
    closed: false,
    answered: null,
    rejected: null,
    meter: null,
    admitted: false,
    streaming: false,
    counted: true,
  };
}

/** The bytes this exchange's response put on the wire (status line, headers, body and chunk framing). */
export function responseBytes(ex: Exchange): number {
  // A response that never got the socket (its connection closed while it waited behind another) sent nothing.
  if (ex.bytesAtStart === null) return 0;
  return (ex.bytesAtEnd ?? ex.socket.bytesWritten) - ex.bytesAtStart;
}

/** Status codes logged for a response that did not finish, by who cut it. */
const CUT_STATUS = { 'too-large': 413, timeout: 504, 'upstream-error': 502, shutdown: 503, 'request-timeout': 408, 'bad-request': 400 } as const;

/**
 * The status the access log and the metrics report: the one sent, once the response finished; 502/504/413 when the
 * proxy cut it (the backend died mid-stream, the drain ran out...), 408/400 when Node's parser refused the rest of the
 * request (its body stopped coming, or broke); else 499, nginx's code for a client that left first.
 */
export function finalStatus(ex: Exchange, res: { writableFinished: boolean; statusCode: number }): number {
  if (res.writableFinished) return res.statusCode;
  return ex.answered === null ? 499 : CUT_STATUS[ex.answered];
}
