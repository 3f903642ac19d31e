// SecretScrubber: every registered secret replaced, whether few (searched one by one) or thousands (an index).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SecretScrubber } from '../../src/log-secrets.js';

const R = '[redacted]';

/** A deterministic pseudo-random generator, so that a failure can be replayed. */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => ((s = (s * 1664525 + 1013904223) >>> 0) / 2 ** 32);
}

for (const count of [3, 16, 17, 2000]) {
  test(`SecretScrubber with ${count} secrets: each occurrence replaced, the text between kept, longest first where one starts another`, () => {
    const next = rng(count);
    const pick = (alphabet: string, n: number) => Array.from({ length: n }, () => alphabet[Math.floor(next() * alphabet.length)]).join('');
    // Secrets from one alphabet, the text between them from another: no secret can appear by chance.
    const secrets = Array.from({ length: count }, (_, i) => `sk-${i}-${pick('abcdefghijklmnopqrstuvwxyz0123456789', 4 + Math.floor(next() * 28))}`);
    // A secret that another one starts with: the longer one is the key present, and must go whole.
    secrets.push(`${secrets[0]}tail`);
    const scrubber = new SecretScrubber(R);
    for (const s of secrets) scrubber.add(s);
    for (let round = 0; round < 200; round++) {
      let text = '';
      let expected = '';
      for (let part = 0; part < 6; part++) {
        const filler = pick('ABCDEFGHIJ ,.:"{}=/_', Math.floor(next() * 12));
        text += filler;
        expected += filler;
        if (next() < 0.6) {
          text += secrets[Math.floor(next() * secrets.length)];
          expected += R;
        }
      }
      assert.equal(scrubber.scrub(text), expected, text);
    }
    assert.equal(scrubber.scrub(`Bearer ${secrets[0]}tail`), `Bearer ${R}`, 'the longest secret wins');
    assert.equal(scrubber.scrub(`${secrets[1]}${secrets[1]}`), `${R}${R}`, 'adjacent occurrences');
    assert.equal(scrubber.scrub('nothing secret here'), 'nothing secret here');
  });
}

test('SecretScrubber: values under 4 characters and repeats are ignored; a secret added later is scrubbed from then on', () => {
  const scrubber = new SecretScrubber(R);
  scrubber.add('abc');
  assert.equal(scrubber.scrub('abc'), 'abc');
  for (let i = 0; i < 40; i++) scrubber.add(`key-number-${i}-0123456789`);
  scrubber.add('key-number-1-0123456789');
  assert.equal(scrubber.scrub('a key-number-39-0123456789 b'), `a ${R} b`);
  scrubber.add('late-secret-value');
  assert.equal(scrubber.scrub('x late-secret-value y'), `x ${R} y`);
});

test('SecretScrubber: a key with `\\` or `"` is replaced in a formatted line too, where JSON escaped it (once or twice)', () => {
  const key = 'sk-pw\\gen"0123456789abcdef';
  const scrubber = new SecretScrubber(R);
  scrubber.add(key);
  // A JSON log line with the key as a value (a client that sends its key as `model`), and a text line that wraps it.
  const once = JSON.stringify({ msg: 'access', model: key });
  const twice = JSON.stringify({ line: once });
  for (const line of [once, twice, `model=${key}`]) {
    const out = scrubber.scrub(line);
    assert.ok(!out.includes('0123456789abcdef'), out);
    assert.ok(out.includes(R), out);
  }
  assert.equal(scrubber.scrub(once), JSON.stringify({ msg: 'access', model: R }));
});
