// `--log-file`: opened once at start, appended to line by line; failures said in words, with their fix.
import { closeSync, constants, fstatSync, lstatSync, openSync, readlinkSync, statSync } from 'node:fs';
import { access, open, stat } from 'node:fs/promises';
import path from 'node:path';
import { LlmserveError } from '../errors.js';
import { wholeLineWriter } from '../util/output.js';

/** Why the log file cannot be opened, and what to do, in words (the errno code alone names no fix). */
export function logFileProblem(file: string, err: NodeJS.ErrnoException): string {
  const another = 'give another file with --log-file FILE (LLMSERVE_LOG_FILE)';
  switch (err.code) {
    case 'ENOENT': {
      // A dangling symlink is opened through: the missing directory is its target's, not the link's own.
      const target = linkTarget(file);
      return target === null
        ? `the directory ${path.dirname(path.resolve(file))} does not exist (ENOENT); create it, or ${another}`
        : `it is a symbolic link to ${target}, whose directory ${path.dirname(target)} does not exist (ENOENT); create it, or ${another}`;
    }
    case 'ENOTDIR':
      return `a component of the path is a file, not a directory (ENOTDIR); ${another}`;
    case 'EISDIR':
      return `it is a directory (EISDIR); give a file name, such as ${path.join(file, 'llmserve.log')}`;
    case 'EACCES':
    case 'EPERM':
    case 'EROFS':
      return `this user may not write it (${err.code}); fix its permissions, or ${another}`;
    default:
      return `${err.code ?? err.message}; ${another}`;
  }
}

/** The absolute path a symbolic link at `file` points to, or null when `file` is no link (or cannot be read). */
function linkTarget(file: string): string | null {
  try {
    return lstatSync(file).isSymbolicLink() ? path.resolve(path.dirname(path.resolve(file)), readlinkSync(file)) : null;
  } catch {
    return null;
  }
}

/**
 * Opens the --log-file for appending (created if needed); a path that cannot be opened is exit 2. A write that fails
 * (disk full, EIO) warns once through `onWriteError` and is never thrown: losing the log file must not stop serving.
 */
export function openLogFile(file: string, onWriteError: (message: string) => void, from = '--log-file'): LogFile {
  let fd: number;
  try {
    fd = openSync(file, 'a');
  } catch (err) {
    throw new LlmserveError('USAGE', `${from}: cannot open ${file}: ${logFileProblem(file, err as NodeJS.ErrnoException)}`);
  }
  let failing = false;
  // A new one for each file opened (reopen): a cut line is the old file's.
  let writeWhole = wholeLineWriter(fd);
  // Synchronous appends: a line is on disk before llmserve can die, and the order of lines is kept. Whole (a short
  // write finished, or the next line begun on a line of its own): a full disk costs lines, never their framing.
  const write = (line: string) => {
    try {
      writeWhole(line + '\n');
      failing = false;
    } catch (err) {
      if (failing) return;
      // Set before warning: the warning is teed here too, and must not warn again.
      failing = true;
      const code = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
      onWriteError(`--log-file ${file}: cannot write (${code}); lines go to stdout and stderr only, and to the file again once a write succeeds`);
    }
  };
  // Why on SIGHUP: logrotate's default renames the file and signals, and lines would go on into the renamed one.
  // Only a regular file, open now and at the path: opening a FIFO for writing waits for a reader (the supervisor's
  // loop with it), and a pipe or a device is not rotated.
  const reopen = (): string | null => {
    try {
      if (!fstatSync(fd).isFile() || !statSync(file).isFile()) return null;
    } catch {
      // The path is gone (renamed, no new file yet): opening it makes a new one, as logrotate's `create` would.
    }
    let next: number;
    try {
      next = openSync(file, 'a');
    } catch (err) {
      return (err as NodeJS.ErrnoException).code ?? (err as Error).message;
    }
    const old = fd;
    fd = next;
    writeWhole = wholeLineWriter(fd);
    try {
      closeSync(old);
    } catch {
      // already gone: nothing to close
    }
    return null;
  };
  return Object.assign(write, { reopen });
}

/** The log file's writer; `reopen` opens the path again (a rotated file), returning why it could not, or null. */
export type LogFile = ((line: string) => void) & { reopen(): string | null };

/**
 * Why `openLogFile` would fail on `file`, found without creating it (for `probe`): an existing file is opened for
 * appending and closed, a missing one needs a writable directory (a dangling symlink: its target's); null when fine.
 */
export async function logFileOpenError(file: string): Promise<NodeJS.ErrnoException | null> {
  const asError = (err: unknown) => err as NodeJS.ErrnoException;
  // A name with a trailing slash is a directory's: start's open fails with EISDIR whether it exists or not.
  if (file.endsWith('/')) return Object.assign(new Error(`${file} names a directory`), { code: 'EISDIR' });
  const info = await stat(file).catch((err: NodeJS.ErrnoException) => (err.code === 'ENOENT' ? null : err));
  if (info instanceof Error) return asError(info);
  if (info !== null && info.isDirectory()) return Object.assign(new Error(`${file} is a directory`), { code: 'EISDIR' });
  // A FIFO (or a device) is not opened here: a FIFO without a reader would hold probe until one came.
  if (info !== null && !info.isFile()) return access(file, constants.W_OK).then(() => null, asError);
  if (info !== null) return open(file, 'a').then((fh) => fh.close().then(() => null), asError);
  // A dangling symlink: opening it creates its target, in the target's directory.
  const target = linkTarget(file) ?? file;
  const dir = path.dirname(path.resolve(target));
  const parent = await stat(dir).catch(asError);
  if (parent instanceof Error) return parent;
  if (!parent.isDirectory()) return Object.assign(new Error(`${dir} is not a directory`), { code: 'ENOTDIR' });
  return access(dir, constants.W_OK).then(() => null, asError);
}
