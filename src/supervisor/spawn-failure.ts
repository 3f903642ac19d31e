// A command that could not be spawned at all (vLLM, Ray): said in words, with its fix and the documented exit code.
import { isAbsolute, resolve } from 'node:path';
import { LlmserveError } from '../errors.js';
import type { UnrunnableInterpreter } from '../util/which.js';

const CONFIGURATION = new Set(['ENOENT', 'EACCES', 'ENOTDIR', 'ENOEXEC']);

/** What to do when `vllm` (or vllm.command) cannot be run. */
export const VLLM_INSTALL_FIX = 'install vLLM (pip install vllm) so that `vllm` is on PATH, or set vllm.command.';
/** What to do when `ray` (or ray.command) cannot be run. */
export const RAY_INSTALL_FIX = 'install Ray (pip install "ray[default]") so that `ray` is on PATH, or set ray.command in the config file.';

/** True when a spawn failed with an errno that means the command itself is wrong (missing, not executable): exit 2. */
export function isUnrunnable(code: string | undefined): boolean {
  return code !== undefined && CONFIGURATION.has(code);
}

/** Why `file` could not be spawned, in words (`EACCES: not executable by this user, or a directory`). */
export function spawnErrorText(file: string, code: string): string {
  // A relative path is looked up from the working directory, not from the config file that may have named it.
  if (code === 'ENOENT') return `${code}: not found${!file.includes('/') ? ' on PATH' : isAbsolute(file) ? '' : ` (as ${resolve(file)}: relative to the working directory)`}`;
  return code === 'EACCES' ? `${code}: not executable by this user, or a directory` : code;
}

/**
 * The error for a failed spawn of `file`; `fix` is what to install or set (without "Fix: "). Why exit 2 for a
 * missing and a non-executable command alike: nothing ran, so PATH or the configured command is wrong; exit 3 is for
 * a start-up that failed, with vLLM's last lines.
 */
export function spawnFailure(file: string, err: NodeJS.ErrnoException, fix: string): LlmserveError {
  const unrunnable = isUnrunnable(err.code);
  return new LlmserveError('STARTUP_FAILED', `cannot run "${file}": ${spawnErrorText(file, err.code ?? err.message)}`, {
    exitCode: unrunnable ? 2 : 3,
    // The install fix only where the command is what is wrong: the system refusing a process (EAGAIN, ENOMEM) or an
    // oversized command line (E2BIG) is not fixed by installing vLLM again.
    details: [unrunnable ? `Fix: ${err.code === 'EACCES' ? `make it executable (chmod +x ${file}), or ` : ''}${fix}` : systemFix(err.code)],
  });
}

/** What to do when the system, not the command, refused the spawn. */
function systemFix(code: string | undefined): string {
  if (code === 'E2BIG') return 'Fix: the command line and environment are larger than the system allows (ARG_MAX): shorten vllm.args and vllm.env.';
  return 'Fix: the system refused to start a process (out of memory, or of processes: see `ulimit -u` and the container\'s pids limit); free them and start again.';
}

/** The error for a script whose `#!` interpreter is missing (a moved virtualenv): exit 2, as for a missing command. */
export function interpreterFailure(file: string, why: UnrunnableInterpreter, fix: string): LlmserveError {
  return new LlmserveError('STARTUP_FAILED', `cannot run "${file}": ${interpreterText(why)}`, {
    exitCode: 2,
    details: [why.code === 'EACCES' ? `Fix: make the interpreter executable (chmod +x ${why.interpreter}), or ${fix}` : `Fix: the environment it was installed in has moved or is gone; ${fix}`],
  });
}

/** Why a script cannot run when its interpreter is missing or not executable, in words. */
export function interpreterText(why: UnrunnableInterpreter): string {
  return why.code === 'EACCES'
    ? `EACCES: the interpreter its #! line names, ${why.interpreter}, is not executable by this user`
    : `ENOENT: the interpreter its #! line names, ${why.interpreter}, does not exist`;
}
