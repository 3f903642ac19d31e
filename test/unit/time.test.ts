// util/time: sleep's bounds and formatSeconds.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { sleep } from '../../src/util/time.js';

test('sleep: a wait longer than a Node timer holds (drain.timeout at its maximum + 1 s) does not end at once', async () => {
  const ctl = new AbortController();
  let ended = false;
  const waiting = sleep(2_147_483 * 1000 + 1000, ctl.signal).then(() => (ended = true));
  await new Promise((resolve) => setTimeout(resolve, 50));
  assert.equal(ended, false, 'an overflowing timer fires after 1 ms');
  ctl.abort();
  await waiting;
  assert.equal(ended, true);
});
