// `--log-file`: opened once at start, appended to line by line; failures said in words, with their fix.
import { openSync, writeSync } from 'node:fs';
import path from 'node:path';
import { LlmserveError } from '../errors.js';

/** Why the log file cannot be opened, and what to do, in words (the errno code alone names no fix). */
function logFileProblem(file: string, err: NodeJS.ErrnoException): string {
  const another = 'give another file with --log-file FILE (LLMSERVE_LOG_FILE)';
  switch (err.code) {
    case 'ENOENT':
      return `the directory ${path.dirname(path.resolve(file))} does not exist (ENOENT); create it, or ${another}`;
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

/**
 * Opens the --log-file for appending (created if needed); a path that cannot be opened is exit 2. A write that fails
 * (disk full, EIO) warns once through `onWriteError` and is never thrown: losing the log file must not stop serving.
 */
export function openLogFile(file: string, onWriteError: (message: string) => void, from = '--log-file'): (line: string) => void {
  let fd: number;
  try {
    fd = openSync(file, 'a');
  } catch (err) {
    throw new LlmserveError('USAGE', `${from}: cannot open ${file}: ${logFileProblem(file, err as NodeJS.ErrnoException)}`);
  }
  let failing = false;
  // Synchronous appends: a line is on disk before llmserve can die, and the order of lines is kept.
  return (line) => {
    try {
      writeSync(fd, line + '\n');
      failing = false;
    } catch (err) {
      if (failing) return;
      // Set before warning: the warning is teed here too, and must not warn again.
      failing = true;
      const code = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
      onWriteError(`--log-file ${file}: cannot write (${code}); lines go to stdout and stderr only, and to the file again once a write succeeds`);
    }
  };
}
