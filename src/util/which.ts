// Whether a command can be run, found as `execvp` finds it, without running it.
import { accessSync, closeSync, constants, openSync, readSync, statSync } from 'node:fs';
import path from 'node:path';

/**
 * Why spawning `file` with this environment would fail for want of the file (`ENOENT`) or of the right to run it
 * (`EACCES`: not executable, or a directory), or null when it can be run (or when that cannot be told: no PATH).
 * As `execvp` does, a PATH entry that is not executable is passed over, and `EACCES` wins only when none is found.
 */
export function unrunnableReason(file: string, env: NodeJS.ProcessEnv, cwd: string = process.cwd()): 'ENOENT' | 'EACCES' | null {
  const found = candidates(file, env, cwd);
  if (found === null) return null;
  let denied = false;
  for (const candidate of found) {
    const why = check(candidate);
    if (why === null) return null;
    if (why === 'EACCES') denied = true;
  }
  return denied ? 'EACCES' : 'ENOENT';
}

/** The files execvp tries for `file`, in order (null when that cannot be told: no PATH). */
function candidates(file: string, env: NodeJS.ProcessEnv, cwd: string): string[] | null {
  if (file.includes('/')) return [path.resolve(cwd, file)];
  if (env.PATH === undefined) return null;
  // An empty PATH entry is the current directory, as for execvp.
  return env.PATH.split(path.delimiter).map((dir) => path.resolve(cwd, dir === '' ? '.' : dir, file));
}

/** A script's interpreter that cannot be run: missing (ENOENT) or not executable (EACCES). */
export interface UnrunnableInterpreter {
  interpreter: string;
  code: 'ENOENT' | 'EACCES';
}

/**
 * The interpreter that a runnable script's `#!` line names and that does not exist (or cannot be run), or null. Why:
 * `vllm` is a pip entry-point script whose `#!` names its virtualenv's python; when that environment moved (a copied
 * image, a deleted venv) the script is there and executable, and the kernel's ENOENT would read as "vllm not found".
 * As execvp does, a script whose interpreter is missing is passed over for a later one on PATH. `#!/usr/bin/env
 * python3` runs env, which then fails itself: the program it looks up is named, and no later script is tried.
 */
export function missingInterpreter(file: string, env: NodeJS.ProcessEnv, cwd: string = process.cwd()): UnrunnableInterpreter | null {
  let first: UnrunnableInterpreter | null = null;
  for (const candidate of candidates(file, env, cwd) ?? []) {
    if (check(candidate) !== null) continue;
    // The first candidate execve runs: a binary, or a script whose interpreter is there.
    const line = firstLine(candidate);
    if (line === null || !line.startsWith('#!')) return null;
    const [interpreter, ...args] = line.slice(2).trim().split(/\s+/);
    if (interpreter === undefined || interpreter === '') return null;
    const why = check(interpreter);
    if (why !== null) {
      first ??= { interpreter, code: why };
      continue;
    }
    if (path.basename(interpreter) !== 'env') return null;
    // env's own options (-S, -i, -u NAME) and NAME=VALUE settings come first; the first other word is the program.
    const program = args.find((a, i) => !a.startsWith('-') && !a.includes('=') && args[i - 1] !== '-u');
    const programWhy = program === undefined ? null : unrunnableReason(program, env, cwd);
    if (program === undefined || programWhy === null) return null;
    // Named by its path where one is there but cannot be run (the fix is a chmod of that file), else as env looks it up.
    const there = programWhy === 'EACCES' ? candidates(program, env, cwd)?.find((c) => check(c) === 'EACCES') : undefined;
    return { interpreter: there ?? program, code: programWhy };
  }
  return first;
}

/** The first line of a file (at most 256 bytes), or null when it cannot be read. */
function firstLine(file: string): string | null {
  let fd: number;
  try {
    fd = openSync(file, 'r');
  } catch {
    return null;
  }
  try {
    const buf = Buffer.alloc(256);
    const n = readSync(fd, buf, 0, buf.length, 0);
    const text = buf.toString('utf8', 0, n);
    const end = text.indexOf('\n');
    return end === -1 ? text : text.slice(0, end);
  } catch {
    return null;
  } finally {
    closeSync(fd);
  }
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
