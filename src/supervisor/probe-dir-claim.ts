// A probe directory held by one llmserve (start or a Ray worker): refused while another runs there, marked with this
// one's runtime file while it runs, unmarked when it ends.
import { existsSync } from 'node:fs';
import path from 'node:path';
import { LlmserveError } from '../errors.js';
import type { Logger } from '../log.js';
import { makeDirs } from '../util/make-dirs.js';
import { discardRuntimeFile, ownedProbeDir, removeRuntimeFile, runningOwner, RUNTIME_FILE, selfIdentity, writeRuntimeFile, type RuntimeInfo } from './runtime-file.js';

/**
 * Throws PROBE_DIR (exit 2) when a running llmserve owns `dir`. Called before any probe file is touched: a second
 * start on the same directory (run by hand in a serving pod, say) would mark the running one down, and the platform
 * would restart it.
 */
export function refuseOwnedProbeDir(dir: string, self: number): void {
  const owner = runningOwner(dir, self);
  if (owner === null) return;
  const { message, fix } = ownedProbeDir(dir, owner);
  throw new LlmserveError('PROBE_DIR', message, { details: [fix] });
}

/** A claim held while llmserve runs. */
export interface ProbeDirClaim {
  /** Stops writing the runtime file again (before it is removed on the way out). */
  stop(): void;
}

/**
 * Writes this process's runtime file (`info` plus its pid, start time and identity). One that cannot be written (a
 * full disk) is a warning saying what goes undetected (`lost`), never a reason to stop; an older file left there by an
 * llmserve that is gone is removed then (removing needs no room), so that nobody reads its ports.
 */
export function claimProbeDir(dir: string, pid: number, info: Omit<RuntimeInfo, 'pid' | 'startedAt' | 'process'>, logger: Logger, lost: string, renewEveryS: number): ProbeDirClaim {
  const identity = selfIdentity(undefined, pid);
  const full: RuntimeInfo = { pid, startedAt: new Date().toISOString(), ...(identity === null ? {} : { process: identity }), ...info };
  try {
    writeRuntimeFile(dir, full);
  } catch (err) {
    const stale = discardRuntimeFile(dir) ? `; the older ${RUNTIME_FILE} there, from an llmserve that is gone, was removed` : '';
    logger.warn(`cannot write ${RUNTIME_FILE} in ${dir} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}): ${lost}${stale}`);
  }
  // Written again when it is gone, every `renewEveryS` (the health interval). Why: a probe directory removed while
  // llmserve runs (a /tmp cleaner, an `rm -rf`) comes back with the next probe file, but without this file `check`
  // looked at the default ports and failed a serving pod, and a second start took the directory over.
  const renew = () => {
    if (existsSync(path.join(dir, RUNTIME_FILE))) return;
    try {
      makeDirs(dir);
      writeRuntimeFile(dir, full);
      logger.warn(`${RUNTIME_FILE} in ${dir} was gone (the directory removed?): written again, so that check finds this start and a second start is refused`);
    } catch {
      // Still not writable: said when it was first claimed; tried again at the next tick.
    }
  };
  const timer = setInterval(renew, renewEveryS * 1000);
  timer.unref();
  return { stop: () => clearInterval(timer) };
}

/** Removes this process's runtime file on the way out; one that cannot be removed is a warning (harmless: its pid is gone). */
export function releaseProbeDir(dir: string, pid: number, logger: Logger): void {
  const left = removeRuntimeFile(dir, pid);
  if (left !== null) logger.warn(`cannot remove ${RUNTIME_FILE} in ${dir} (${left}): it stays, and is ignored once this llmserve is gone`);
}
