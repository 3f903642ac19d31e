// The key ring at a proxy's (re)start and on reload: what the proxy cannot serve is left out and said; the rest applies.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { hasCountedLimits, withoutCountedLimits } from '../../src/config/index.js';
import { createKeyRing } from '../../src/proxy/keyring.js';
import type { KeyEntryDigest } from '../../src/proxy/settings.js';
import { memoryLogger, sha256Hex } from '../helpers/upstream.js';

test('createKeyRing: limits this proxy cannot count as one are left out, said as an error, at start and on reload; the rest of the file applies', async () => {
  const { logger, lines } = memoryLogger();
  const alice = { name: 'alice', sha256Hex: sha256Hex('alice-key-0123456789abcdef') };
  const carol = { name: 'carol', sha256Hex: sha256Hex('carol-key-0123456789abcdef') };
  const bob = { name: 'bob', sha256Hex: sha256Hex('bob-key-0123456789abcdef'), policy: { rpm: 2, models: ['m'] } };
  // As server.ts's: the counted limits are what two workers cannot serve.
  const unservable = (fromFile: readonly KeyEntryDigest[]) =>
    fromFile.some((e) => hasCountedLimits(e.policy))
      ? { entries: fromFile.map((e) => (e.policy === undefined ? e : { ...e, policy: withoutCountedLimits(e.policy) })), why: 'it gives limits to bob, but the proxy runs 2 processes' }
      : null;
  let file: KeyEntryDigest[] = [bob];
  const ring = await createKeyRing([{ name: 'master', sha256Hex: sha256Hex('master-key-0123456789abcdef') }], '/etc/llmserve/keys.yaml', logger, {
    load: async () => ({ entries: file, notes: [] }),
    unservable,
  });
  // At a proxy's (re)start: bob is served without the limit (its `models` kept), and that is said.
  assert.deepEqual(ring.entries().map((e) => [e.name, e.policy]), [['master', undefined], ['bob', { models: ['m'] }]]);
  assert.ok(lines.some((l) => /error: \/etc\/llmserve\/keys\.yaml: it gives limits to bob, but the proxy runs 2 processes$/.test(l)), lines.join('\n'));
  // A reload that revokes alice (disabled) and removes carol while it gives bob a limit: the revocations apply.
  file = [alice, carol];
  await ring.reload();
  file = [{ ...alice, policy: { disabled: true } }, bob];
  assert.equal(await ring.reload(), 3);
  assert.deepEqual(ring.entries().map((e) => [e.name, e.policy]), [['master', undefined], ['alice', { disabled: true }], ['bob', { models: ['m'] }]]);
  // Nothing left out: nothing said.
  const quiet = memoryLogger();
  await createKeyRing([], '/k.yaml', quiet.logger, { load: async () => ({ entries: [alice], notes: [] }), unservable });
  assert.deepEqual(quiet.lines, []);
});

test('createKeyRing: a file broken at the proxy\'s start leaves the file\'s keys as last loaded in force, not none of them', async () => {
  const { logger, lines } = memoryLogger();
  const master = { name: 'master', sha256Hex: sha256Hex('master-key-0123456789abcdef') };
  const dave = { name: 'dave', sha256Hex: sha256Hex('dave-key-0123456789abcdef'), policy: { rpm: 5 } };
  let file: typeof dave[] | Error = new Error('/etc/llmserve/keys.yaml: line 3: bad indentation');
  const loaded: string[][] = [];
  const ring = await createKeyRing([master], '/etc/llmserve/keys.yaml', logger, {
    load: async () => {
      if (file instanceof Error) throw file;
      return { entries: file, notes: [] };
    },
    lastFromFile: [dave, master],
    onLoaded: (fromFile) => loaded.push(fromFile.map((e) => e.name)),
  });
  assert.deepEqual(ring.entries(), [master, dave], 'the configured keys, then the file\'s as last loaded (once each)');
  assert.equal(ring.current().length, 2);
  assert.deepEqual(loaded, [], 'a failed load is not reported as loaded');
  assert.ok(lines.some((l) => /error: \/etc\/llmserve\/keys\.yaml: line 3: bad indentation; keeping the 2 keys in use before \(1 as last loaded from \/etc\/llmserve\/keys\.yaml\)/.test(l)), lines.join('\n'));
  // Mended and reloaded: the file as it is now, reported.
  file = [];
  assert.equal(await ring.reload(), 1);
  assert.deepEqual(ring.entries(), [master]);
  assert.deepEqual(loaded, [[]]);
  // A load at start that works is reported too.
  const fresh: string[][] = [];
  await createKeyRing([master], '/k.yaml', logger, { load: async () => ({ entries: [dave], notes: [] }), lastFromFile: [], onLoaded: (f) => fresh.push(f.map((e) => e.name)) });
  assert.deepEqual(fresh, [['dave']]);
});

test('createKeyRing: a reload says "keys loaded" and warns about weak keys through announce (one worker of several), errors through every logger', async () => {
  const own = memoryLogger();
  const shared = memoryLogger();
  const master = { name: 'master', sha256Hex: sha256Hex('master-key-0123456789abcdef') };
  const weak = 'API key "bob" is shorter than 16 characters: anyone could guess it.';
  let file: { entries: typeof master[]; notes: string[] } | Error = { entries: [], notes: [] };
  const ring = await createKeyRing([master], '/k.yaml', own.logger, {
    load: async () => {
      if (file instanceof Error) throw file;
      return file;
    },
    announce: shared.logger,
  });
  assert.deepEqual([own.lines, shared.lines], [[], []], 'the start says nothing: the supervisor warned when it read the config');
  file = { entries: [{ name: 'bob', sha256Hex: sha256Hex('bob') }], notes: [weak] };
  assert.equal(await ring.reload(), 2);
  assert.deepEqual(own.lines, []);
  assert.equal(shared.lines.length, 2, shared.lines.join('\n'));
  assert.match(shared.lines[0]!, /keys loaded: 2 \(1 from \/k\.yaml\)/);
  assert.match(shared.lines[1]!, /warn.*API key "bob" is shorter than 16 characters/);
  // The same file again (a SIGHUP for another key's sake): bob is not warned about at every reload.
  assert.equal(await ring.reload(), 2);
  assert.deepEqual(shared.lines.slice(2).map((l) => /warn/.test(l)), [false], shared.lines.join('\n'));
  shared.lines.splice(2);
  file = new Error('/k.yaml: line 2: bad indentation');
  await assert.rejects(ring.reload());
  assert.match(own.lines.join('\n'), /error: \/k\.yaml: line 2: bad indentation; keeping the 2 keys in use/);
  assert.equal(shared.lines.length, 2);
});

test('createKeyRing: a reload whose file names a key like a configured one (another key) is refused, the keys in use kept', async () => {
  const { logger, lines } = memoryLogger();
  const master = { name: 'master', sha256Hex: sha256Hex('master-key-0123456789abcdef') };
  let entries = [{ name: 'bob', sha256Hex: sha256Hex('bob-key-0123456789abcdef') }];
  const ring = await createKeyRing([master], '/k.yaml', logger, { load: async () => ({ entries, notes: [] }) });
  // A `disabled: true` entry named master would have locked the master key out (one name, one policy).
  entries = [{ name: 'master', sha256Hex: sha256Hex('other-key-0123456789abcdef'), policy: { disabled: true } } as (typeof entries)[number]];
  await assert.rejects(ring.reload());
  assert.deepEqual(ring.entries().map((e) => e.name), ['master', 'bob']);
  assert.ok(lines.some((l) => /error: \/k\.yaml: key name "master" is already used by a key of the configuration \(names must be unique\); keeping the 2 keys in use/.test(l)), lines.join('\n'));
  // The configured key itself listed in the file too (the same digest) is no clash: one key.
  entries = [{ name: 'master', sha256Hex: master.sha256Hex }];
  assert.equal(await ring.reload(), 1);
});

test('createKeyRing: the master key listed in the file under another name is refused on reload and by a restarted proxy', async () => {
  const { logger, lines } = memoryLogger();
  const master = { name: 'master', sha256Hex: sha256Hex('master-key-0123456789abcdef') };
  const bob = { name: 'bob', sha256Hex: sha256Hex('bob-key-0123456789abcdef') };
  let entries: { name: string; sha256Hex: string; policy?: { disabled: true } }[] = [bob];
  const load = async () => ({ entries, notes: [] });
  const ring = await createKeyRing([master], '/k.yaml', logger, { load });
  // As `ops`, disabled, the master key would have been `ops` and refused (start refuses such a file: exit 2).
  entries = [bob, { name: 'ops', sha256Hex: master.sha256Hex, policy: { disabled: true } }];
  await assert.rejects(ring.reload());
  assert.deepEqual(ring.entries().map((e) => e.name), ['master', 'bob']);
  assert.ok(lines.some((l) => /error: \/k\.yaml: "ops" is the same key as "master" of the configuration \(each key must be listed once\); keeping the 2 keys in use/.test(l)), lines.join('\n'));
  // A proxy restarted (after a crash) with that file keeps the master key as the master key, and bob as last loaded.
  const restarted = await createKeyRing([master], '/k.yaml', logger, { load, lastFromFile: [bob] });
  assert.deepEqual(restarted.entries().map((e) => [e.name, e.policy]), [['master', undefined], ['bob', undefined]]);
  assert.ok(lines.some((l) => /"ops" is the same key as "master".*keeping the 2 keys in use before \(1 as last loaded/.test(l)), lines.join('\n'));
});

test('createKeyRing: a reload that finds the file emptied warns that its keys are refused from now on', async () => {
  const { logger, lines } = memoryLogger();
  let entries = [{ name: 'bob', sha256Hex: sha256Hex('bob-key-0123456789abcdef') }, { name: 'carol', sha256Hex: sha256Hex('carol-key-0123456789abcdef') }];
  const ring = await createKeyRing([], '/k.yaml', logger, { load: async () => ({ entries, notes: [] }) });
  entries = [];
  assert.equal(await ring.reload(), 0);
  assert.ok(lines.some((l) => /warn.*\/k\.yaml lists no keys now: the 2 keys it listed before are refused from now on/.test(l)), lines.join('\n'));
  // Empty again: nothing more to say.
  const said = lines.length;
  assert.equal(await ring.reload(), 0);
  assert.equal(lines.filter((l) => l.includes('lists no keys')).length, 1, lines.slice(said).join('\n'));
});
