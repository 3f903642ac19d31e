// The machine facts `probe` looks at besides the GPUs: ports, the probe directory, TLS files, a running start.
import { constants } from 'node:fs';
import { access, lstat, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { writableProblem } from '../probes/files.js';
import { ownerOf, readRuntimeFile } from '../supervisor/runtime-file.js';
import { certificateDateWarning, loadTls } from '../proxy/tls.js';
import { portBindError } from '../util/port.js';
import { LlmserveError } from '../errors.js';
import type { PortFact, ProbeDirFact, RunningFact } from './types.js';

/** Tries to bind `host:port` and lets go at once; says why when it cannot (EADDRINUSE, EACCES, ...). */
export async function portFact(port: number, host: string): Promise<PortFact> {
  const error = await portBindError(port, host);
  return { host, port, free: error === null, error };
}

/**
 * Whether the probe directory can hold probe files, without creating it: an existing one gets a real test write
 * (root passes access() even on read-only mounts); a missing one needs its nearest existing parent to be a writable directory.
 */
export async function probeDirFact(dir: string, explicit: boolean): Promise<ProbeDirFact> {
  const info = await stat(dir).catch((err: NodeJS.ErrnoException) => err);
  if (!(info instanceof Error)) {
    if (!info.isDirectory()) return { dir, explicit, exists: true, writable: false, error: 'ENOTDIR' };
    const problem = await writableProblem(dir);
    return { dir, explicit, exists: true, writable: problem === null, error: problem };
  }
  if (info.code !== 'ENOENT') return { dir, explicit, exists: false, writable: false, error: info.code ?? info.message };
  // A symlink to nowhere (a volume that is not mounted) is no directory start could create: its mkdir fails.
  const dangling = (p: string) => lstat(p).then(() => true, () => false);
  if (await dangling(dir)) return { dir, explicit, exists: false, writable: false, error: 'ENOENT (a symlink whose target does not exist)' };
  let parent = path.dirname(path.resolve(dir));
  for (;;) {
    const p = await stat(parent).catch(() => null);
    if (p === null && (await dangling(parent))) return { dir, explicit, exists: false, writable: false, error: `ENOENT (${parent} is a symlink whose target does not exist)` };
    if (p !== null) {
      if (!p.isDirectory()) return { dir, explicit, exists: false, writable: false, error: 'ENOTDIR' };
      const error = await access(parent, constants.W_OK).then(() => null, (err: NodeJS.ErrnoException) => err.code ?? err.message);
      return { dir, explicit, exists: false, writable: error === null, error };
    }
    const up = path.dirname(parent);
    if (up === parent) return { dir, explicit, exists: false, writable: false, error: 'ENOENT' };
    parent = up;
  }
}

/** The TLS files that cannot be read, as [setting, file, errno]. */
export async function unreadableTlsFiles(tls: { cert: string; key: string } | null): Promise<[string, string, string][]> {
  if (tls === null) return [];
  const out: [string, string, string][] = [];
  for (const [what, file] of [['proxy.tls.cert', tls.cert], ['proxy.tls.key', tls.key]] as const) {
    const error = await readFile(file).then(() => null, (err: NodeJS.ErrnoException) => err.code ?? err.message);
    if (error !== null) out.push([what, file, error]);
  }
  return out;
}

/**
 * What start would say of readable TLS files: why it would refuse them (not PEM, a key of another certificate), or
 * its warning about the certificate's dates (expired, not yet valid, expiring within days); neither when fine.
 */
export async function tlsFacts(tls: { cert: string; key: string } | null, nowMs: number): Promise<{ invalid?: string; invalidFix?: string; warning?: string }> {
  if (tls === null) return {};
  try {
    const warning = certificateDateWarning(await loadTls(tls), tls.cert, nowMs);
    return warning === null ? {} : { warning };
  } catch (err) {
    const fix = err instanceof LlmserveError ? err.details[0] : undefined;
    return { invalid: (err as Error).message, ...(fix !== undefined ? { invalidFix: fix } : {}) };
  }
}

/** A `start` that wrote its runtime file into the probe directory, and whether its pid still runs. */
export function runningFact(dir: string): RunningFact | null {
  const info = readRuntimeFile(dir);
  if (info === null || typeof info.pid !== 'number') return null;
  const owner = ownerOf(info);
  try {
    process.kill(info.pid, 0);
    return { pid: info.pid, alive: true, owner };
  } catch (err) {
    return { pid: info.pid, alive: (err as NodeJS.ErrnoException).code === 'EPERM', owner };
  }
}
