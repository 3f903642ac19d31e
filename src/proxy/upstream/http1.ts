// HTTP/1.1 framing for the upstream client: the request head, the response head, and a chunked-body scanner that
// can pass the chunk framing through untouched (an event stream relayed as it came, docs/performance.md).
import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http';

/** The backend broke HTTP/1.1 (a bad status line, header, length or chunk): answered as a 502. */
export class UpstreamProtocolError extends Error {
  readonly code = 'LLMSERVE_UPSTREAM_PROTOCOL';
}

/** A response head as Node's IncomingMessage would present it. */
export interface ResponseHead {
  statusCode: number;
  statusMessage: string;
  /** HTTP/1.0 (no keep-alive unless asked for). */
  http10: boolean;
  /** Lower-case names; duplicates combined the way Node combines them. */
  headers: IncomingHttpHeaders;
}

/** Headers of which Node keeps the first and drops duplicates (`IncomingMessage.headers`); Content-Length: `oneLength`. */
const firstWins: ReadonlySet<string> = new Set([
  'age', 'authorization', 'content-type', 'etag', 'expires', 'from', 'host', 'if-modified-since',
  'if-unmodified-since', 'last-modified', 'location', 'max-forwards', 'proxy-authorization', 'referer',
  'retry-after', 'server', 'user-agent',
]);

/** Characters a header value or request target may never hold: they would split the request (injection). */
const unsafe = /[\r\n\0]/;

/**
 * The request head: request line, headers (array values repeat the line), `Connection: keep-alive`,
 * `Transfer-Encoding: chunked` when the body is framed here and the headers don't already say so, and the blank line. Throws on a CR, LF or NUL in the target or a value, as http.request does.
 */
export function requestHead(method: string, target: string, headers: OutgoingHttpHeaders, chunked: boolean): string {
  if (unsafe.test(target) || target.includes(' ')) throw new TypeError(`invalid request target: ${JSON.stringify(target)}`);
  let head = `${method} ${target} HTTP/1.1\r\n`;
  for (const name in headers) {
    const value = headers[name];
    if (value === undefined) continue;
    if (Array.isArray(value)) {
      for (const v of value) head += headerLine(name, String(v));
    } else head += headerLine(name, String(value));
  }
  // Keep-alive is HTTP/1.1's default; said anyway, as Node's client says it (some servers look for it).
  head += 'connection: keep-alive\r\n';
  return chunked && headers['transfer-encoding'] === undefined ? head + 'transfer-encoding: chunked\r\n\r\n' : head + '\r\n';
}

function headerLine(name: string, value: string): string {
  if (unsafe.test(value)) throw new TypeError(`invalid value for header ${name}`);
  return `${name}: ${value}\r\n`;
}

/** Parses a response head (status line and header lines, without the blank line). */
export function parseResponseHead(text: string): ResponseHead {
  const lines = text.split('\r\n');
  const status = /^HTTP\/1\.([01]) (\d{3})(?: (.*))?$/.exec(lines[0] ?? '');
  if (status === null) throw new UpstreamProtocolError(`bad status line from the backend: ${JSON.stringify((lines[0] ?? '').slice(0, 80))}`);
  const headers: IncomingHttpHeaders = {};
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i]!;
    const colon = line.indexOf(':');
    // A bare LF ends no line here, as in Node's parser: a backend that mixes line ends is refused, not guessed at.
    if (colon <= 0 || /[\s]/.test(line.slice(0, colon)) || line.includes('\n')) throw new UpstreamProtocolError(`bad header line from the backend: ${JSON.stringify(line.slice(0, 80))}`);
    const name = line.slice(0, colon).toLowerCase();
    const value = line.slice(colon + 1).trim();
    if (name === 'content-length') headers[name] = oneLength(value, headers[name]);
    else addHeader(headers, name, value);
  }
  return { statusCode: Number(status[2]), statusMessage: status[3] ?? '', http10: status[1] === '0', headers };
}

/**
 * A Content-Length given as a list or on several lines is one length when all agree (RFC 9110 8.6), and is passed on
 * as that one value; lengths that differ are two answers to where the body ends: refused, not guessed at.
 */
function oneLength(value: string, prior: string | undefined): string {
  const values = (prior === undefined ? value : `${prior},${value}`).split(',').map((v) => v.trim());
  if (!values.every((v) => /^\d{1,15}$/.test(v) && v === values[0])) throw new UpstreamProtocolError(`bad content-length from the backend: ${JSON.stringify(values.join(', ').slice(0, 80))}`);
  return values[0]!;
}

function addHeader(headers: IncomingHttpHeaders, name: string, value: string): void {
  const prior = headers[name];
  if (prior === undefined) {
    headers[name] = name === 'set-cookie' ? [value] : value;
  } else if (name === 'set-cookie') {
    (prior as string[]).push(value);
  } else if (!firstWins.has(name)) {
    headers[name] = `${prior as string}, ${value}`;
  }
}

/** How a response body is delimited (RFC 9112 section 6.3). */
export type BodyFraming = { kind: 'none' } | { kind: 'length'; length: number } | { kind: 'chunked' } | { kind: 'close' };

/** The framing of a response to `method`; throws on a content-length that is not one non-negative integer. */
export function bodyFraming(method: string, head: ResponseHead): BodyFraming {
  const code = head.statusCode;
  if (method === 'HEAD' || code === 204 || code === 304 || (code >= 100 && code < 200)) return { kind: 'none' };
  const te = head.headers['transfer-encoding'];
  if (te !== undefined) return /(?:^|,)\s*chunked\s*$/i.test(te) ? { kind: 'chunked' } : { kind: 'close' };
  const cl = head.headers['content-length'];
  if (cl !== undefined) {
    // One number (parseResponseHead made a list of equal values one).
    if (!/^\d{1,15}$/.test(cl)) throw new UpstreamProtocolError(`bad content-length from the backend: ${JSON.stringify(cl)}`);
    return { kind: 'length', length: Number(cl) };
  }
  return { kind: 'close' };
}

/** Whether the connection may carry another request after this response. */
export function keepsAlive(head: ResponseHead): boolean {
  const conn = head.headers.connection?.toLowerCase();
  if (conn !== undefined && /(?:^|,)\s*close\s*(?:,|$)/.test(conn)) return false;
  return !head.http10 || (conn !== undefined && /(?:^|,)\s*keep-alive\s*(?:,|$)/.test(conn));
}

/** The most bytes of extensions one chunk-size line may carry (Node's HTTP parser allows as many). */
export const MAX_CHUNK_EXTENSIONS = 16 * 1024;

const enum Chunk {
  /** At the start of a size line, or inside it (digits > 0). */
  Size,
  /** Whitespace after the size: only more of it or `;` (extensions) may follow. */
  SizeSpace,
  /** After `;`: extensions until CR. */
  Extension,
  /** Saw the size line's CR. */
  SizeLf,
  Data,
  DataCr,
  DataLf,
  /** At the start of a trailer line (after the last chunk). */
  Trailer,
  /** Inside a trailer line. */
  TrailerLine,
  /** Saw CR at the start of a trailer line: the body's last CRLF. */
  TrailerLf,
  Done,
}

/**
 * Reads a chunked body as it arrives, in one of two modes. `decode`: calls `onData` with each chunk's bytes.
 * `relay`: calls `onData` with the bytes as they came, chunk framing included, minus the last chunk and trailers
 * (the client's response writes its own), holding back an incomplete size line until it is known not to be the
 * last one; `last` is true for the bytes right before the last chunk's size line (no data follows them). `push`
 * returns true once the body is complete; `rest` is then the offset of any bytes after it.
 */
export class ChunkedReader {
  private state = Chunk.Size;
  private size = 0;
  private digits = 0;
  /** Bytes of the current size line's extensions: capped, as relay holds them until the line ends. */
  private extension = 0;
  private left = 0;
  /** relay: bytes of a size line begun in an earlier buffer, not yet passed on. */
  private held: Buffer[] = [];
  /** relay, during one push: start of the bytes not yet passed on, and where the current size line began (-1: not in this buffer). */
  private from = 0;
  private lineAt = -1;
  /** Offset in the last pushed buffer where the body ended. */
  rest = 0;

  constructor(
    private readonly relay: boolean,
    private readonly onData: (chunk: Buffer, last: boolean) => void,
  ) {}

  /** Whether the body is complete. */
  get done(): boolean {
    return this.state === Chunk.Done;
  }

  /** Feeds `buf`; true when the body is complete. Throws UpstreamProtocolError on bad framing. */
  push(buf: Buffer): boolean {
    const n = buf.length;
    let i = 0;
    this.from = 0;
    this.lineAt = -1;
    while (i < n) {
      switch (this.state) {
        case Chunk.Data: {
          const take = Math.min(this.left, n - i);
          if (!this.relay) this.onData(buf.subarray(i, i + take), false);
          i += take;
          this.left -= take;
          if (this.left === 0) this.state = Chunk.DataCr;
          break;
        }
        case Chunk.Size: {
          const c = buf[i]!;
          const v = c >= 48 && c <= 57 ? c - 48 : c >= 97 && c <= 102 ? c - 87 : c >= 65 && c <= 70 ? c - 55 : -1;
          if (v >= 0) {
            if (this.digits === 0) this.lineAt = i;
            if (++this.digits > 12) throw new UpstreamProtocolError('chunk size too large from the backend');
            this.size = this.size * 16 + v;
          } else if (this.digits === 0) throw new UpstreamProtocolError('bad chunk size from the backend');
          else if (c === 13) this.state = Chunk.SizeLf;
          else if (c === 59) this.startExtension();
          else if (c === 32 || c === 9) this.state = Chunk.SizeSpace;
          // A bare LF, or anything else: what the client's parser would refuse in the bytes relayed to it.
          else throw new UpstreamProtocolError('bad chunk size from the backend');
          i++;
          break;
        }
        case Chunk.SizeSpace: {
          // RFC 9112's BWS, allowed only before a `;` (an extension): whitespace and then the line's end is no chunk size.
          const c = buf[i]!;
          if (c === 59) this.startExtension();
          else if (c !== 32 && c !== 9) throw new UpstreamProtocolError('bad chunk size from the backend');
          i++;
          break;
        }
        case Chunk.Extension: {
          const cr = buf.indexOf(13, i);
          const end = cr < 0 ? n : cr;
          const lf = buf.indexOf(10, i);
          if (lf >= 0 && lf < end) throw new UpstreamProtocolError('bad chunk size line from the backend');
          // Why a cap: relay holds a size line until it ends, so a backend whose extension never ends grew the proxy's
          // memory by as much as it sent. Node's own HTTP parser refuses extensions over the same 16 KiB.
          this.extension += end - i;
          if (this.extension > MAX_CHUNK_EXTENSIONS) throw new UpstreamProtocolError(`chunk extensions over ${MAX_CHUNK_EXTENSIONS} bytes from the backend`);
          if (cr < 0) {
            i = n;
            break;
          }
          i = cr + 1;
          this.state = Chunk.SizeLf;
          break;
        }
        case Chunk.SizeLf: {
          if (buf[i] !== 10) throw new UpstreamProtocolError('bad chunk size line from the backend');
          i++;
          this.sizeLineDone(buf);
          break;
        }
        case Chunk.DataCr: {
          const c = buf[i]!;
          if (c === 13) this.state = Chunk.DataLf;
          else throw new UpstreamProtocolError('chunk data longer than its size from the backend');
          i++;
          break;
        }
        case Chunk.DataLf: {
          if (buf[i] !== 10) throw new UpstreamProtocolError('chunk data longer than its size from the backend');
          this.nextChunk();
          i++;
          break;
        }
        case Chunk.Trailer: {
          // Trailer lines until an empty one; dropped (vLLM sends none, and the client's response writes none).
          const c = buf[i]!;
          if (c === 10) throw new UpstreamProtocolError('bad end of a chunked body from the backend');
          this.state = c === 13 ? Chunk.TrailerLf : Chunk.TrailerLine;
          i++;
          break;
        }
        case Chunk.TrailerLine: {
          const lf = buf.indexOf(10, i);
          if (lf < 0) {
            i = n;
            break;
          }
          i = lf + 1;
          this.state = Chunk.Trailer;
          break;
        }
        case Chunk.TrailerLf: {
          if (buf[i] !== 10) throw new UpstreamProtocolError('bad trailer from the backend');
          return this.finish(i + 1);
        }
        case Chunk.Done:
          this.rest = i;
          return true;
      }
    }
    if (this.relay) this.relayTail(buf);
    return this.state === Chunk.Done;
  }

  /** relay, at the end of a buffer: pass on what is known to be chunk data or framing, hold a partial size line. */
  private relayTail(buf: Buffer): void {
    const n = buf.length;
    // After the last chunk's size line nothing is passed on (trailers, the final CRLF).
    if (this.from >= n || this.state >= Chunk.Trailer) return;
    const inSizeLine = (this.state === Chunk.Size && this.digits > 0) || this.state === Chunk.SizeSpace || this.state === Chunk.Extension || this.state === Chunk.SizeLf;
    if (!inSizeLine) {
      this.onData(this.from === 0 ? buf : buf.subarray(this.from), false);
      return;
    }
    // The line began in this buffer (lineAt) or in an earlier one (all of this buffer belongs to it).
    const cut = this.lineAt >= 0 ? this.lineAt : this.from;
    if (cut > this.from) this.onData(buf.subarray(this.from, cut), false);
    this.held.push(buf.subarray(cut));
  }

  private startExtension(): void {
    // Counted from here, not reset per chunk: nextChunk runs per streamed event, extensions almost never.
    this.extension = 0;
    this.state = Chunk.Extension;
  }

  private nextChunk(): void {
    this.state = Chunk.Size;
    this.size = 0;
    this.digits = 0;
  }

  /** A size line ended: either the last chunk (relay passes on what preceded its line) or data follows. */
  private sizeLineDone(buf: Buffer): void {
    if (this.size === 0) {
      if (this.relay) {
        const cut = this.lineAt >= 0 ? this.lineAt : 0;
        if (cut > this.from) this.onData(buf.subarray(this.from, cut), true);
        this.held = [];
        // Nothing after the last chunk's size line is passed on.
        this.from = buf.length;
      }
      this.state = Chunk.Trailer;
      return;
    }
    if (this.relay && this.held.length > 0) {
      for (const h of this.held) this.onData(h, false);
      this.held = [];
    }
    this.lineAt = -1;
    this.left = this.size;
    this.state = Chunk.Data;
  }

  private finish(at: number): boolean {
    this.state = Chunk.Done;
    this.rest = at;
    return true;
  }
}
