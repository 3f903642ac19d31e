// Watches a metered response for its token usage without holding back a byte the client should get: JSON answers
// and streams that asked for usage are only observed; streams where llmserve added include_usage pass event by
// event, minus the one usage event the client did not ask for.
import type { IncomingHttpHeaders } from 'node:http';
import { Transform, type Readable, type TransformCallback } from 'node:stream';
import { StringDecoder } from 'node:string_decoder';
import { estimatePromptTokens, usageFromJsonText, usageOf, type TokenCount } from './tokens.js';

/** Bytes of a JSON answer kept whole; past that only the tail is kept (the usage comes last). */
const WHOLE_MAX = 1 << 20;
const TAIL = 64 * 1024;

/** The tokens of one request, and whether they are an estimate. */
export interface MeterResult extends TokenCount {
  estimated: boolean;
}

/** Finds the end of the first SSE event in `text` from `from`: index after the blank line, or -1. */
function eventEnd(text: string, from: number): number {
  const a = text.indexOf('\n\n', from);
  const b = text.indexOf('\r\n\r\n', from);
  if (a < 0) return b < 0 ? -1 : b + 4;
  if (b < 0 || a < b) return a + 2;
  return b + 4;
}

/** The start of vLLM's in-stream error event's payload: `{"error": {...}}`. */
const ERROR_EVENT = /^\{\s*"error"\s*:/;

/** The JSON payload of an SSE event's data line(s), or null. */
function dataOf(event: string): string | null {
  const i = event.indexOf('data:');
  if (i < 0) return null;
  return event.slice(i + 5).trim();
}

/** A backend response as the meter reads it: the decoded body, with the status and headers. */
export type MeteredResponse = Readable & { statusCode?: number; headers: IncomingHttpHeaders };

/** One metered exchange's view of its response. */
export class Meter {
  private found: TokenCount | null = null;
  private contentEvents = 0;
  /** vLLM reported an error inside the stream (a `data: {"error": ...}` event under HTTP 200). */
  private streamFailed = false;
  private status = 0;
  private chunks: Buffer[] = [];
  private size = 0;
  private carry = '';
  /** `carry` holds only the tail of an event longer than TAIL. */
  private cut = false;
  private readonly decoder = new StringDecoder('utf8');

  constructor(
    /** llmserve added include_usage: the usage event is removed from the stream. */
    readonly injected: boolean,
    /** Request body size, for an estimate when the backend reports nothing; null on routes that never estimate. */
    private readonly bodyBytes: number | null,
  ) {}

  /** Starts watching the backend's response; returns the stream to pipe to the client. */
  attach(res: MeteredResponse): Readable {
    this.status = res.statusCode ?? 0;
    const type = res.headers['content-type'] ?? '';
    if (res.headers['content-encoding'] !== undefined && res.headers['content-encoding'] !== 'identity') return res;
    if (type.startsWith('text/event-stream')) {
      if (this.injected) return res.pipe(this.stripper());
      res.on('data', (chunk: Buffer) => this.scan(this.decoder.write(chunk)));
      return res;
    }
    if (type.includes('json')) {
      res.on('data', (chunk: Buffer) => this.keep(chunk));
      res.on('end', () => this.readJson());
    }
    return res;
  }

  /** True when the answer failed though its status said success: vLLM's error event in a stream that had started. */
  get failed(): boolean {
    return this.streamFailed;
  }

  /**
   * Tokens seen (or estimated for a successful answer that carried no usage, on a route that estimates; none for one
   * that failed).
   */
  result(): MeterResult {
    if (this.found !== null) return { ...this.found, estimated: false };
    if (this.bodyBytes !== null && this.status >= 200 && this.status < 300 && !this.streamFailed) return { prompt: estimatePromptTokens(this.bodyBytes), completion: this.contentEvents, estimated: true };
    return { prompt: 0, completion: 0, estimated: false };
  }

  private keep(chunk: Buffer): void {
    this.chunks.push(chunk);
    this.size += chunk.length;
    if (this.size > WHOLE_MAX) {
      const all = Buffer.concat(this.chunks);
      this.chunks = [all.subarray(all.length - TAIL)];
      this.size = TAIL;
    }
  }

  private readJson(): void {
    const text = Buffer.concat(this.chunks).toString('utf8');
    this.chunks = [];
    this.found = usageFromJsonText(text) ?? this.found;
  }

  /** Looks at complete events of an observed stream (the bytes already went on to the client). */
  private scan(text: string): void {
    let buf = this.carry + text;
    let start = 0;
    for (let end = eventEnd(buf, 0); end >= 0; end = eventEnd(buf, start)) {
      const event = buf.slice(start, end);
      if (this.cut) {
        // The end of an event too long to hold whole: its usage, if any, is near its end.
        this.found = usageFromJsonText(event) ?? this.found;
        this.contentEvents++;
        this.cut = false;
      } else this.event(event);
      start = end;
    }
    buf = buf.slice(start);
    // Why keep the tail of a long event: /v1/responses ends with response.completed, which carries the whole output
    // (easily past 64 KB) with the usage at its end; dropping it lost the usage of exactly the longest answers.
    if (buf.length > TAIL) {
      this.carry = buf.slice(-TAIL);
      this.cut = true;
    } else this.carry = buf;
  }

  /** Counts one event; true when it is a usage-only event (empty choices plus usage). */
  private event(event: string): boolean {
    const data = dataOf(event);
    if (data === null || data === '[DONE]') return false;
    // An error after the stream started comes as an event under HTTP 200 (vLLM): the request failed, not content.
    if (ERROR_EVENT.test(data)) {
      this.streamFailed = true;
      return false;
    }
    if (!data.includes('"usage"')) {
      this.contentEvents++;
      return false;
    }
    let obj: unknown;
    try {
      obj = JSON.parse(data);
    } catch {
      return false;
    }
    const usage = usageOf(obj);
    if (usage !== null) this.found = usage;
    const choices = (obj as { choices?: unknown }).choices;
    const usageOnly = usage !== null && Array.isArray(choices) && choices.length === 0;
    if (!usageOnly) this.contentEvents++;
    return usageOnly;
  }

  /** A pass-through that forwards each complete event at once and drops the injected usage event. */
  private stripper(): Transform {
    let carry = '';
    // A decoder, so that a character split across two chunks reaches the client intact.
    const decoder = new StringDecoder('utf8');
    return new Transform({
      transform: (chunk: Buffer, _enc: BufferEncoding, done: TransformCallback) => {
        const buf = carry + decoder.write(chunk);
        let start = 0;
        let out = '';
        for (let end = eventEnd(buf, 0); end >= 0; end = eventEnd(buf, start)) {
          const ev = buf.slice(start, end);
          if (!this.event(ev)) out += ev;
          start = end;
        }
        carry = buf.slice(start);
        done(null, out.length > 0 ? out : undefined);
      },
      flush: (done: TransformCallback) => {
        // A last event without its blank line: pass it on as it came.
        const rest = carry + decoder.end();
        done(null, rest.length > 0 ? rest : undefined);
      },
    });
  }
}
