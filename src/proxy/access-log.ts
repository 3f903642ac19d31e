// One access-log line per request, built from the exchange with plain concatenation and written once.
import type { ServerResponse } from 'node:http';
import type { Logger } from '../log.js';
import { lineValue } from '../util/line-safe.js';
import { finalStatus, responseBytes, type Exchange } from './exchange.js';

/** Writes the line for a finished (or aborted) exchange. */
export type AccessLog = (ex: Exchange, res: Pick<ServerResponse, 'writableFinished' | 'statusCode'>, end: number) => void;

/** The longest model name and path a line shows whole; longer ones end in `...` (the client chose them). */
const MAX_MODEL_CHARS = 256;
const MAX_PATH_CHARS = 1024;

/**
 * A client's value cut to `max` characters. Why: the supervisor relays the proxy's lines and cuts any over 64 KiB
 * into pieces, and a piece that began mid-line inside a 300 KB `model` could carry a line of the client's making
 * (`llmserve | error: ...`) or, in JSON mode, be no JSON at all.
 */
function clip(value: string, max: number): string {
  return value.length > max ? value.slice(0, max) + '...' : value;
}

/** An access log writing through `logger`: text lines carry the time; JSON lines get it from the logger. */
export function createAccessLog(logger: Logger): AccessLog {
  return (ex, res, end) => {
    const model = clip(ex.model, MAX_MODEL_CHARS);
    const path = clip(ex.path, MAX_PATH_CHARS);
    const status = finalStatus(ex, res);
    const bytes = responseBytes(ex);
    const durationMs = Math.round(end - ex.start);
    const ttfbMs = ex.ttfb === null ? durationMs : Math.round(ex.ttfb);
    if (logger.format === 'json') {
      logger.info('request', { key: ex.keyName, method: ex.method, path, model, status, bytes, duration_ms: durationMs, ttfb_ms: ttfbMs, request_id: ex.requestId });
      return;
    }
    // The model comes from the client's body, the key name from the operator (LiteLLM aliases like "Team A"), the
    // path from the request line: quoted and escaped when they hold whitespace, controls (a newline or U+2028 would
    // start a line of the client's making in llmserve's output, an ESC or U+009B would drive the terminal), bidi
    // controls or quotes.
    logger.info(
      new Date().toISOString() + ' ' + lineValue(ex.keyName) + ' ' + ex.method + ' ' + lineValue(path) + ' model=' + lineValue(model) + ' ' + status + ' ' + bytes + 'B ' + durationMs + 'ms ttfb=' + ttfbMs + 'ms id=' + ex.requestId,
    );
  };
}
