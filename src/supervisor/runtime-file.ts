// `llmserve.json` beside the probe files: what a running `start` uses, so `check` finds ports given only on its command line.
import { rmSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { replaceFileSync } from '../util/write-new.js';

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
}

/** Writes the runtime file atomically. */
export function writeRuntimeFile(dir: string, info: RuntimeInfo): void {
  const file = path.join(dir, RUNTIME_FILE);
  const tmp = `${file}.${process.pid}.tmp`;
  replaceFileSync(file, tmp, JSON.stringify(info, null, 2) + '\n');
}

/** Removes the runtime file if it is ours. */
export function removeRuntimeFile(dir: string, pid = process.pid): void {
  const info = readRuntimeFile(dir);
  if (info === null || info.pid === pid) rmSync(path.join(dir, RUNTIME_FILE), { force: true });
}

/** Reads the runtime file; null when absent or unreadable. */
export function readRuntimeFile(dir: string): RuntimeInfo | null {
  try {
    const info = JSON.parse(readFileSync(path.join(dir, RUNTIME_FILE), 'utf8')) as RuntimeInfo;
    return typeof info?.proxy?.port === 'number' && typeof info?.backend?.port === 'number' ? info : null;
  } catch {
    return null;
  }
}
