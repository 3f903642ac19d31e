// The proxy's key check on its own: microseconds per request with 1, 1,000 and 10,000 accepted keys (the
// function the proxy calls per request, from the build), for a key that matches the last one listed and for a
// wrong key. `node bench/keys.mjs [DIST]` prints them; run.mjs records them in bench/results.json.
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { root } from './targets.mjs';

/** Microseconds per `authenticate` call, by key count and outcome; `dist` is the build to load. */
export async function keyCheckCost(dist = path.join(root, 'dist')) {
  const { authenticate, sha256, toStoredKeys } = await import(pathToFileURL(path.join(dist, 'proxy/auth.js')).href);
  const out = {};
  for (const count of [1, 1_000, 10_000]) {
    const keys = toStoredKeys(Array.from({ length: count }, (_, i) => ({ name: `k${i}`, sha256Hex: sha256(`sk-bench-key-${i}`).toString('hex') })));
    const cases = { match: { authorization: `Bearer sk-bench-key-${count - 1}` }, wrong: { authorization: 'Bearer sk-bench-not-a-key' } };
    const row = {};
    for (const [name, headers] of Object.entries(cases)) {
      const expectOk = name === 'match';
      if (authenticate(headers, keys).ok !== expectOk) throw new Error(`key check with ${count} keys: ${name} gave the wrong answer`);
      // Repeats for at least 200 ms (after a warm-up of the same length), so that each figure is a mean of many calls.
      for (const phase of ['warm-up', 'measure']) {
        let calls = 0;
        const start = process.hrtime.bigint();
        let elapsed = 0n;
        while (elapsed < 200_000_000n) {
          for (let i = 0; i < 50; i++) authenticate(headers, keys);
          calls += 50;
          elapsed = process.hrtime.bigint() - start;
        }
        if (phase === 'measure') row[`${name}Us`] = +(Number(elapsed) / 1000 / calls).toFixed(2);
      }
    }
    out[count] = row;
  }
  return out;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const dist = process.argv[2] === undefined ? undefined : path.resolve(process.argv[2]);
  const cost = await keyCheckCost(dist);
  for (const [count, row] of Object.entries(cost)) process.stdout.write(`${count} keys: match ${row.matchUs} us, wrong key ${row.wrongUs} us\n`);
}
