// The working directory, which can be gone: a shell still sitting in a directory that was deleted (a rebuilt
// checkout, a removed worktree), where process.cwd() throws ENOENT.
import { LlmserveError } from '../errors.js';

/** process.cwd(), or a usage error (exit 2) when it cannot be read: relative paths and ./llmserve.yaml have nothing to resolve against. */
export function workingDir(): string {
  try {
    return process.cwd();
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
    throw new LlmserveError('USAGE', `the current directory cannot be read (${code}: it was deleted, or this user may not enter it); cd to an existing directory and run llmserve again`);
  }
}
