// A command that could not be spawned at all (vLLM, Ray): said in words, with its fix and the documented exit code.
import { LlmserveError } from '../errors.js';

const CONFIGURATION = new Set(['ENOENT', 'EACCES', 'ENOTDIR', 'ENOEXEC']);

/**
 * The error for a failed spawn of `file`; `fix` is what to install or set (without "Fix: "). Why exit 2 for a
 * missing and a non-executable command alike: nothing ran, so PATH or the configured command is wrong; exit 3 is for
 * a start-up that failed, with vLLM's last lines.
 */
export function spawnFailure(file: string, err: NodeJS.ErrnoException, fix: string): LlmserveError {
  const code = err.code ?? err.message;
  const why = err.code === 'ENOENT' ? `${code}: not found${file.includes('/') ? '' : ' on PATH'}` : err.code === 'EACCES' ? `${code}: not executable by this user, or a directory` : code;
  return new LlmserveError('STARTUP_FAILED', `cannot run "${file}": ${why}`, {
    exitCode: err.code !== undefined && CONFIGURATION.has(err.code) ? 2 : 3,
    details: [`Fix: ${err.code === 'EACCES' ? `make it executable (chmod +x ${file}), or ` : ''}${fix}`],
  });
}
