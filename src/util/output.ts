// The terminal, pipe or file llmserve writes to can fail under it. Two kinds of failure, two answers:
// - its reader is gone: a closed terminal (EIO), a closed pipe (`llmserve start | head`: EPIPE). `start` then stops
//   as on SIGTERM (nobody is left to see it, and a closed terminal must not leave vLLM holding the GPUs);
// - the output has no room: a file on a full disk (`llmserve start > llmserve.log`: ENOSPC, EDQUOT, EFBIG). The
//   reader is still there and the service is fine: `start` says so and keeps serving, and a command whose output
//   is its product (`keys generate`, `usage --json`) exits 1 instead of 0 with an empty or cut file.
// Node reports either as an 'error' event on process.stdout or process.stderr, an uncaught exception without a
// listener; a file, which the logger and the commands write through stdSink, is reported by the sink itself.
import { fstatSync, writeSync } from 'node:fs';

type Listener = (code: string) => void;
/** Which standard stream failed. */
export type StdStream = 'stdout' | 'stderr';
type FailListener = (code: string, stream: StdStream) => void;

/** Write errors that mean nobody reads any more: a closed terminal (EIO), a closed pipe or socket. */
const READER_GONE = new Set(['EIO', 'EPIPE', 'ECONNRESET']);

const closedListeners = new Set<Listener>();
const failedListeners = new Set<FailListener>();
let closedWith: string | null = null;
/** The first failure of stdout that was not a closed reader: what main.ts turns into exit 1. */
let stdoutFailure: string | null = null;

/** Sorts one write error into "closed" or "failed" and tells the subscribers; a file has no reader to lose (its EIO is the disk's). */
function report(code: string, stream: StdStream, file = false): void {
  if (!file && READER_GONE.has(code)) {
    if (closedWith !== null) return;
    closedWith = code;
    for (const listener of closedListeners) listener(code);
    return;
  }
  if (stream === 'stdout') stdoutFailure ??= code;
  for (const listener of failedListeners) listener(code, stream);
}

/**
 * Keeps a failed stdout or stderr from crashing llmserve and tells the subscribers of onOutputClosed (once) or
 * onOutputFailed (what is written after a failure is dropped; a --log-file still gets every line). Called once, by
 * the exit point.
 */
export function guardOutput(streams: readonly NodeJS.EventEmitter[] = [process.stdout, process.stderr]): void {
  streams.forEach((stream, i) => {
    // Reported once per stream: an errored Node stream reports every later write again.
    let said = false;
    stream.on('error', (err: NodeJS.ErrnoException) => {
      if (said) return;
      said = true;
      report(err.code ?? err.message, i === 0 ? 'stdout' : 'stderr');
    });
  });
}

/** Calls `listener` with the error code (EIO, EPIPE) when the output's reader is gone, at once if it already is; returns its unregister function. */
export function onOutputClosed(listener: Listener): () => void {
  if (closedWith !== null) listener(closedWith);
  closedListeners.add(listener);
  return () => closedListeners.delete(listener);
}

/** Calls `listener` each time stdout or stderr starts failing while its reader is still there (a full disk); returns its unregister function. */
export function onOutputFailed(listener: FailListener): () => void {
  failedListeners.add(listener);
  return () => failedListeners.delete(listener);
}

/** The error code of the first stdout write that failed for lack of room (not a closed reader), or null. */
export function stdoutFailed(stream: NodeJS.WritableStream = process.stdout): string | null {
  // `errored` covers a failed write whose 'error' event is still queued when the command ends.
  const errored = (stream as { errored?: NodeJS.ErrnoException | null }).errored?.code;
  return stdoutFailure ?? (errored !== undefined && !READER_GONE.has(errored) ? errored : null);
}

/** What the logger and the commands write a standard stream through. */
export interface StdSink {
  write(chunk: string): unknown;
  readonly isTTY?: boolean;
  readonly columns?: number;
  /** Bytes waiting to be written (a pipe whose reader is slow); absent where writes are synchronous. */
  readonly writableLength?: number;
}

/** A standard stream as Node types it, with its file descriptor. */
type Std = NodeJS.WriteStream & { fd: number };

const sinks = new Map<Std, StdSink>();

/**
 * The sink for process.stdout or process.stderr. A pipe or a terminal is the stream itself. A file (or a device such as
 * /dev/full) is written whole, synchronously, as Node writes it, but: a short write (a disk that fills up in the
 * middle of a line) is finished or reported, where Node drops the rest without an error; a failure is reported once
 * and writing resumes once there is room again, where Node keeps every later line in memory and never writes it.
 */
export function stdSink(stream: Std, name: StdStream): StdSink {
  let sink = sinks.get(stream);
  if (sink === undefined) {
    sink = isFileLike(stream) ? fileSink(stream.fd, name) : stream;
    sinks.set(stream, sink);
  }
  return sink;
}

/** Writes a command's output (the key, the report) to stdout: a failure makes main.ts exit 1 (see stdoutFailed). */
export function writeStdout(text: string): void {
  stdSink(process.stdout, 'stdout').write(text);
}

function isFileLike(stream: Std): boolean {
  if (stream.isTTY === true || typeof stream.fd !== 'number') return false;
  try {
    const stat = fstatSync(stream.fd);
    return stat.isFile() || stat.isCharacterDevice() || stat.isBlockDevice();
  } catch {
    return false;
  }
}

/**
 * Writes text to a file descriptor whole, or throws with as much as fit written (a full disk). Why it remembers: the
 * line cut there would get the next line written right after it once there is room again, one unreadable line (no
 * JSON) where two were; the next write after a cut begins with a line end.
 */
export function wholeLineWriter(fd: number, write: (fd: number, data: Buffer, offset: number) => number = writeSync): (text: string) => void {
  let midLine = false;
  return (text) => {
    const data = Buffer.from(midLine ? '\n' + text : text);
    let off = 0;
    try {
      while (off < data.length) {
        const n = write(fd, data, off);
        // A regular file answers a full disk with ENOSPC, never 0; a device that does is treated alike.
        if (n <= 0) throw Object.assign(new Error('nothing written'), { code: 'ENOSPC' });
        off += n;
      }
      midLine = data.length > 0 && data[data.length - 1] !== 0x0a;
    } catch (err) {
      if (off > 0) midLine = data[off - 1] !== 0x0a;
      throw err;
    }
  };
}

function fileSink(fd: number, name: StdStream): StdSink {
  let failing = false;
  const writeWhole = wholeLineWriter(fd);
  return {
    isTTY: false,
    write(chunk) {
      try {
        writeWhole(chunk);
        failing = false;
      } catch (err) {
        // Said once per spell of failures, like --log-file: every later line would say it again. Set before
        // reporting: the warning may come back here (stderr on the same full disk).
        if (failing) return true;
        failing = true;
        report((err as NodeJS.ErrnoException).code ?? (err as Error).message, name, true);
      }
      return true;
    },
  };
}

/** A failed write's code in words (`ENOSPC: no space left where it goes`). */
export function describeWriteError(code: string): string {
  return code === 'ENOSPC' || code === 'EDQUOT' ? `${code}: no space left where it goes` : code === 'EFBIG' ? `${code}: over the file-size limit` : code;
}

/** What `start` says when stdout or stderr fails for lack of room: it keeps serving (a log is not worth the service). */
export function outputFailedWarning(code: string, stream: StdStream): string {
  return `cannot write ${stream} (${describeWriteError(code)}); llmserve keeps serving, and its ${stream} lines are lost until a write succeeds again (--log-file, when set, gets every line); free some space there`;
}
