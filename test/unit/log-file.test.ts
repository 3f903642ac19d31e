// --log-file's open errors in words: a missing directory, and a dangling symlink whose target's directory is missing.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { symlinkSync } from 'node:fs';
import path from 'node:path';
import { openLogFile } from '../../src/commands/log-file.js';
import { tempDir } from '../helpers/fixtures.js';

/** The message openLogFile throws for `file`. */
function openError(file: string): string {
  try {
    openLogFile(file, () => {});
  } catch (err) {
    return (err as Error).message;
  }
  assert.fail(`${file} opened`);
}

test('a log file in a missing directory names that directory', async () => {
  const dir = await tempDir();
  const file = path.join(dir, 'no-such-dir', 'llmserve.log');
  assert.equal(openError(file), `--log-file: cannot open ${file}: the directory ${path.join(dir, 'no-such-dir')} does not exist (ENOENT); create it, or give another file with --log-file FILE (LLMSERVE_LOG_FILE)`);
});

test('a dangling symlink as log file names the link, its target and the target directory that is missing (not the link\'s own, which exists)', async () => {
  const dir = await tempDir();
  const link = path.join(dir, 'llmserve.log');
  // Relative, as `ln -s ../logs/llmserve.log` makes it: resolved against the link's directory.
  symlinkSync(path.join('..', path.basename(dir) + '-gone', 'logs', 'llmserve.log'), link);
  const target = path.join(`${dir}-gone`, 'logs', 'llmserve.log');
  assert.equal(
    openError(link),
    `--log-file: cannot open ${link}: it is a symbolic link to ${target}, whose directory ${path.dirname(target)} does not exist (ENOENT); create it, or give another file with --log-file FILE (LLMSERVE_LOG_FILE)`,
  );
});
