// `llmserve.json` beside the probe files: what a running `start` uses, so `check` finds ports given only on its command line.
import { closeSync, fstatSync, openSync, readFileSync, rmSync, statSync } from 'node:fs';
import path from 'node:path';
import { procStatFields } from '../util/proc-stat.js';
import { replaceFileSync } from '../util/write-new.js';

/** The file in the probe directory that says which llmserve runs there, on which ports (`check` reads it). */
export const RUNTIME_FILE = 'llmserve.json';

/** The runtime file's content (a contract with `check`). */
export interface RuntimeInfo {
  pid: number;
  startedAt: string;
  proxy: { host: string; port: number; tls: boolean };
  backend: { host: string; port: number };
  models: string[];
  /** Every model's vLLM (several models); `backend` is the first. Absent in files of older versions. */
  backends?: { model: string; host: string; port: number }[];
  /** Several models: `probes.require`, so that `check` judges health as start does. Absent in older files. */
  require?: 'all' | 'any';
  /**
   * Who wrote the file, exactly: the pid's start time in clock ticks since boot (/proc/PID/stat field 22) and the
   * boot's id, which no clock step changes. Absent in older files (and off Linux): startedAt is compared instead.
   */
  process?: ProcessIdentity;
  /** `worker` for a `--role worker`, which serves no HTTP (its proxy and backend are the config's, unused); absent otherwise. */
  role?: 'worker';
  /** A worker's head address. */
  head?: string;
}

/** A process named exactly: the same pid, started at the same tick of the same boot, is the same process. */
export interface ProcessIdentity {
  startTicks: string;
  bootId: string;
}

/** This process's identity (for the runtime file); null without /proc. */
export function selfIdentity(proc: ProcReader = linuxProc, pid: number = process.pid): ProcessIdentity | null {
  const startTicks = proc.startTicks(pid);
  const bootId = proc.bootId();
  return startTicks === null || bootId === null ? null : { startTicks, bootId };
}

/** Writes the runtime file atomically. */
export function writeRuntimeFile(dir: string, info: RuntimeInfo): void {
  const file = path.join(dir, RUNTIME_FILE);
  const tmp = `${file}.${process.pid}.tmp`;
  replaceFileSync(file, tmp, JSON.stringify(info, null, 2) + '\n');
}

/**
 * Removes whatever runtime file is there (the caller knows it names no running llmserve); true when there was one.
 * For a start that cannot write its own: a file left by an llmserve that was SIGKILLed would send `check` to its ports.
 */
export function discardRuntimeFile(dir: string): boolean {
  const file = path.join(dir, RUNTIME_FILE);
  try {
    rmSync(file);
    return true;
  } catch {
    return false; // none there, or no permission: nothing more to do about it
  }
}

/**
 * Removes the runtime file if it is ours; never throws, returns why it could not (an errno code), or null. Why: it runs
 * on the way out, after the stop, where a probe directory that went read-only (a file system remounted after an error)
 * must not turn a clean exit into a crash; a file left behind is harmless, its pid is gone.
 */
export function removeRuntimeFile(dir: string, pid = process.pid): string | null {
  try {
    // Whoever wrote it: only this process's own file is removed (or a file that is no runtime file at all).
    const info = readRuntimeFile(dir, () => true);
    if (info === null || info.pid === pid) rmSync(path.join(dir, RUNTIME_FILE), { force: true });
    return null;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code ?? (err as Error).message;
  }
}

/**
 * The other `start` that uses this probe directory now: its runtime file names a live process that is llmserve and is
 * the very process that wrote it (the same start tick in the same boot; for files without that, one that started
 * before the file was written). Null otherwise: no file, this process's own, or a stale one (its pid gone, or reused
 * since, as in a restarted container whose volume kept the file).
 */
export function runningOwner(dir: string, self: number = process.pid, proc: ProcReader = linuxProc): RuntimeInfo | null {
  return ownerOf(readRuntimeFile(dir), self, proc);
}

/** runningOwner for a runtime file already read (probe reads it for its own facts too). */
export function ownerOf(info: RuntimeInfo | null, self: number = process.pid, proc: ProcReader = linuxProc): RuntimeInfo | null {
  if (info === null || !Number.isInteger(info.pid) || info.pid <= 0 || info.pid === self) return null;
  // Another user's process is not our llmserve, whatever its command line says (anyone can name theirs `llmserve`):
  // the process must run as the file's writer (start writes it as itself), or as this user or root.
  const uid = proc.uid(info.pid);
  if (uid === null || !(trustedUid(uid) || uid === writers.get(info))) return null;
  const cmdline = proc.cmdline(info.pid);
  if (cmdline === null || !cmdline.includes('llmserve')) return null;
  const id = info.process;
  if (typeof id?.startTicks === 'string' && typeof id.bootId === 'string') {
    // Why not the clock: a clock stepped back after a container restart would make the new process's start look
    // older than the old file, and every start would then refuse the directory. Ticks since boot never step.
    return proc.startTicks(info.pid) === id.startTicks && proc.bootId() === id.bootId ? info : null;
  }
  const written = Date.parse(info.startedAt);
  const started = proc.startedAtMs(info.pid);
  if (started === null || Number.isNaN(written)) return null;
  // /proc's start time is in clock ticks since a boot time given in whole seconds: a second's slack.
  return started <= written + 1000 ? info : null;
}

/** The PROBE_DIR error of a directory that a running llmserve owns: what `start` stops at and `probe` reports. */
export function ownedProbeDir(dir: string, owner: RuntimeInfo): { message: string; fix: string } {
  return {
    message: `the probe directory ${dir} belongs to a running llmserve (pid ${owner.pid}, started ${owner.startedAt}, ${owner.role === 'worker' ? `a Ray worker of ${owner.head ?? 'a head'}` : `proxy on port ${owner.proxy.port}`}); this start would overwrite its probe files`,
    fix: 'Fix: stop that one first, or give this one a probe directory of its own with --probe-dir DIR (and ports of its own).',
  };
}

/**
 * Whose runtime files and processes are believed: this user's and root's. Why: a probe directory may be shared and
 * writable by all (mode 1777); any local user could plant a file there naming a process of theirs and a port they
 * listen on, and `check` would send the key to it and `start` would refuse the directory as taken.
 */
export function trustedUid(uid: number, self: number | undefined = process.getuid?.()): boolean {
  return self === undefined || uid === self || uid === 0;
}

/**
 * Whether a runtime file owned by `fileUid` in a directory so owned and moded is believed: written by this user or
 * root, or by the directory's owner in a directory no one else may write to. Why the last: `start` often runs as a
 * service user (an entrypoint that drops root) while `check` and a second `start` come as root (`kubectl exec`);
 * only that owner, or root, could have put the file there.
 */
export function trustedRuntimeFile(fileUid: number, dir: { uid: number; mode: number }, self: number | undefined = process.getuid?.()): boolean {
  return trustedUid(fileUid, self) || (fileUid === dir.uid && (dir.mode & 0o022) === 0);
}

/** Each runtime file read and who owns it: its writer, whose process ownerOf then believes. */
const writers = new WeakMap<RuntimeInfo, number>();

/** What runningOwner reads about a process (injected in tests); null when it is gone or unreadable. */
export interface ProcReader {
  /** The user the process runs as (its effective uid, the owner of /proc/PID). */
  uid(pid: number): number | null;
  startedAtMs(pid: number): number | null;
  /** The start time in clock ticks since boot, as /proc prints it; null for a zombie (it has exited already). */
  startTicks(pid: number): string | null;
  /** This boot's id (a new one after every reboot). */
  bootId(): string | null;
  cmdline(pid: number): string | null;
}

/** ProcReader on Linux's /proc. */
export const linuxProc: ProcReader = {
  uid(pid) {
    try {
      return statSync(`/proc/${pid}`).uid;
    } catch {
      return null;
    }
  },
  startedAtMs(pid) {
    const ticks = linuxProc.startTicks(pid);
    if (ticks === null) return null;
    try {
      const bootSeconds = Number(/^btime (\d+)$/m.exec(readFileSync('/proc/stat', 'utf8'))?.[1]);
      // USER_HZ is 100 on every Linux that Node runs on.
      return bootSeconds * 1000 + Number(ticks) * 10;
    } catch {
      return null;
    }
  },
  startTicks(pid) {
    const fields = procStatFields(pid);
    // Field 22 (starttime), the 20th after the command name; a zombie has exited already.
    if (fields === null || fields[0] === 'Z') return null;
    return /^\d+$/.test(fields[19] ?? '') ? fields[19]! : null;
  },
  bootId() {
    try {
      return readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim() || null;
    } catch {
      return null;
    }
  },
  cmdline(pid) {
    try {
      return readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ');
    } catch {
      return null;
    }
  },
};

/** Reads the runtime file; null when absent, unreadable, or written by a user not trusted (see trustedRuntimeFile). */
export function readRuntimeFile(dir: string, trusts: (fileUid: number, dir: { uid: number; mode: number }) => boolean = trustedRuntimeFile): RuntimeInfo | null {
  let fd: number | undefined;
  try {
    // One open for the owner and the content: the file cannot be swapped between the two.
    fd = openSync(path.join(dir, RUNTIME_FILE), 'r');
    const owner = fstatSync(fd).uid;
    if (!trusts(owner, statSync(dir))) return null;
    const info = JSON.parse(readFileSync(fd, 'utf8')) as RuntimeInfo;
    if (typeof info?.proxy?.port !== 'number' || typeof info?.backend?.port !== 'number') return null;
    writers.set(info, owner);
    return info;
  } catch {
    return null;
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}
