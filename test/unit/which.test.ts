// unrunnableReason: a command found as execvp finds it, so that start can refuse it before starting anything.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { missingInterpreter, unrunnableReason } from '../../src/util/which.js';
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

test('missingInterpreter: a script whose #! names a python that is gone (a moved virtualenv), directly or through env', async () => {
  const root = await tempDir('llmserve-which-');
  const bin = path.join(root, 'bin');
  mkdirSync(bin);
  const script = (name: string, shebang: string) => writeFileSync(path.join(bin, name), `${shebang}\nprint("hi")\n`, { mode: 0o755 });
  script('moved', '#!/nonexistent/venv/bin/python3');
  script('direct-ok', `#!${process.execPath}`);
  script('via-env-gone', '#!/usr/bin/env no-such-python-llmserve');
  script('via-env-ok', '#!/usr/bin/env -S node --no-warnings');
  script('via-env-settings', '#!/usr/bin/env -S PYTHONUNBUFFERED=1 no-such-python-llmserve -u');
  writeFileSync(path.join(bin, 'binary'), Buffer.from([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1]), { mode: 0o755 });
  const env = { PATH: [bin, path.dirname(process.execPath), '/usr/bin', '/bin'].join(path.delimiter) };
  assert.deepEqual(missingInterpreter('moved', env), { interpreter: '/nonexistent/venv/bin/python3', code: 'ENOENT' });
  assert.deepEqual(missingInterpreter(path.join(bin, 'moved'), {}), { interpreter: '/nonexistent/venv/bin/python3', code: 'ENOENT' }, 'a path, as vllm.command gives it');
  assert.equal(missingInterpreter('direct-ok', env), null);
  assert.deepEqual(missingInterpreter('via-env-gone', env), { interpreter: 'no-such-python-llmserve', code: 'ENOENT' });
  assert.equal(missingInterpreter('via-env-ok', env), null);
  assert.deepEqual(missingInterpreter('via-env-settings', env), { interpreter: 'no-such-python-llmserve', code: 'ENOENT' });
  assert.equal(missingInterpreter('binary', env), null, 'no #! line: nothing to say');
  assert.equal(missingInterpreter('absent', env), null, 'a missing command is unrunnableReason\'s');
  // The script exists and is executable: unrunnableReason has nothing against it, which is why this is needed.
  assert.equal(unrunnableReason('moved', env), null);
  // execvp passes over a script whose interpreter is missing (execve's ENOENT) for a later one on PATH: so must we.
  const later = path.join(root, 'later');
  mkdirSync(later);
  writeFileSync(path.join(later, 'moved'), `#!${process.execPath}\n`, { mode: 0o755 });
  assert.equal(missingInterpreter('moved', { PATH: [bin, later].join(path.delimiter) }), null);
  writeFileSync(path.join(later, 'moved'), '#!/also/gone/python3\n', { mode: 0o755 });
  assert.deepEqual(missingInterpreter('moved', { PATH: [bin, later].join(path.delimiter) }), { interpreter: '/nonexistent/venv/bin/python3', code: 'ENOENT' }, 'the first is named');
  // An interpreter that is there but not executable: EACCES, said as such.
  writeFileSync(path.join(root, 'python-no-x'), '', { mode: 0o644 });
  script('no-x', `#!${path.join(root, 'python-no-x')}`);
  assert.deepEqual(missingInterpreter('no-x', env), { interpreter: path.join(root, 'python-no-x'), code: 'EACCES' });
});
