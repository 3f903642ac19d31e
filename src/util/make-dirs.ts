// `mkdir -p` without Node's recursive mode, which never returns on some file systems.
import { mkdirSync, statSync } from 'node:fs';
import path from 'node:path';

/**
 * Creates `dir` and its missing parents, one mkdir each. Why not `mkdirSync(dir, { recursive: true })`: where mkdir
 * fails with ENOENT under a parent that exists (/proc, /sys), Node's recursive mode retries forever in a synchronous
 * loop, so `--probe-dir /proc/x` hung at full CPU and not even SIGTERM stopped it. Throws the errno error otherwise.
 */
export function makeDirs(dir: string): void {
  const missing: string[] = [];
  let current = path.resolve(dir);
  for (;;) {
    try {
      if (!statSync(current).isDirectory()) throw Object.assign(new Error(`ENOTDIR: not a directory, mkdir '${dir}'`), { code: 'ENOTDIR' });
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      missing.push(current);
      const parent = path.dirname(current);
      if (parent === current) break;
      current = parent;
    }
  }
  for (const d of missing.reverse()) {
    try {
      mkdirSync(d);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
  }
}
