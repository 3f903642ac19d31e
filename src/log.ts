// The one logger: prefixes, colours, JSON lines and secret redaction all live here.
import { StringDecoder } from 'node:string_decoder';
import { Chalk, type ChalkInstance } from 'chalk';
import { SecretScrubber } from './log-secrets.js';
import { withoutColourCodes } from './util/ansi.js';
import { escapeInvisible, lineValue } from './util/line-safe.js';
import { stdSink, type StdSink } from './util/output.js';

/** How severe a log line is. */
export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
/** Lines for people (`text`) or one JSON object per line (`json`). */
export type LogFormat = 'text' | 'json';
/** Structured fields after a line's message. */
export type LogFields = Record<string, unknown>;

/** What every part of llmserve writes through. */
export interface Logger {
  readonly format: LogFormat;
  debug(msg: string, fields?: LogFields): void;
  info(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  error(msg: string, fields?: LogFields): void;
  /** A warning on a stream of choice (warn's is stderr): one about stderr itself goes where it can be read. */
  warnTo(stream: 'stdout' | 'stderr', msg: string, fields?: LogFields): void;
  /**
   * One line of a child process's output, written under that child's prefix (`vllm |`, `proxy |`). Its JSON level:
   * `level` when given (read from the line), else `warn` for stderr and `info` for stdout.
   */
  child(source: string, line: string, stream?: 'stdout' | 'stderr', level?: LogLevel): void;
  /** A line kept for the log file only (--log-file), not shown: vLLM's raw lines behind a terminal status line. */
  fileOnly(source: string, line: string, level?: LogLevel): void;
  /** A line another llmserve process already formatted (the proxy child): written as-is, redacted, wrapped if foreign. */
  passthrough(source: string, line: string, stream?: 'stdout' | 'stderr', whole?: boolean): void;
  /** Shows (or with null, clears) one status line under the log on a terminal; log lines are written above it. */
  status(text: string | null): void;
  /** Registers a secret: from now on it is replaced by `[redacted]` in every line written. */
  redact(secret: string): void;
  /** A logger that writes under another source name, sharing the same sinks and secrets. */
  withSource(source: string): Logger;
}

/**
 * The same logger with `info` (and with `warn: true`, `warn`) silenced while `quiet()` is true: for lines another
 * process beside it already writes, until it is asked to say them itself (a proxy worker that takes over).
 */
export function quietWhile(logger: Logger, quiet: () => boolean, options: { warn?: boolean } = {}): Logger {
  return {
    ...logger,
    info: (msg, fields) => void (quiet() || logger.info(msg, fields)),
    warn: (msg, fields) => void ((options.warn === true && quiet()) || logger.warn(msg, fields)),
  };
}

/** Holds the logger main.ts prints the final error through: its early one until a command hands over its own. */
export interface ErrorReporter {
  /** The logger in use now. */
  readonly logger: Logger;
  /** From now on, print through this logger: its format (the config's too), its --log-file tee, its secrets. */
  use(logger: Logger): void;
}

/** Creates the reporter main.ts prints the final error and Node's warnings through. */
export function createErrorReporter(initial: Logger): ErrorReporter {
  let current = initial;
  return {
    get logger() {
      return current;
    },
    use(logger) {
      current = logger;
    },
  };
}

/** How a logger writes: format, colours, verbosity, source tag, clock and sinks. */
export interface LoggerOptions {
  format?: LogFormat;
  /** Colours: default on for each stream that is a terminal, when NO_COLOR is unset. */
  color?: boolean;
  verbose?: boolean;
  source?: string;
  stdout?: StdSink;
  stderr?: StdSink;
  now?: () => Date;
  /** Extra sink that receives every formatted line (the --log-file tee). */
  tee?: (line: string) => void;
}

interface Shared {
  secrets: SecretScrubber;
  format: LogFormat;
  chalk: ChalkInstance;
  /** Whether stderr may get colour codes: stdout on a terminal with stderr sent to a file (`2>err.log`) may not. */
  stderrColor: boolean;
  verbose: boolean;
  stdout: NonNullable<LoggerOptions['stdout']>;
  stderr: NonNullable<LoggerOptions['stderr']>;
  now: () => Date;
  tee?: (line: string) => void;
  /** The status line drawn at the bottom of the terminal, or null. */
  status: string | null;
  /** Lines left out of each stream because its reader did not keep up (see emit), not yet said. */
  dropped: { stdout: number; stderr: number };
}

const REDACTED = '[redacted]';
const prefixWidth = 8;

/** Decides whether colours are wanted, following the NO_COLOR / FORCE_COLOR conventions. */
export function wantsColor(stream: { isTTY?: boolean }, env: NodeJS.ProcessEnv = process.env): boolean {
  if (env.NO_COLOR !== undefined && env.NO_COLOR !== '') return false;
  if (env.FORCE_COLOR !== undefined) return env.FORCE_COLOR !== '0' && env.FORCE_COLOR !== 'false';
  return stream.isTTY === true;
}

/** Builds the logger used by a command. */
export function createLogger(options: LoggerOptions = {}): Logger {
  const stdout = options.stdout ?? stdSink(process.stdout, 'stdout');
  const stderr = options.stderr ?? stdSink(process.stderr, 'stderr');
  const color = options.color ?? wantsColor(stdout);
  const shared: Shared = {
    secrets: new SecretScrubber(REDACTED),
    format: options.format ?? 'text',
    chalk: new Chalk({ level: color ? 1 : 0 }),
    stderrColor: options.color ?? wantsColor(stderr),
    verbose: options.verbose ?? false,
    stdout,
    stderr,
    now: options.now ?? (() => new Date()),
    status: null,
    dropped: { stdout: 0, stderr: 0 },
    ...(options.tee ? { tee: options.tee } : {}),
  };
  return makeLogger(shared, options.source ?? 'llmserve');
}

function makeLogger(shared: Shared, source: string): Logger {
  const write = (level: LogLevel, src: string, msg: string, fields: LogFields | undefined, stream: 'stdout' | 'stderr', decorate = true) => {
    const line = formatLine(shared, level, src, scrub(shared, msg), fields, decorate);
    emit(shared, line, stream);
  };
  return {
    format: shared.format,
    debug(msg, fields) {
      if (shared.verbose) write('debug', source, msg, fields, 'stderr');
    },
    info(msg, fields) {
      write('info', source, msg, fields, 'stdout');
    },
    warn(msg, fields) {
      write('warn', source, msg, fields, 'stderr');
    },
    error(msg, fields) {
      write('error', source, msg, fields, 'stderr');
    },
    warnTo(stream, msg, fields) {
      write('warn', source, msg, fields, stream);
    },
    child(childSource, line, stream = 'stdout', level) {
      write(level ?? (stream === 'stderr' ? 'warn' : 'info'), childSource, line, undefined, stream, false);
    },
    fileOnly(childSource, line, level = 'info') {
      const formatted = formatLine(shared, level, childSource, scrub(shared, line), undefined, false);
      shared.tee?.(shared.chalk.level > 0 ? withoutColourCodes(formatted) : formatted);
    },
    passthrough(childSource, line, stream = 'stdout', whole = true) {
      // In JSON mode a line that is not JSON (a crash trace) is wrapped, so every line stays parseable; and so is a
      // piece from a line's middle (lineSplitter's cut), whatever it looks like: its text may be a client's.
      const formatted = whole && (shared.format === 'json' ? line.startsWith('{') : line.includes(' |'));
      if (!formatted) return write(stream === 'stderr' ? 'error' : 'info', childSource, line, undefined, stream, false);
      emit(shared, scrub(shared, line), stream);
    },
    status(text) {
      if (shared.status !== null) shared.stdout.write(CLEAR_LINE);
      shared.status = text === null ? null : fitWidth(text, shared.stdout.columns);
      if (shared.status !== null) shared.stdout.write(CLEAR_LINE + shared.status);
    },
    redact(secret) {
      shared.secrets.add(secret);
    },
    withSource(other) {
      return makeLogger(shared, other);
    },
  };
}

/**
 * The status line cut to the terminal's width. Why: a line that wraps is two rows, and \r with clear-line
 * rewrites only the last one, so every redraw (each second) would leave a row behind on a narrow terminal.
 */
function fitWidth(text: string, columns: number | undefined): string {
  if (columns === undefined || columns <= 1 || text.length < columns) return text;
  return text.slice(0, columns - 2) + '…';
}

/** \r and clear-to-end-of-line: the status line is rewritten in place. */
const CLEAR_LINE = '\r\x1b[2K';

/**
 * Output waiting for a slow reader past which lines are left out. Why a cap: Node keeps what a pipe's reader has not
 * taken yet in memory, without end, so a log collector that stops reading (not closing) grew the supervisor by about
 * 0.5 KB per request served, for as long as it lasted.
 */
export const MAX_BACKLOG_BYTES = 4 * 1024 * 1024;

/** Writes one finished line (above the status line, when one is shown) and tees it. */
function emit(shared: Shared, line: string, stream: 'stdout' | 'stderr'): void {
  // The log file never gets colour codes, whatever the terminal had; it gets every line, those left out below included.
  shared.tee?.(shared.chalk.level > 0 ? withoutColourCodes(line) : line);
  const out = stream === 'stderr' ? shared.stderr : shared.stdout;
  if ((out.writableLength ?? 0) > MAX_BACKLOG_BYTES) {
    shared.dropped[stream]++;
    return;
  }
  if (shared.status !== null) shared.stdout.write(CLEAR_LINE);
  if (shared.dropped[stream] > 0) {
    const n = shared.dropped[stream];
    shared.dropped[stream] = 0;
    const note = `${n} line${n === 1 ? '' : 's'} left out here: the ${stream} reader stopped taking them (over ${MAX_BACKLOG_BYTES / 1024 / 1024} MiB waited)${shared.tee ? '; --log-file has every line' : ''}`;
    out.write(withoutColourCodes(formatLine(shared, 'warn', 'llmserve', note, undefined, true)) + '\n');
  }
  // Lines are coloured for stdout; one bound for a stderr that is not a terminal loses its codes (a passed-through
  // proxy line too, coloured by the proxy child after llmserve's stdout).
  const plain = stream === 'stderr' && !shared.stderrColor ? withoutColourCodes(line) : line;
  out.write(plain + '\n');
  if (shared.status !== null) shared.stdout.write(shared.status);
}

/** Replaces every registered secret in a text. */
function scrub(shared: Shared, text: string): string {
  return shared.secrets.scrub(text);
}

function scrubFields(shared: Shared, fields: LogFields): LogFields {
  const out: LogFields = {};
  for (const [k, v] of Object.entries(fields)) out[k] = typeof v === 'string' ? scrub(shared, v) : v;
  return out;
}

function formatLine(shared: Shared, level: LogLevel, source: string, msg: string, fields: LogFields | undefined, decorate: boolean): string {
  if (shared.format === 'json') {
    // Valid JSON either way; escaped so that a reader splitting on Unicode line ends (U+2028, U+0085) sees one line.
    return escapeInvisible(JSON.stringify({ time: shared.now().toISOString(), level, source, msg, ...(fields ? scrubFields(shared, fields) : {}) }));
  }
  const c = shared.chalk;
  const paint = source === 'vllm' ? c.cyan : source === 'proxy' ? c.magenta : c.green;
  const prefix = paint(`${source.padEnd(prefixWidth - 2)} |`);
  const body = !decorate ? msg : level === 'error' ? c.red(`error: ${msg}`) : level === 'warn' ? c.yellow(`warning: ${msg}`) : msg;
  const extra = fields && Object.keys(fields).length > 0 ? ' ' + c.dim(formatFields(scrubFields(shared, fields))) : '';
  return `${prefix} ${body}${extra}`;
}

function formatFields(fields: LogFields): string {
  return Object.entries(fields)
    .map(([k, v]) => `${k}=${typeof v === 'string' ? lineValue(v) : escapeInvisible(String(JSON.stringify(v)))}`)
    .join(' ');
}

/** The longest line lineSplitter holds back waiting for its end; a longer one is passed on in pieces of this size or more. */
export const MAX_LINE_CHARS = 64 * 1024;

/**
 * Splits a byte stream into lines, calling `onLine` for each complete one; carriage-return frames count as lines.
 * With `frameIdleMs`, a frame after a `\r` that nothing has followed for that long is passed on as it stands.
 * `whole` is false for a piece that does not begin where a line begins (what follows a cut at the cap, or the rest of
 * an idle frame): the text of a line's middle, which must never be taken for a line of its own (passthrough).
 */
export function lineSplitter(onLine: (line: string, whole: boolean) => void, options: { frameIdleMs?: number } = {}): { push(chunk: Buffer | string): void; flush(): void } {
  let rest = '';
  // Whether `rest` begins where a line begins (false after a cut at the cap).
  let atLineStart = true;
  // How much of `rest` was already passed on by the idle timer: dropped when its line end comes.
  let emitted = 0;
  // Whether `rest` follows a bare `\r`: a tqdm frame, which is redrawn in place and never ends with a line end.
  let afterCR = false;
  let timer: NodeJS.Timeout | null = null;
  // Why a decoder: a pipe read can end inside a multi-byte UTF-8 character (tqdm's █, a CJK model name); decoding
  // each chunk alone would turn both halves into U+FFFD.
  const decoder = new StringDecoder('utf8');
  const stopTimer = () => {
    if (timer !== null) clearTimeout(timer);
    timer = null;
  };
  // Why a timer: tqdm writes `\rframe`, so a frame is only ended by the next one, which may be a whole weight
  // shard (minutes) away; without it the status line and the log stay one frame behind vLLM.
  const emitIdleFrame = () => {
    timer = null;
    const frame = rest.slice(emitted);
    const whole = atLineStart && emitted === 0;
    emitted = rest.length;
    if (frame.length > 0) onLine(frame, whole);
  };
  return {
    push(chunk) {
      stopTimer();
      rest += typeof chunk === 'string' ? chunk : decoder.write(chunk);
      const ends = /\r\n|\n|\r/g;
      let start = 0;
      let m: RegExpExecArray | null;
      while ((m = ends.exec(rest)) !== null) {
        const line = rest.slice(start + emitted, m.index);
        const whole = atLineStart && emitted === 0;
        emitted = 0;
        if (line.length > 0) onLine(line, whole);
        atLineStart = true;
        start = m.index + m[0].length;
        afterCR = m[0] === '\r';
      }
      rest = rest.slice(start);
      // Why a cap: a child that writes without ever ending its line (a dump, a runaway print) would grow this buffer
      // without end, and each read would scan all of it again. Past the cap, the part held so far goes out as a line.
      if (rest.length - emitted > MAX_LINE_CHARS) {
        onLine(rest.slice(emitted), atLineStart && emitted === 0);
        rest = '';
        emitted = 0;
        atLineStart = false;
        return;
      }
      if (options.frameIdleMs !== undefined && afterCR && rest.length > emitted) {
        timer = setTimeout(emitIdleFrame, options.frameIdleMs);
        timer.unref();
      }
    },
    flush() {
      stopTimer();
      rest += decoder.end();
      if (rest.length > emitted) onLine(rest.slice(emitted), atLineStart && emitted === 0);
      rest = '';
      emitted = 0;
    },
  };
}
