// util/time: sleep's bounds and formatSeconds.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { getEventListeners } from 'node:events';
import { formatSeconds, raceAbort, sleep } from '../../src/util/time.js';

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

test('raceAbort: the work\'s value, or the first event to abort; no listener stays on a long-lived signal', async () => {
  const stop = new AbortController();
  const exit = new AbortController();
  // Thousands of waits against signals that live for the whole run (a supervisor's health-check ticks): each must
  // leave nothing behind on them (Promise.race with a pending promise leaves a reaction per race).
  for (let i = 0; i < 2000; i++) assert.equal(await raceAbort(Promise.resolve('tick' as const), { stopped: stop.signal, exit: exit.signal }), 'tick');
  assert.equal(getEventListeners(stop.signal, 'abort').length, 0);
  assert.equal(getEventListeners(exit.signal, 'abort').length, 0);

  const tick = new AbortController();
  const waiting = raceAbort(sleep(60_000, tick.signal).then(() => 'tick' as const), { stopped: stop.signal, exit: exit.signal });
  assert.equal(getEventListeners(exit.signal, 'abort').length, 1);
  exit.abort();
  assert.equal(await waiting, 'exit');
  tick.abort();
  assert.equal(getEventListeners(stop.signal, 'abort').length, 0, 'the other event\'s listener is removed once decided');
  // Already aborted: decided at once, in the order given; an absent event is skipped.
  assert.equal(await raceAbort(new Promise(() => {}), { stopped: undefined, exit: exit.signal }), 'exit');
  // A rejection that comes after an event decided the race is handled (no unhandled rejection), and one that comes
  // first is the race's.
  let rejectLate!: (err: Error) => void;
  assert.equal(await raceAbort(new Promise((_, reject) => (rejectLate = reject)), { exit: exit.signal }), 'exit');
  rejectLate(new Error('late'));
  await assert.rejects(raceAbort(Promise.reject(new Error('first')), { stopped: stop.signal }), /first/);
  assert.equal(getEventListeners(stop.signal, 'abort').length, 0);
});

test('formatSeconds: tenths under 10 s, whole seconds under 2 min, then minutes and seconds rounded as a whole', () => {
  assert.equal(formatSeconds(0.44), '0.4 s');
  assert.equal(formatSeconds(12.4), '12 s');
  assert.equal(formatSeconds(185), '3 min 5 s');
  // 179.6 s is 3 min 0 s: rounding the seconds after taking the minutes out gave "2 min 60 s".
  assert.equal(formatSeconds(179.6), '3 min 0 s');
  assert.equal(formatSeconds(1799.7), '30 min 0 s');
});
