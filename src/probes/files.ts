// The probe files the platform reads: `not-ready` and `not-healthy`, written atomically, removed idempotently.
import { rmSync, constants } from 'node:fs';
import { mkdtemp, access, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { LlmserveError } from '../errors.js';
import { makeDirs } from '../util/make-dirs.js';
import { replaceFileSync, writeNewFile } from '../util/write-new.js';

/** Present while the service is not ready to take traffic (the platform's readiness probe). */
export const NOT_READY = 'not-ready';
/** Present while the service is unhealthy (the platform's liveness probe). */
export const NOT_HEALTHY = 'not-healthy';

/** The supervisor's handle on the probe directory; the supervisor is its only writer. */
export interface ProbeFiles {
  readonly dir: string;
  set(name: typeof NOT_READY | typeof NOT_HEALTHY, present: boolean): void;
  /** Both files present: the state at every exit. */
  markDown(): void;
}

/** Where the probe files' troubles are said (the logger): a full disk, a file that cannot be written at all. */
export interface ProbeFileReports {
  warn(msg: string): void;
  error(msg: string): void;
}

const unreported: ProbeFileReports = { warn() {}, error() {} };

/** Creates a probe-file handle on a directory that is known to be writable. */
export function probeFiles(dir: string, report: ProbeFileReports = unreported): ProbeFiles {
  const state = new Map<string, boolean>();
  let saidFull = false;
  return {
    dir,
    set(name, present) {
      // Synchronous on purpose: probe writes are tiny, and the exit paths (signals, uncaught errors) cannot await.
      const file = path.join(dir, name);
      try {
        if (present) {
          const full = writeProbeFile(dir, file, path.join(dir, `.${name}.${process.pid}.tmp`));
          // Said once per spell, like --log-file: a disk that has room again and fills up later is said again.
          if (full === null) saidFull = false;
          else if (!saidFull) {
            saidFull = true;
            report.warn(`the disk that holds ${dir} is full (${full}): probe files are written empty while it is (the platform reads only whether they exist); free some space there`);
          }
        } else {
          rmSync(file, { force: true });
        }
      } catch (err) {
        // Why not throw: a probe file that cannot be written (no inode left, a read-only remount) must not take down
        // a vLLM that serves, and an exit path must go on to stop the children. Said, and tried again at the next change.
        const code = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
        report.error(`cannot ${present ? 'create' : 'remove'} the probe file ${file} (${code}): the platform does not see this change; fix the probe directory (space, permissions, mount) or choose another with --probe-dir`);
      }
      state.set(name, present);
    },
    markDown() {
      this.set(NOT_READY, true);
      this.set(NOT_HEALTHY, true);
    },
  };
}

/** Creates a probe file with the time in it, or empty when the disk is full (returns why); throws when neither works. */
function writeProbeFile(dir: string, file: string, tmp: string): string | null {
  const write = (data: string) => {
    try {
      replaceFileSync(file, tmp, data);
    } catch (err) {
      // The directory was removed while llmserve ran (a /tmp cleaner, an `rm -rf`): the platform still reads this
      // path, so it is made again, rather than dying with an uncaught error at the next change of state.
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      makeDirs(dir);
      replaceFileSync(file, tmp, data);
    }
  };
  try {
    write(`${new Date().toISOString()}\n`);
    return null;
  } catch (err) {
    // A full disk (or quota, or a file-size limit) still has room for an empty file: an inode and a name, no data
    // block. The time in the file is for people; the platform reads only whether it exists.
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'ENOSPC' && code !== 'EDQUOT' && code !== 'EFBIG') throw err;
    write('');
    return code;
  }
}

/** Makes sure the probe directory exists and is writable; falls back to a temporary one when it was not set explicitly. */
export async function prepareProbeDir(dir: string, explicit: boolean, warn: (msg: string) => void): Promise<string> {
  const problem = await writableProblem(dir);
  if (problem === null) return dir;
  if (explicit) {
    throw new LlmserveError('PROBE_DIR', `probe directory ${dir} is not writable: ${problem}`, {
      details: ['Fix: create it with write access for this user, or choose another with --probe-dir DIR (or probes.dir).'],
    });
  }
  // A TMPDIR that names a missing or read-only directory (a container's env copied from another machine) leaves no
  // fallback: said as the configuration problem it is, not as an internal error with a stack trace.
  const fallback = await mkdtemp(path.join(os.tmpdir(), 'llmserve-probe-')).catch((err: NodeJS.ErrnoException) => {
    throw new LlmserveError('PROBE_DIR', `default probe directory ${dir} is not writable (${problem}), and no temporary one can be made in ${os.tmpdir()} (${err.code ?? err.message})`, {
      details: ['Fix: choose a writable directory with --probe-dir DIR (or probes.dir), or point TMPDIR at an existing writable directory.'],
    });
  });
  // `check` finds a start through the runtime file in the probe directory: it must be told this one.
  warn(`default probe directory ${dir} is not writable (${problem}); using ${fallback} instead (check this start with: llmserve check --probe-dir ${fallback}). Set --probe-dir to choose one.`);
  return fallback;
}

/** Says why a directory cannot hold probe files, or null when it can (creating it if needed). */
export async function writableProblem(dir: string): Promise<string | null> {
  try {
    makeDirs(dir);
    await access(dir, constants.W_OK);
    // access() says yes for root on a read-only mount: write a real file to be sure.
    const probe = path.join(dir, `.llmserve-write-test.${process.pid}`);
    writeNewFile(probe, '');
    await rm(probe, { force: true });
    return null;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code ?? String(err);
  }
}
