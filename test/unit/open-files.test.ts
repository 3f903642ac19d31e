// The open-file limit warning at start (src/util/open-files.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { lowOpenFileLimitWarning, openFileLimit, ownOpenFileLimit } from '../../src/util/open-files.js';

const LIMITS = `Limit                     Soft Limit           Hard Limit           Units
Max cpu time              unlimited            unlimited            seconds
Max open files            1024                 1048576              files
Max locked memory         8388608              8388608              bytes
`;

test('openFileLimit reads the soft "Max open files" of /proc/PID/limits; unlimited or absent is no limit', () => {
  assert.equal(openFileLimit(LIMITS), 1024);
  assert.equal(openFileLimit(LIMITS.replace('1024   ', 'unlimited')), null);
  assert.equal(openFileLimit('Limit  Soft Limit\n'), null);
  assert.equal(ownOpenFileLimit(() => LIMITS), 1024);
  assert.equal(ownOpenFileLimit(() => {
    throw Object.assign(new Error('no /proc'), { code: 'ENOENT' });
  }), null);
});

test('a limit below 4096 is a warning that says what it caps and how to raise it; 4096 and more, none', () => {
  const warning = lowOpenFileLimitWarning(1024);
  assert.match(warning ?? '', /^the open-file limit is 1024 \(ulimit -n\): the proxy holds two descriptors per request in flight .* about 492 at once, and connections beyond that are reset; raise it \(ulimit -n 65536, or the container runtime's nofile limit/);
  assert.equal(lowOpenFileLimitWarning(4096), null);
  assert.equal(lowOpenFileLimitWarning(null), null);
});
