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
  writeFileSync(file, data, { flag: 'wx' });
}

/** Replaces `file` atomically: `data` goes to the temporary name `tmp` (written as a new file), then is renamed over it. */
export function replaceFileSync(file: string, tmp: string, data: string): void {
  writeNewFile(tmp, data);
  renameSync(tmp, file);
}
