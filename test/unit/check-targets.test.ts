// check finds the service where start put it: the same precedence as loadConfig, with start's runtime file first.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { hostname } from 'node:os';
import path from 'node:path';
import { resolveCheckTargets } from '../../src/check/targets.js';
import { loadConfig, type CliOptions } from '../../src/config/index.js';
import { writeRuntimeFile, type RuntimeInfo } from '../../src/supervisor/runtime-file.js';
import { tempDir, LITELLM_CONFIG } from '../helpers/fixtures.js';


/** Deps that take the runtime file as a live llmserve's: the tests write it with their own pid. */
const live = { runtimeOwner: (info: RuntimeInfo | null) => info };

async function setup(): Promise<{ cwd: string; probeDir: string; litellm: string; own: string }> {
  const cwd = await tempDir();
  const litellm = path.join(cwd, 'litellm.config.yaml');
  writeFileSync(litellm, LITELLM_CONFIG);
  const own = path.join(cwd, 'own.yaml');
  writeFileSync(own, 'model: /models/qwen\nserved_model_name: qwen\nvllm:\n  port: 3100\nproxy:\n  port: 9100\n  host: 127.0.0.2\n  master_key: os.environ/MY_KEY\nprobes:\n  dir: ./probe-from-file\n');
  return { cwd, probeDir: path.join(cwd, 'probe'), litellm, own };
}

test('a host no URL can carry is a usage error (exit 2) naming the flag, the variable or the key, as start says it', async () => {
  const { cwd, probeDir } = await setup();
  const env = { LLMSERVE_MASTER_KEY: 'env-key-abcdefghijklmnop' };
  const cases: [CliOptions, NodeJS.ProcessEnv, RegExp][] = [
    [{ model: '/m/x', probeDir, host: 'a b' }, env, /^--host: expected a bind address .*got "a b"$/],
    [{ model: '/m/x', probeDir }, { ...env, LLMSERVE_HOST: 'fe80::1%eth0' }, /^LLMSERVE_HOST: expected a bind address .*with a zone/],
  ];
  for (const [cli, caseEnv, message] of cases) {
    // Before, a TypeError (Invalid URL) from the first request: an internal error, exit 1, with a stack trace.
    await assert.rejects(resolveCheckTargets(cli, { env: caseEnv, cwd }), (err: Error & { exitCode?: number }) => {
      assert.match(err.message, message);
      assert.equal(err.exitCode, 2);
      return true;
    });
    await assert.rejects(loadConfig(cli, { env: caseEnv, cwd }), (err: Error) => message.test(err.message));
  }
});

test('without a runtime file, check resolves ports, name and key exactly as start (loadConfig) does', async () => {
  const { cwd, probeDir, litellm, own } = await setup();
  const cases: { cli: CliOptions; env: NodeJS.ProcessEnv }[] = [
    { cli: { config: litellm, model: '/m/x', probeDir }, env: {} },
    { cli: { config: litellm, model: '/m/x', probeDir }, env: { OPENBAYES_SERVING_PRODUCTION: '1' } },
    { cli: { config: litellm, model: '/m/x', probeDir, port: '7000', backendPort: '7001' }, env: { OPENBAYES_SERVING_PRODUCTION: '1' } },
    { cli: { config: litellm, model: '/m/x', probeDir }, env: { LLMSERVE_PORT: '7100', LLMSERVE_BACKEND_PORT: '7101', LLMSERVE_MASTER_KEY: 'env-key-abcdefghijklmnop' } },
    { cli: { config: own }, env: { MY_KEY: 'file-key-abcdefghijklmnop' } },
    { cli: { config: own }, env: { MY_KEY: 'file-key-abcdefghijklmnop', OPENBAYES_SERVING_PRODUCTION: '1' } },
    { cli: { model: 'org/name', probeDir }, env: { LLMSERVE_MASTER_KEY: 'env-key-abcdefghijklmnop', LLMSERVE_SERVED_MODEL_NAME: 'public' } },
    // Kubernetes service links of Services named llmserve and llmserve-backend: not ports, ignored by both.
    { cli: { model: '/m/x', probeDir }, env: { LLMSERVE_MASTER_KEY: 'env-key-abcdefghijklmnop', LLMSERVE_PORT: 'tcp://10.96.0.9:80', LLMSERVE_BACKEND_PORT: 'tcp://10.96.0.8:3000' } },
  ];
  for (const { cli, env } of cases) {
    const config = await loadConfig(cli, { env, cwd });
    const t = await resolveCheckTargets(cli, { env, cwd });
    const what = JSON.stringify({ cli, env });
    assert.equal(t.proxy.port, config.proxy.port, what);
    assert.equal(t.backend.port, config.vllm.port, what);
    assert.equal(t.proxy.host, config.proxy.host === '0.0.0.0' ? '127.0.0.1' : config.proxy.host, what);
    assert.equal(t.model, config.servedModelName, what);
    assert.equal(t.key, config.secrets.values[0], what);
    assert.equal(t.runtimeFile, null, what);
  }
  // The port rules themselves, spelled out once.
  assert.equal((await resolveCheckTargets({ config: litellm, probeDir }, { env: {}, cwd })).proxy.port, 8080);
  assert.equal((await resolveCheckTargets({ config: litellm, probeDir }, { env: { OPENBAYES_SERVING_PRODUCTION: '1' }, cwd })).proxy.port, 80);
  assert.equal((await resolveCheckTargets({ config: litellm, probeDir }, { env: {}, cwd })).backend.port, 3000);
});

test('several models without a runtime file: every model\'s port and name as start resolves them, and require', async () => {
  const { cwd, probeDir } = await setup();
  const file = path.join(cwd, 'models.yaml');
  writeFileSync(file, 'vllm: { port: 5000 }\nmodels:\n  - { model: /m/alpha, port: 5100 }\n  - { model: /m/beta, served_model_name: b }\n  - { model: /m/gamma }\nprobes: { require: any }\n');
  const env = { LLMSERVE_MASTER_KEY: 'env-key-abcdefghijklmnop' };
  const config = await loadConfig({ config: file }, { env, cwd });
  const t = await resolveCheckTargets({ config: file, probeDir }, { env, cwd });
  assert.deepEqual(t.backends, config.models.map((m) => ({ host: '127.0.0.1', port: m.port, model: m.servedModelName })));
  assert.deepEqual(t.backends?.map((b) => [b.model, b.port]), [['alpha', 5100], ['b', 5001], ['gamma', 5002]]);
  assert.deepEqual([t.backend.port, t.model, t.require], [5100, 'alpha', 'any']);
  // LLMSERVE_BACKEND_PORT moves the entries without a port of their own, as in start.
  const moved = await resolveCheckTargets({ config: file, probeDir }, { env: { ...env, LLMSERVE_BACKEND_PORT: '6000' }, cwd });
  assert.deepEqual(moved.backends?.map((b) => b.port), [5100, 6001, 6002]);
  // A port derived past 65535 is the configuration's error (exit 2), in check as in start, not a crash on a bad URL.
  for (const load of [
    () => resolveCheckTargets({ config: file, probeDir, backendPort: '65534' }, { env, cwd }),
    () => loadConfig({ config: file, backendPort: '65534' }, { env, cwd }),
  ]) {
    await assert.rejects(load(), (err: unknown) => {
      assert.match(String((err as Error).message), /models\[2\]: no port of its own, so it would take --backend-port \+ 2 = 65536, past 65535; set models\[2\]\.port, or a lower --backend-port/);
      assert.equal((err as { exitCode?: number }).exitCode, 2);
      return true;
    });
  }
});

test('the runtime file that start wrote beats environment, file and defaults; check\'s own flags beat it', async () => {
  const { cwd, probeDir, litellm } = await setup();
  mkdirSync(probeDir, { recursive: true });
  writeRuntimeFile(probeDir, {
    pid: process.pid,
    startedAt: new Date().toISOString(),
    proxy: { host: '0.0.0.0', port: 18080, tls: true },
    backend: { host: '127.0.0.1', port: 13000 },
    models: ['from-runtime'],
  });
  const env = { OPENBAYES_SERVING_PRODUCTION: '1', LLMSERVE_MASTER_KEY: 'env-key-abcdefghijklmnop' };
  const t = await resolveCheckTargets({ config: litellm, probeDir }, { env, cwd, ...live });
  assert.deepEqual(t.proxy, { host: '127.0.0.1', port: 18080, tls: true });
  assert.deepEqual(t.backend, { host: '127.0.0.1', port: 13000 });
  assert.equal(t.model, 'from-runtime');
  assert.equal(t.runtimeFile, path.join(probeDir, 'llmserve.json'));
  const flags = await resolveCheckTargets({ probeDir, port: '1234', backendPort: '1235', servedModelName: 'x' }, { env, cwd, ...live });
  assert.deepEqual([flags.proxy.port, flags.backend.port, flags.model], [1234, 1235, 'x']);
  // With the runtime file and the key in the environment, no config file is needed at all (and none is parsed).
  let parsed = 0;
  const lean = await resolveCheckTargets({ probeDir }, { env, cwd, ...live, parseConfigFile: async () => { parsed++; throw new Error('not expected'); } });
  assert.deepEqual([lean.proxy.port, lean.model, lean.key, parsed], [18080, 'from-runtime', 'env-key-abcdefghijklmnop', 0]);
  // Several models: every backend and the readiness rule come from the runtime file too.
  writeRuntimeFile(probeDir, {
    pid: process.pid,
    startedAt: new Date().toISOString(),
    proxy: { host: '0.0.0.0', port: 18080, tls: false },
    backend: { host: '127.0.0.1', port: 13000 },
    models: ['a', 'b'],
    backends: [{ model: 'a', host: '127.0.0.1', port: 13000 }, { model: 'b', host: '127.0.0.1', port: 13001 }],
    require: 'any',
  });
  const several = await resolveCheckTargets({ probeDir }, { env, cwd, ...live });
  assert.deepEqual([several.backends?.map((b) => b.port), several.require], [[13000, 13001], 'any']);
});

test('keys: only digests -> skipped and says so; no key at all -> skipped; auth off -> no key needed; a named raw key works', async () => {
  const { cwd, probeDir } = await setup();
  const digestOnly = path.join(cwd, 'digests.yaml');
  writeFileSync(digestOnly, `model: /m\nproxy:\n  keys:\n    - name: alice\n      key_sha256: ${'cd'.repeat(32)}\n`);
  const d = await resolveCheckTargets({ config: digestOnly, probeDir }, { env: {}, cwd });
  assert.equal(d.key, null);
  assert.match(d.skipAuthenticated ?? '', /only key digests \(key_sha256\)/);
  const none = await resolveCheckTargets({ probeDir, model: '/m' }, { env: {}, cwd });
  assert.match(none.skipAuthenticated ?? '', /no key known/);
  const open = path.join(cwd, 'open.yaml');
  writeFileSync(open, 'model: /m\nproxy:\n  auth: false\n');
  const o = await resolveCheckTargets({ config: open, probeDir }, { env: {}, cwd });
  assert.deepEqual([o.auth, o.key, o.skipAuthenticated], [false, null, null]);
  const named = path.join(cwd, 'named.yaml');
  writeFileSync(named, 'model: /m\nproxy:\n  keys:\n    - name: bob\n      key: bob-key-abcdefghijklmnop\n');
  assert.equal((await resolveCheckTargets({ config: named, probeDir }, { env: {}, cwd })).key, 'bob-key-abcdefghijklmnop');
  const keysFile = path.join(cwd, 'keys.yaml');
  writeFileSync(keysFile, '- name: carol\n  key: carol-key-abcdefghijklmnop\n');
  const withFile = path.join(cwd, 'withfile.yaml');
  writeFileSync(withFile, `model: /m\nproxy:\n  keys_file: ${keysFile}\n`);
  assert.equal((await resolveCheckTargets({ config: withFile, probeDir }, { env: {}, cwd })).key, 'carol-key-abcdefghijklmnop');
});

test('a variable the config reads with os.environ/ that is unset where check runs (another shell, a Ray worker pod): ports found, the authenticated check skipped and says which', async () => {
  const { cwd, probeDir, own } = await setup();
  // Commented-out examples (init's template has them) are not read: only MY_KEY is named.
  writeFileSync(own, readFileSync(own, 'utf8') + '# proxy:\n#   keys: [{ name: alice, key: os.environ/ALICE_KEY }]\n  # os.environ/NAME\n');
  const t = await resolveCheckTargets({ config: own, probeDir }, { env: {}, cwd });
  assert.deepEqual([t.proxy.port, t.backend.port, t.model, t.key], [9100, 3100, 'qwen', null]);
  assert.match(t.skipAuthenticated ?? '', /^no key known: MY_KEY is not set here \(the config file .*own\.yaml reads it with os\.environ\/\): export it for check too, or set LLMSERVE_MASTER_KEY$/);
  // Set, it is the key, as before.
  assert.equal((await resolveCheckTargets({ config: own, probeDir }, { env: { MY_KEY: 'my-key-abcdefghijklmnop' }, cwd })).key, 'my-key-abcdefghijklmnop');
  // A named key from an unset variable is left out; another key still serves the check.
  const named = path.join(cwd, 'named-unset.yaml');
  writeFileSync(named, 'model: /m\nproxy:\n  keys:\n    - name: a\n      key: os.environ/A_KEY\n    - name: b\n      key: b-key-abcdefghijklmnop\n');
  const n = await resolveCheckTargets({ config: named, probeDir }, { env: {}, cwd });
  assert.deepEqual([n.key, n.fallbackKeys, n.skipAuthenticated], ['b-key-abcdefghijklmnop', undefined, null]);
  // A Ray worker (its runtime file says so) is judged by its probe files: the head's key variables are not needed.
  mkdirSync(probeDir, { recursive: true });
  writeRuntimeFile(probeDir, { pid: process.pid, startedAt: new Date().toISOString(), role: 'worker', head: '10.0.0.1:6379', proxy: { host: '0.0.0.0', port: 9100, tls: false }, backend: { host: '127.0.0.1', port: 3100 }, models: ['qwen'] });
  assert.deepEqual((await resolveCheckTargets({ config: own, probeDir }, { env: {}, cwd, ...live })).worker, { pid: process.pid, head: '10.0.0.1:6379' });
  // A file that does not load even so (an unset variable where a port goes) gets the error it gets without them.
  const port = path.join(cwd, 'port-unset.yaml');
  writeFileSync(port, 'model: /m\nproxy:\n  port: os.environ/PUBLIC_PORT\n');
  await assert.rejects(resolveCheckTargets({ config: port, probeDir }, { env: {}, cwd }), /environment variable PUBLIC_PORT \(from os\.environ\/PUBLIC_PORT\) is not set/);
  // Where check must look (the probe directory) from an unset variable: that error too (exit 2), never a made-up path.
  const dir = path.join(cwd, 'dir-unset.yaml');
  writeFileSync(dir, 'model: /m\nprobes:\n  dir: os.environ/PROBE_DIR\n');
  await assert.rejects(resolveCheckTargets({ config: dir }, { env: { LLMSERVE_MASTER_KEY: 'k-abcdefghijklmnop' }, cwd }), (err: Error & { exitCode?: number }) => err.exitCode === 2 && /environment variable PROBE_DIR .* is not set/.test(err.message));
  // Given on the command line, it is not needed from the file.
  assert.equal((await resolveCheckTargets({ config: dir, probeDir }, { env: { LLMSERVE_MASTER_KEY: 'k-abcdefghijklmnop' }, cwd })).probeDir, probeDir);
  // A keys file whose path is unset here: not read, and the skip names the variable, not a made-up path.
  const keysFile = path.join(cwd, 'keysfile-unset.yaml');
  writeFileSync(keysFile, 'model: /m\nproxy:\n  keys_file: os.environ/KEYS_FILE\n');
  const k = await resolveCheckTargets({ config: keysFile, probeDir }, { env: {}, cwd });
  assert.match(k.skipAuthenticated ?? '', /^no key known: KEYS_FILE is not set here/);
  assert.doesNotMatch(k.skipAuthenticated ?? '', /llmserve-check-unset/);
});

test('a runtime file no running llmserve wrote (left by a dead one, or planted) is ignored: the key never follows it', async () => {
  const { cwd, probeDir } = await setup();
  mkdirSync(probeDir, { recursive: true });
  // A pid whose process has exited.
  const dead = spawnSync('true').pid!;
  writeRuntimeFile(probeDir, { pid: dead, startedAt: new Date().toISOString(), proxy: { host: '127.0.0.1', port: 18081, tls: false }, backend: { host: '127.0.0.1', port: 13001 }, models: ['planted'] });
  const env = { LLMSERVE_MASTER_KEY: 'env-key-abcdefghijklmnop' };
  const t = await resolveCheckTargets({ probeDir, model: '/m/real' }, { env, cwd });
  assert.equal(t.runtimeFile, null);
  assert.notEqual(t.proxy.port, 18081);
  assert.notEqual(t.backend.port, 13001);
  assert.equal(t.model, 'real');
});

test('bad values are configuration errors (exit 2), like start', async () => {
  const { cwd, probeDir } = await setup();
  await assert.rejects(resolveCheckTargets({ probeDir, port: 'eighty' }, { env: {}, cwd }), (err: Error & { exitCode?: number }) => err.exitCode === 2 && /--port: expected an integer 1-65535/.test(err.message));
  await assert.rejects(resolveCheckTargets({ config: path.join(cwd, 'missing.yaml') }, { env: {}, cwd }), /cannot read config file .*missing\.yaml: no such file/);
  // A master key start would refuse is refused here too, not sent (a CR or LF in it would split the request's head).
  for (const bad of ['sk-check-key-abcdefghij\n', 'sk-check\r\nx-evil: 1']) {
    await assert.rejects(resolveCheckTargets({ probeDir }, { env: { LLMSERVE_MASTER_KEY: bad }, cwd }), (err: Error & { exitCode?: number }) => {
      assert.equal(err.exitCode, 2);
      assert.match(err.message, /^LLMSERVE_MASTER_KEY: the key (starts or ends with whitespace|holds a character an HTTP header cannot carry)/);
      assert.ok(!err.message.includes('sk-check'), err.message);
      return true;
    });
  }
});

test('the master key of a LiteLLM config\'s environment_variables is the key check sends, as start serves with it', async () => {
  const { cwd, probeDir } = await setup();
  const file = path.join(cwd, 'litellm-env.yaml');
  writeFileSync(file, 'model_list:\n  - { model_name: m, litellm_params: { model: hosted_vllm/m, api_base: "http://127.0.0.1:3000/v1" } }\nenvironment_variables:\n  LITELLM_MASTER_KEY: sk-section-key-abcdefghijklmnop\n');
  const t = await resolveCheckTargets({ config: file, probeDir, model: '/m' }, { env: {}, cwd });
  assert.equal(t.key, 'sk-section-key-abcdefghijklmnop');
  assert.equal(t.skipAuthenticated, null);
  const config = await loadConfig({ config: file, model: '/m' }, { env: {}, cwd });
  assert.equal(config.proxy.keys[0]?.name, 'master');
});

test('keys: check sends the first key the proxy would accept (not disabled, not expired, allowed the model), else skips and says why', async () => {
  const { cwd, probeDir } = await setup();
  const now = Date.parse('2026-06-01T00:00:00Z');
  const targets = async (keys: string, extra = '', env: NodeJS.ProcessEnv = {}) => {
    const file = path.join(cwd, `keys-${Math.random().toString(36).slice(2)}.yaml`);
    writeFileSync(file, `model: /m/qwen\nproxy:\n${extra}  keys:\n${keys}`);
    return resolveCheckTargets({ config: file, probeDir }, { env, cwd, now: () => now });
  };
  const entry = (name: string, policy = '') => `    - name: ${name}\n      key: ${name}-key-abcdefghijklmnop\n${policy}`;
  // The case: the first key disabled, the second valid.
  assert.equal((await targets(entry('old', '      disabled: true\n') + entry('new'))).key, 'new-key-abcdefghijklmnop');
  assert.equal((await targets(entry('old', '      expires: 2026-05-31\n') + entry('new'))).key, 'new-key-abcdefghijklmnop');
  assert.equal((await targets(entry('later', '      expires: 2026-06-02\n') + entry('new'))).key, 'later-key-abcdefghijklmnop');
  assert.equal((await targets(entry('other', '      models: [llama]\n') + entry('new'))).key, 'new-key-abcdefghijklmnop');
  assert.equal((await targets(entry('qwen-only', '      models: [qwen]\n') + entry('new'))).key, 'qwen-only-key-abcdefghijklmnop');
  // A key the proxy meters comes after an unlimited one (each probe would spend its quota, and past rpm get a
  // 429), and is still used when it is the only usable one.
  assert.equal((await targets(entry('limited', '      rpm: 5\n      disabled: false\n') + entry('new'))).key, 'new-key-abcdefghijklmnop');
  assert.equal((await targets(entry('limited', '      rpm: 5\n') + entry('old', '      disabled: true\n'))).key, 'limited-key-abcdefghijklmnop');
  assert.equal((await targets(entry('budgeted', '      budget: { tokens: 100, period: 1d }\n') + entry('new'))).key, 'new-key-abcdefghijklmnop');
  // The master key is judged by master_limits too; a usable named key then takes over.
  const env = { LLMSERVE_MASTER_KEY: 'master-key-abcdefghijklmnop' };
  assert.equal((await targets(entry('new'), '  master_limits: { disabled: true }\n', env)).key, 'new-key-abcdefghijklmnop');
  assert.equal((await targets(entry('new'), '', env)).key, 'master-key-abcdefghijklmnop');

  // None usable: skipped, as with only digests, and the reason names each key.
  const none = await targets(entry('old', '      disabled: true\n') + entry('gone', '      expires: 2026-01-01\n') + entry('other', '      models: [llama]\n'));
  assert.equal(none.key, null);
  assert.equal(none.skipAuthenticated, 'no usable raw key: the proxy would refuse each one known (key "old" is disabled; key "gone" expired at 2026-01-01T00:00:00.000Z; key "other" may not use model "qwen" (its models: llama))');
  const withDigest = await targets(entry('old', '      disabled: true\n') + `    - name: d\n      key_sha256: ${'ab'.repeat(32)}\n`);
  assert.match(withDigest.skipAuthenticated ?? '', /key "old" is disabled\); the other keys are digests only \(key_sha256\)/);

  // The keys file is read only when the config's own keys are all unusable, and judged the same way.
  const keysFile = path.join(cwd, 'more-keys.yaml');
  writeFileSync(keysFile, `${entry('off', '      disabled: true\n')}${entry('carol')}`.replace(/^ {4}/gm, ''));
  const viaFile = await targets(entry('old', '      disabled: true\n'), `  keys_file: ${keysFile}\n`);
  assert.equal(viaFile.key, 'carol-key-abcdefghijklmnop');
  assert.equal(viaFile.fallbackKeys, undefined, 'no other usable key to fall back on');
});

test('keys file: its later usable keys are fallbacks for a 401 (a key added before the SIGHUP); a file that cannot be read skips the check', async () => {
  const { cwd, probeDir } = await setup();
  const keysFile = path.join(cwd, 'keys.yaml');
  const config = path.join(cwd, 'llmserve.yaml');
  writeFileSync(config, `model: /m/qwen\nproxy:\n  keys_file: ${keysFile}\n`);
  const resolve = () => resolveCheckTargets({ config, probeDir }, { env: {}, cwd });
  const entry = (name: string, policy = '') => `- name: ${name}\n  key: ${name}-key-abcdefghijklmnop\n${policy}`;
  writeFileSync(keysFile, entry('new') + entry('off', '  disabled: true\n') + entry('limited', '  rpm: 5\n') + entry('old') + entry('older'));
  const t = await resolve();
  assert.equal(t.key, 'new-key-abcdefghijklmnop');
  assert.deepEqual(t.fallbackKeys, ['old-key-abcdefghijklmnop', 'older-key-abcdefghijklmnop']);
  // A metered master key (master_limits, whose quota clients spend) gives way to an unmetered key of the file, and
  // is the last fallback.
  const metered = path.join(cwd, 'metered.yaml');
  writeFileSync(metered, `model: /m/qwen\nproxy:\n  master_limits: { rpm: 2 }\n  keys_file: ${keysFile}\n`);
  const viaFile = await resolveCheckTargets({ config: metered, probeDir }, { env: { LLMSERVE_MASTER_KEY: 'master-key-abcdefghijklmnop' }, cwd });
  assert.equal(viaFile.key, 'new-key-abcdefghijklmnop');
  // The master key, which the proxy surely has, is tried last whatever the file's new keys (not loaded before a SIGHUP).
  assert.deepEqual(viaFile.fallbackKeys, ['old-key-abcdefghijklmnop', 'older-key-abcdefghijklmnop', 'master-key-abcdefghijklmnop']);
  // Caught mid-edit: the proxy keeps the keys it loaded, so this is no failure (and no exit 2) of check's.
  writeFileSync(keysFile, '- name: [broken\n');
  const broken = await resolve();
  assert.equal(broken.key, null);
  assert.match(broken.skipAuthenticated ?? '', /^the keys file .*keys\.yaml cannot be read now \(.*\); the proxy keeps the keys it loaded$/);
  // With a metered master key, the broken file leaves the master key in use (it still works).
  assert.equal((await resolveCheckTargets({ config: metered, probeDir }, { env: { LLMSERVE_MASTER_KEY: 'master-key-abcdefghijklmnop' }, cwd })).key, 'master-key-abcdefghijklmnop');
});

test('a runtime file naming a host off this machine never gets the key sent there', async () => {
  // start writes its bind address, always one of this machine's; a llmserve.json that another user could write
  // (a shared probe directory) must not point check, and its Authorization header, at a host of theirs.
  const { cwd, probeDir } = await setup();
  mkdirSync(probeDir, { recursive: true });
  const env = { LLMSERVE_MASTER_KEY: 'env-key-abcdefghijklmnop' };
  const write = (host: string) =>
    writeRuntimeFile(probeDir, { pid: process.pid, startedAt: new Date().toISOString(), proxy: { host, port: 18080, tls: false }, backend: { host: '127.0.0.1', port: 13000 }, models: ['m'] });
  for (const host of ['203.0.113.7', 'attacker.example', '2001:db8::7']) {
    write(host);
    const t = await resolveCheckTargets({ probeDir }, { env, cwd, ...live });
    assert.equal(t.proxy.host, '127.0.0.1', host);
  }
  const own = hostname();
  for (const [host, connect] of [['0.0.0.0', '127.0.0.1'], ['::', '127.0.0.1'], ['127.0.0.2', '127.0.0.2'], ['::1', '::1'], ['localhost', 'localhost'], [own, own]]) {
    write(host!);
    assert.equal((await resolveCheckTargets({ probeDir }, { env, cwd, ...live })).proxy.host, connect, host);
  }
  // check's own --host is the user's choice, wherever it points.
  assert.equal((await resolveCheckTargets({ probeDir, host: '203.0.113.7' }, { env, cwd, ...live })).proxy.host, '203.0.113.7');
});
