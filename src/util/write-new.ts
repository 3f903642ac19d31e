// Writes fresh files where another user may have planted a link: the link goes, it is never written through.
import { renameSync, rmSync, writeFileSync } from 'node:fs';

/**
 * Writes `data` to `file` as a new file: whatever is at that name (a stale file, or a symlink planted in a shared
 * directory) is removed first, and the open refuses to follow a link (O_CREAT|O_EXCL), so a link planted between
 * the two makes the write fail instead of overwriting the file it points to. For temporary names that are then
 * renamed into place, and for the probe directory's write test.
 */
export function writeNewFile(file: string, data: string): void {
  rmSync(file, { force: true });
  try {
    writeFileSync(file, data, { flag: 'wx' });
  } catch (err) {
    // A write that failed after the open had created the file (a full disk: ENOSPC) leaves no empty file behind.
    // EEXIST: the open created nothing, and what is at the name now is not ours.
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') rmSync(file, { force: true });
    throw err;
  }
}

/** Replaces `file` atomically: `data` goes to the temporary name `tmp` (written as a new file), then is renamed over it. */
export function replaceFileSync(file: string, tmp: string, data: string): void {
  writeNewFile(tmp, data);
  try {
    renameSync(tmp, file);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw err;
  }
}
