// burstWarner: the first failure of a burst at once, the rest as one counted line when the window ends.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { burstWarner } from '../../src/util/burst-warn.js';

test('a burst is its first line and one count by kind; a lone failure is its line only; the next burst starts again', () => {
  const lines: string[] = [];
  const due: (() => void)[] = [];
  const warn = burstWarner((msg, fields) => lines.push(fields === undefined ? msg : `${msg} ${JSON.stringify(fields)}`), 'backend request failed', { schedule: (fn) => due.push(fn) });
  warn({ path: '/a', error: 'ECONNREFUSED' }, 'ECONNREFUSED');
  warn({ path: '/b', error: 'ECONNREFUSED' }, 'ECONNREFUSED');
  warn({ path: '/c', error: 'ECONNRESET' }, 'ECONNRESET');
  warn({ path: '/d', error: 'ECONNREFUSED' }, 'ECONNREFUSED');
  assert.deepEqual(lines, ['backend request failed {"path":"/a","error":"ECONNREFUSED"}']);
  due.shift()!();
  assert.deepEqual(lines.slice(1), ['backend request failed: 3 more within 1 s (ECONNREFUSED x2, ECONNRESET x1)']);
  warn({ path: '/e', error: 'ECONNREFUSED' }, 'ECONNREFUSED');
  due.shift()!();
  assert.deepEqual(lines.slice(2), ['backend request failed {"path":"/e","error":"ECONNREFUSED"}'], 'a lone failure: no count line');
});
