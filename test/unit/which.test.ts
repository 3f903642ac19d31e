// unrunnableReason: a command found as execvp finds it, so that start can refuse it before starting anything.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { unrunnableReason } from '../../src/util/which.js';
import { tempDir } from '../helpers/fixtures.js';

test('unrunnableReason: found and executable, missing, not executable, a directory; PATH order as execvp', async () => {
  const root = await tempDir('llmserve-which-');
  const [a, b] = [path.join(root, 'a'), path.join(root, 'b')];
  mkdirSync(a);
  mkdirSync(b);
  writeFileSync(path.join(a, 'tool'), '#!/bin/sh\n', { mode: 0o644 });
  writeFileSync(path.join(b, 'tool'), '#!/bin/sh\n', { mode: 0o755 });
  mkdirSync(path.join(a, 'dir'));
  const env = (...dirs: string[]) => ({ PATH: dirs.join(path.delimiter) });
  assert.equal(unrunnableReason('tool', env(a, b)), null, 'a later PATH entry that can run wins over an earlier one that cannot');
  assert.equal(unrunnableReason('tool', env(a)), 'EACCES');
  assert.equal(unrunnableReason('missing', env(a, b)), 'ENOENT');
  assert.equal(unrunnableReason('dir', env(a)), 'EACCES', 'a directory cannot be run');
  assert.equal(unrunnableReason(path.join(b, 'tool'), {}), null, 'a path is not looked up on PATH');
  assert.equal(unrunnableReason(path.join(a, 'tool'), env(b)), 'EACCES');
  assert.equal(unrunnableReason('./tool', {}, b), null, 'relative to the working directory');
  assert.equal(unrunnableReason('tool', env(''), b), null, 'an empty PATH entry is the working directory');
  assert.equal(unrunnableReason('tool', {}), null, 'no PATH: not told');
});
