// Whether a command can be run, found as `execvp` finds it, without running it.
import { accessSync, constants, statSync } from 'node:fs';
import path from 'node:path';

/**
 * Why spawning `file` with this environment would fail for want of the file (`ENOENT`) or of the right to run it
 * (`EACCES`: not executable, or a directory), or null when it can be run (or when that cannot be told: no PATH).
 * As `execvp` does, a PATH entry that is not executable is passed over, and `EACCES` wins only when none is found.
 */
export function unrunnableReason(file: string, env: NodeJS.ProcessEnv, cwd: string = process.cwd()): 'ENOENT' | 'EACCES' | null {
  if (file.includes('/')) return check(path.resolve(cwd, file));
  if (env.PATH === undefined) return null;
  let denied = false;
  // An empty PATH entry is the current directory, as for execvp.
  for (const dir of env.PATH.split(path.delimiter)) {
    const why = check(path.resolve(cwd, dir === '' ? '.' : dir, file));
    if (why === null) return null;
    if (why === 'EACCES') denied = true;
  }
  return denied ? 'EACCES' : 'ENOENT';
}

function check(candidate: string): 'ENOENT' | 'EACCES' | null {
  try {
    if (!statSync(candidate).isFile()) return 'EACCES';
    accessSync(candidate, constants.X_OK);
    return null;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EACCES' ? 'EACCES' : 'ENOENT';
  }
}
