// The limiter on its own, with an injected clock: each limit, its error and its headers.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { KeyPolicy } from '../../src/config/index.js';
import { BudgetLedger, formatReset, Limiter, SlidingWindow } from '../../src/limits/index.js';
import { retryAfter } from '../../src/limits/headers.js';

const T0 = Date.UTC(2026, 0, 10, 12, 0, 0);

function limiter(policies: Record<string, KeyPolicy>, clock = { t: T0 }): { l: Limiter; clock: { t: number } } {
  return { l: new Limiter(new Map(Object.entries(policies)), () => clock.t, () => clock.t), clock };
}

test('sliding window: counts over the last minute and says when room comes back', () => {
  const w = new SlidingWindow();
  w.add(0, 1);
  w.add(30_000, 1);
  assert.equal(w.msUntil(30_500, 1), 29_500);
  // Empty again when the newest slot (30 s) leaves, at 90 s.
  assert.equal(w.msUntil(30_500, 0), 59_500);
  assert.equal(w.used(59_999), 2);
  assert.equal(w.used(60_000), 1, 'the first slot left the window');
  assert.equal(w.used(90_000), 0);
});

test('sliding window: a count made late in its slot stays a whole span (the limit holds over every minute)', () => {
  const w = new SlidingWindow();
  w.add(999, 2);
  // Counted in the slot [0, 1 s): a window that dropped whole slots freed it at 60 s, 59.001 s after it was made.
  assert.equal(w.used(59_001), 2);
  assert.equal(w.used(60_000), 2);
  assert.equal(w.msUntil(60_000, 0), 999);
  assert.equal(w.used(60_999), 0);
  // A slot's earlier counts stay with its latest (at most one slot longer than a span), never shorter.
  w.add(120_100, 1);
  w.add(120_900, 1);
  assert.equal(w.used(180_100), 2);
  assert.equal(w.used(180_900), 0);
  // The cell that held the slot 61 s before is reused for a new slot, not added to it.
  w.add(181_000, 1);
  assert.equal(w.used(181_000), 1);
});

test('OpenAI-style reset durations', () => {
  assert.equal(formatReset(20), '20ms');
  assert.equal(formatReset(1500), '1.5s');
  assert.equal(formatReset(360_000), '6m0s');
  assert.equal(formatReset(3_723_000), '1h2m3s');
  // A window's reset computed from fractional clock readings: the float noise is not a whole extra second.
  const now = 233180.67622344007;
  assert.equal(formatReset(now + 60_000 - now), '1m0s');
  assert.equal(retryAfter(now + 60_000 - now), '60');
  assert.equal(formatReset(60_000.4), '1m1s');
});

test('keys without a policy are not looked at', () => {
  const { l } = limiter({ a: { rpm: 1 } });
  assert.equal(l.policy('b'), undefined);
  assert.deepEqual(l.admit('b'), { ok: true, headers: null });
  assert.equal(l.checkKey('b'), null);
});

test('rpm: the third request within a minute is 429 with Retry-After and x-ratelimit-*-requests', () => {
  const { l, clock } = limiter({ a: { rpm: 2 } });
  const first = l.admit('a');
  assert.ok(first.ok);
  assert.deepEqual(first.headers, { 'x-ratelimit-limit-requests': '2', 'x-ratelimit-remaining-requests': '1', 'x-ratelimit-reset-requests': '1m0s' });
  l.release('a', 0);
  clock.t += 10_000;
  const second = l.admit('a');
  assert.ok(second.ok);
  assert.equal(second.headers?.['x-ratelimit-remaining-requests'], '0');
  assert.equal(second.headers?.['x-ratelimit-reset-requests'], '1m0s', 'full again once this request left the window');
  l.release('a', 0);
  clock.t += 1000;
  const third = l.admit('a');
  assert.ok(!third.ok);
  assert.equal(third.reason, 'rpm');
  assert.equal(third.error.status, 429);
  assert.equal(third.error.code, 'rate_limit_exceeded');
  assert.equal(third.error.type, 'requests');
  assert.equal(third.error.headers?.['retry-after'], '49', 'the first request leaves the window 49 s later');
  assert.equal(third.error.headers?.['x-ratelimit-limit-requests'], '2');
  assert.equal(third.error.headers?.['x-ratelimit-remaining-requests'], '0');
  assert.equal(third.error.headers?.['x-ratelimit-reset-requests'], '59s', 'back to the full limit when the second request left too');
  clock.t += 49_000;
  assert.ok(l.admit('a').ok, 'room again once the first request left the window');
});

test('tpm: tokens counted at release; a full window is 429 type tokens with x-ratelimit-*-tokens', () => {
  const { l, clock } = limiter({ a: { tpm: 100 } });
  const ok = l.admit('a');
  assert.ok(ok.ok);
  assert.equal(ok.headers?.['x-ratelimit-remaining-tokens'], '100');
  l.release('a', 120);
  clock.t += 5000;
  const no = l.admit('a');
  assert.ok(!no.ok);
  assert.equal(no.reason, 'tpm');
  assert.equal(no.error.type, 'tokens');
  assert.equal(no.error.headers?.['x-ratelimit-limit-tokens'], '100');
  assert.equal(no.error.headers?.['x-ratelimit-remaining-tokens'], '0');
  assert.equal(no.error.headers?.['retry-after'], '55');
});

test('reset headers describe the windows after this request is counted (and the tokens counted so far)', () => {
  const { l, clock } = limiter({ r: { rpm: 2 }, t: { tpm: 30 } });
  assert.ok(l.admit('r').ok);
  const last = l.admit('r');
  assert.ok(last.ok);
  assert.equal(last.headers?.['x-ratelimit-remaining-requests'], '0');
  assert.equal(last.headers?.['x-ratelimit-reset-requests'], '1m0s', 'not 0ms: nothing frees before a minute');
  const no = l.admit('r');
  assert.ok(!no.ok);
  assert.equal(no.error.headers?.['retry-after'], '60');
  assert.equal(no.error.headers?.['x-ratelimit-reset-requests'], '1m0s');

  const seen: Array<[string | undefined, string | undefined]> = [];
  for (let i = 0; i < 5; i++) {
    const ok = l.admit('t');
    assert.ok(ok.ok);
    seen.push([ok.headers?.['x-ratelimit-remaining-tokens'], ok.headers?.['x-ratelimit-reset-tokens']]);
    l.release('t', 7);
    clock.t += 2500;
  }
  // The newest tokens leave a minute after they were counted (2.5 s before each admission): never 0ms once counted.
  assert.deepEqual(seen, [['30', '0ms'], ['23', '57.5s'], ['16', '57.5s'], ['9', '57.5s'], ['2', '57.5s']]);
});

test('max_parallel: 429 while the slots are taken, free again on release', () => {
  const { l } = limiter({ a: { maxParallel: 1 } });
  assert.ok(l.admit('a').ok);
  const no = l.admit('a');
  assert.ok(!no.ok);
  assert.equal(no.reason, 'parallel');
  assert.equal(no.error.status, 429);
  assert.equal(no.error.headers?.['retry-after'], '1');
  l.release('a', 0);
  assert.ok(l.admit('a').ok);
});

test('max_parallel: the 429 of a key with rpm carries its x-ratelimit-* headers, as the README promises for every 429', () => {
  const { l } = limiter({ a: { rpm: 10, maxParallel: 1 } });
  assert.ok(l.admit('a').ok);
  const no = l.admit('a');
  assert.ok(!no.ok);
  assert.equal(no.reason, 'parallel');
  assert.deepEqual(no.error.headers, {
    'x-ratelimit-limit-requests': '10',
    'x-ratelimit-remaining-requests': '9',
    'x-ratelimit-reset-requests': '1m0s',
    'retry-after': '1',
  });
});

test('budget: spent -> 429 insufficient_quota; a rolling period frees tokens as hours leave it', () => {
  const { l, clock } = limiter({ a: { budget: { tokens: 100, period: '1d' } } });
  assert.ok(l.admit('a').ok);
  l.release('a', 100);
  const no = l.admit('a');
  assert.ok(!no.ok);
  assert.equal(no.reason, 'budget');
  assert.equal(no.error.status, 429);
  assert.equal(no.error.type, 'insufficient_quota');
  assert.equal(no.error.code, 'insufficient_quota');
  assert.equal(no.error.headers?.['retry-after'], String(24 * 3600));
  // OpenAI's SDKs would otherwise retry it, the JavaScript one after sleeping out that day.
  assert.equal(no.error.headers?.['x-should-retry'], 'false');
  clock.t += 24 * 3_600_000;
  assert.ok(l.admit('a').ok);
});

test('budget: seeded from the store at start (total and rolling)', () => {
  const { l } = limiter({ t: { budget: { tokens: 50, period: 'total' } }, d: { budget: { tokens: 50, period: '1d' } } });
  const hour = Math.floor(T0 / 3_600_000);
  l.seedBudgets([{ key: 'd', hour: hour - 30, tokens: 500 }, { key: 'd', hour, tokens: 10 }], new Map([['t', 60]]));
  assert.ok(!l.admit('t').ok, 'total budget spent before the restart');
  assert.ok(l.admit('d').ok, 'only the last day counts for 1d');
});

test('disabled and expired keys are 401 before anything else', () => {
  const { l, clock } = limiter({ off: { disabled: true }, old: { expires: new Date(T0 + 1000).toISOString() } });
  assert.equal(l.checkKey('off')?.error.status, 401);
  assert.equal(l.checkKey('off')?.reason, 'disabled');
  assert.equal(l.checkKey('old'), null);
  clock.t += 1000;
  const e = l.checkKey('old');
  assert.equal(e?.error.status, 401);
  assert.equal(e?.error.code, 'invalid_api_key');
  assert.equal(e?.reason, 'expired');
});

test('models allowlist', () => {
  const { l } = limiter({ a: { models: ['small'] } });
  assert.equal(l.allows('a', 'small'), true);
  assert.equal(l.allows('a', 'big'), false);
  assert.equal(l.allows('other', 'big'), true);
});

test('a keys reload keeps the counters of names that stay', () => {
  const { l } = limiter({ a: { rpm: 1 } });
  assert.ok(l.admit('a').ok);
  l.setPolicies(new Map([['a', { rpm: 1, models: ['x'] }]]));
  assert.ok(!l.admit('a').ok);
});

test('a keys reload that adds a budget starts it from the usage recorded so far, counted once', () => {
  const { l, clock } = limiter({ a: { tpm: 100 }, b: { budget: { tokens: 100, period: '1d' } } });
  const hour = Math.floor(T0 / 3_600_000);
  l.seedBudgets([{ key: 'b', hour: hour - 2, tokens: 40 }], new Map([['b', 40]]));
  assert.ok(l.admit('a').ok);
  l.release('a', 7);
  assert.ok(l.admit('b').ok);
  l.release('b', 50);
  clock.t += 1000;
  // What the store and the recorder hold now: a's 7 tokens, b's 40 from before the start and 50 since.
  let asked = 0;
  const usage = () => {
    asked++;
    return { hourly: [{ key: 'a', hour, tokens: 7 }, { key: 'b', hour: hour - 2, tokens: 40 }, { key: 'b', hour, tokens: 50 }], totals: new Map([['a', 7], ['b', 90]]) };
  };
  l.setPolicies(new Map<string, KeyPolicy>([['a', { tpm: 100 }], ['b', { budget: { tokens: 100, period: '1d' } }]]), usage);
  assert.equal(asked, 0, 'no budget added or changed: the store is not read');
  l.setPolicies(new Map<string, KeyPolicy>([['a', { tpm: 100, budget: { tokens: 5, period: '1d' } }], ['b', { budget: { tokens: 91, period: '7d' } }]]), usage);
  assert.equal(asked, 1);
  const a = l.admit('a');
  assert.ok(!a.ok, 'the 7 tokens used before the reload spend the new budget of 5');
  assert.equal(a.reason, 'budget');
  assert.ok(l.admit('b').ok, 'b used 90 of 91: its live tokens are not counted twice');
  l.release('b', 1);
  assert.ok(!l.admit('b').ok);
  l.setPolicies(new Map<string, KeyPolicy>([['a', { tpm: 100, budget: { tokens: 5, period: 'total' } }]]), usage);
  assert.equal(l.admit('a').ok, false, 'a total budget starts from the totals');
});

test('a keys reload that adds rpm or tpm starts from the last minute', () => {
  const { l } = limiter({ a: { maxParallel: 5 } });
  assert.ok(l.admit('a').ok);
  l.release('a', 10);
  l.setPolicies(new Map<string, KeyPolicy>([['a', { rpm: 1 }]]));
  assert.equal(l.admit('a').ok, false, 'the request before the reload counts');
  l.setPolicies(new Map<string, KeyPolicy>([['a', { tpm: 10 }]]));
  assert.equal(l.admit('a').ok, false, 'so do its tokens');
});

test('budget ledger drops hours that left the period (hours from the store count as used at their end)', () => {
  const H = 3_600_000;
  const b = new BudgetLedger(2);
  b.addHour(10, 5);
  b.addHour(11, 7);
  assert.equal(b.used(11 * H), 12);
  assert.equal(b.used(13 * H - 2), 12, 'hour 10 may have been used at 10:59:59.999: two hours later it still counts');
  assert.equal(b.used(13 * H - 1), 7);
});

test('budget: tokens leave a rolling period a period after their use, however late in its hour they were used', () => {
  const H = 3_600_000;
  const b = new BudgetLedger(24);
  b.add(1000 * H + 59 * 60_000, 100);
  // Dropping whole hours freed them at 1024:00, 23 h 1 min after their use.
  assert.equal(b.used(1024 * H), 100);
  assert.equal(b.msUntilBelow(1024 * H, 100), 59 * 60_000);
  assert.equal(b.used(1024 * H + 59 * 60_000), 0);
});

test('rpm: a wall clock stepped back does not lock the key out (the windows follow a monotonic clock)', () => {
  const wall = { t: T0 };
  const mono = { t: 5_000 };
  const l = new Limiter(new Map([['a', { rpm: 2 }]]), () => wall.t, () => mono.t);
  assert.equal(l.admit('a').ok, true);
  assert.equal(l.admit('a').ok, true);
  assert.equal(l.admit('a').ok, false);
  // NTP steps the wall clock back an hour; a minute passes.
  wall.t -= 3_600_000 - 61_000;
  mono.t += 61_000;
  const next = l.admit('a');
  assert.equal(next.ok, true, 'a minute later the window has room again');
  assert.equal(next.ok && next.headers?.['x-ratelimit-reset-requests'], '1m0s');
});

test('budget: tokens counted after the wall clock stepped back into an earlier hour still leave the period on time', () => {
  const H = 3_600_000;
  const b = new BudgetLedger(24);
  const t0 = 1000 * H + 10 * 60_000;
  b.add(t0, 50);
  b.add(t0 - 20 * 60_000, 40); // hour 999, added after hour 1000
  assert.equal(b.used(1023 * H + 50 * 60_000), 50, 'hour 999 left the 1d period 24 h after its use');
  assert.equal(b.msUntilBelow(1023 * H, 50), H + 10 * 60_000, 'below 50 once hour 1000 leaves too');
});
