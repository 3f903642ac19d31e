// The one logger: prefixes, colours, JSON lines and secret redaction all live here.
import { Chalk, type ChalkInstance } from 'chalk';

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
export type LogFormat = 'text' | 'json';
export type LogFields = Record<string, unknown>;

/** What every part of llmserve writes through. */
export interface Logger {
  readonly format: LogFormat;
  debug(msg: string, fields?: LogFields): void;
  info(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  error(msg: string, fields?: LogFields): void;
  /** One line of a child process's output, written under that child's prefix (`vllm |`, `proxy |`). */
  child(source: string, line: string, stream?: 'stdout' | 'stderr'): void;
  /** A line kept for the log file only (--log-file), not shown: vLLM's raw lines behind a terminal status line. */
  fileOnly(source: string, line: string): void;
  /** A line another llmserve process already formatted (the proxy child): written as-is, redacted, wrapped if foreign. */
  passthrough(source: string, line: string, stream?: 'stdout' | 'stderr'): void;
  /** Registers a secret: from now on it is replaced by `[redacted]` in every line written. */
  redact(secret: string): void;
  /** A logger that writes under another source name, sharing the same sinks and secrets. */
  withSource(source: string): Logger;
}

export interface LoggerOptions {
  format?: LogFormat;
  /** Colours: default on when stdout is a terminal and NO_COLOR is unset. */
  color?: boolean;
  verbose?: boolean;
  source?: string;
  stdout?: { write(chunk: string): unknown; isTTY?: boolean };
  stderr?: { write(chunk: string): unknown; isTTY?: boolean };
  now?: () => Date;
  /** Extra sink that receives every formatted line (the --log-file tee). */
  tee?: (line: string) => void;
}

interface Shared {
  secrets: string[];
  format: LogFormat;
  chalk: ChalkInstance;
  verbose: boolean;
  stdout: NonNullable<LoggerOptions['stdout']>;
  stderr: NonNullable<LoggerOptions['stderr']>;
  now: () => Date;
  tee?: (line: string) => void;
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
  const stdout = options.stdout ?? process.stdout;
  const stderr = options.stderr ?? process.stderr;
  const color = options.color ?? wantsColor(stdout);
  const shared: Shared = {
    secrets: [],
    format: options.format ?? 'text',
    chalk: new Chalk({ level: color ? 1 : 0 }),
    verbose: options.verbose ?? false,
    stdout,
    stderr,
    now: options.now ?? (() => new Date()),
    ...(options.tee ? { tee: options.tee } : {}),
  };
  return makeLogger(shared, options.source ?? 'llmserve');
}

function makeLogger(shared: Shared, source: string): Logger {
  const write = (level: LogLevel, src: string, msg: string, fields: LogFields | undefined, stream: 'stdout' | 'stderr', decorate = true) => {
    const line = formatLine(shared, level, src, scrub(shared, msg), fields, decorate);
    (stream === 'stderr' ? shared.stderr : shared.stdout).write(line + '\n');
    shared.tee?.(line);
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
    child(childSource, line, stream = 'stdout') {
      write(stream === 'stderr' ? 'warn' : 'info', childSource, line, undefined, stream, false);
    },
    fileOnly(childSource, line) {
      shared.tee?.(formatLine(shared, 'info', childSource, scrub(shared, line), undefined, false));
    },
    passthrough(childSource, line, stream = 'stdout') {
      // In JSON mode a line that is not JSON (a crash trace) is wrapped, so every line stays parseable.
      const formatted = shared.format === 'json' ? line.startsWith('{') : line.includes(' |');
      if (!formatted) return write(stream === 'stderr' ? 'error' : 'info', childSource, line, undefined, stream, false);
      const clean = scrub(shared, line);
      (stream === 'stderr' ? shared.stderr : shared.stdout).write(clean + '\n');
      shared.tee?.(clean);
    },
    redact(secret) {
      // Very short values would redact ordinary words; keys that short are refused elsewhere anyway.
      if (secret.length >= 4 && !shared.secrets.includes(secret)) {
        shared.secrets.push(secret);
        shared.secrets.sort((a, b) => b.length - a.length);
      }
    },
    withSource(other) {
      return makeLogger(shared, other);
    },
  };
}

/** Replaces every registered secret in a text. */
function scrub(shared: Shared, text: string): string {
  let out = text;
  for (const secret of shared.secrets) if (out.includes(secret)) out = out.split(secret).join(REDACTED);
  return out;
}

function scrubFields(shared: Shared, fields: LogFields): LogFields {
  const out: LogFields = {};
  for (const [k, v] of Object.entries(fields)) out[k] = typeof v === 'string' ? scrub(shared, v) : v;
  return out;
}

function formatLine(shared: Shared, level: LogLevel, source: string, msg: string, fields: LogFields | undefined, decorate: boolean): string {
  if (shared.format === 'json') {
    return JSON.stringify({ time: shared.now().toISOString(), level, source, msg, ...(fields ? scrubFields(shared, fields) : {}) });
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
    .map(([k, v]) => `${k}=${typeof v === 'string' && !/\s/.test(v) ? v : JSON.stringify(v)}`)
    .join(' ');
}

/** Splits a byte stream into lines, calling `onLine` for each complete one; carriage-return frames count as lines. */
export function lineSplitter(onLine: (line: string) => void): { push(chunk: Buffer | string): void; flush(): void } {
  let rest = '';
  return {
    push(chunk) {
      rest += chunk.toString();
      const parts = rest.split(/\r\n|\n|\r/);
      rest = parts.pop() ?? '';
      for (const p of parts) if (p.length > 0) onLine(p);
    },
    flush() {
      if (rest.length > 0) onLine(rest);
      rest = '';
    },
  };
}
