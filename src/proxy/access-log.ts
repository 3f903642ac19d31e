// One access-log line per request, built from the exchange with plain concatenation and written once.
import type { ServerResponse } from 'node:http';
import type { Logger } from '../log.js';
import { lineValue } from '../util/line-safe.js';
import { finalStatus, responseBytes, type Exchange } from './exchange.js';

/** Writes the line for a finished (or aborted) exchange. */
export type AccessLog = (ex: Exchange, res: Pick<ServerResponse, 'writableFinished' | 'statusCode'>, end: number) => void;

/** An access log writing through `logger`: text lines carry the time; JSON lines get it from the logger. */
export function createAccessLog(logger: Logger): AccessLog {
  return (ex, res, end) => {
    const status = finalStatus(ex, res);
    const bytes = responseBytes(ex);
    const durationMs = Math.round(end - ex.start);
    const ttfbMs = ex.ttfb === null ? durationMs : Math.round(ex.ttfb);
    if (logger.format === 'json') {
      logger.info('request', { key: ex.keyName, method: ex.method, path: ex.path, model: ex.model, status, bytes, duration_ms: durationMs, ttfb_ms: ttfbMs, request_id: ex.requestId });
      return;
    }
    // The model comes from the client's body, the key name from the operator (LiteLLM aliases like "Team A"), the
    // path from the request line: quoted and escaped when they hold whitespace, controls (a newline or U+2028 would
    // start a line of the client's making in llmserve's output, an ESC or U+009B would drive the terminal), bidi
    // controls or quotes.
    logger.info(
      new Date().toISOString() + ' ' + lineValue(ex.keyName) + ' ' + ex.method + ' ' + lineValue(ex.path) + ' model=' + lineValue(ex.model) + ' ' + status + ' ' + bytes + 'B ' + durationMs + 'ms ttfb=' + ttfbMs + 'ms id=' + ex.requestId,
    );
  };
}
