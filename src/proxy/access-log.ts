// One access-log line per request, built from the exchange with plain concatenation and written once.
import type { ServerResponse } from 'node:http';
import type { Logger } from '../log.js';
import { finalStatus, type Exchange } from './exchange.js';

/** Characters that must not reach a text log line raw. */
const UNSAFE_IN_LINE = /[\s\x00-\x1f\x7f"\\]/;

/** Writes the line for a finished (or aborted) exchange. */
export type AccessLog = (ex: Exchange, res: ServerResponse, end: number) => void;

/** An access log writing through `logger`: text lines carry the time; JSON lines get it from the logger. */
export function createAccessLog(logger: Logger): AccessLog {
  return (ex, res, end) => {
    const status = finalStatus(ex, res);
    const bytes = ex.socket.bytesWritten - ex.bytesAtStart;
    const durationMs = Math.round(end - ex.start);
    const ttfbMs = ex.ttfb === null ? durationMs : Math.round(ex.ttfb);
    if (logger.format === 'json') {
      logger.info('request', { key: ex.keyName, method: ex.method, path: ex.path, model: ex.model, status, bytes, duration_ms: durationMs, ttfb_ms: ttfbMs, request_id: ex.requestId });
      return;
    }
    // The model comes from the client's body: quoted and escaped when it holds whitespace, control characters (a
    // newline would start a line of the client's making in llmserve's output, an ESC would drive the terminal) or quotes.
    const model = UNSAFE_IN_LINE.test(ex.model) ? JSON.stringify(ex.model) : ex.model;
    logger.info(
      new Date().toISOString() + ' ' + ex.keyName + ' ' + ex.method + ' ' + ex.path + ' model=' + model + ' ' + status + ' ' + bytes + 'B ' + durationMs + 'ms ttfb=' + ttfbMs + 'ms id=' + ex.requestId,
    );
  };
}
