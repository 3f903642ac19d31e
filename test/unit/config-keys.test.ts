// loadConfig with an unchanged LiteLLM proxy config, and with API keys (master, named, digests, keys file).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { hashKey, loadConfig, readKeysFile } from '../../src/config/index.js';
import { buildVllmEnv } from '../../src/engine/command.js';
import { CWD, STRONG_KEY, load, rejects, assertNoLeak } from '../helpers/config.js';
import { LITELLM_CONFIG as LITELLM } from '../helpers/fixtures.js';


test('the unchanged LiteLLM config of the original deployment', async () => {
  const c = await load({ 'litellm.config.yaml': LITELLM }, { config: 'litellm.config.yaml', model: '/models/DeepSeek-R1-Distill-Qwen-1.5B' });
  assert.equal(c.configFormat, 'litellm');
  assert.equal(c.configFile, `${CWD}/litellm.config.yaml`);
  assert.equal(c.model, '/models/DeepSeek-R1-Distill-Qwen-1.5B');
  assert.equal(c.servedModelName, 'DeepSeek-R1-Distill-Qwen-1.5B');
  assert.equal(c.vllm.port, 3000);
  assert.equal(c.proxy.port, 8080);
  assert.equal(c.proxy.keys.length, 1);
  assert.equal(c.proxy.keys[0]?.name, 'master');
  assert.equal(c.proxy.keys[0]?.digestOnly, false);
  assert.ok(c.proxy.keys[0]?.sha256.equals(hashKey('your-master-key-here')));
  assert.deepEqual(c.secrets.values, ['your-master-key-here']);
  assert.deepEqual(c.secrets.envNames, ['LLMSERVE_MASTER_KEY', 'LITELLM_MASTER_KEY']);
  assert.equal(c.notes.length, 1);
  // One prefix: the logger adds "warning:" (no "WARNING:" of its own), and the note names where the key is set.
  assert.equal(c.notes[0], 'API key "master" (from general_settings.master_key in /srv/app/litellm.config.yaml) is a well-known placeholder from examples: anyone could guess it. Use a long random key: export LLMSERVE_MASTER_KEY=$(openssl rand -hex 32), which wins over general_settings.master_key in /srv/app/litellm.config.yaml');
  assertNoLeak(c, ['your-master-key-here']);
  assert.deepEqual(c.environment, {});
});

test('a key_sha256 that is the digest of a published placeholder warns, as the raw key would', async () => {
  const digest = hashKey('password').toString('hex');
  const c = await load({ 'llmserve.yaml': `model: /m\nproxy:\n  keys:\n    - name: batch\n      key_sha256: ${digest.toUpperCase()}\n` }, {}, { LLMSERVE_MASTER_KEY: STRONG_KEY });
  assert.deepEqual(c.notes.filter((n) => /guess/.test(n)), ['API key "batch" (from proxy.keys[0].key_sha256 in /srv/app/llmserve.yaml): its key_sha256 is the digest of a well-known placeholder from examples: anyone could guess the key. Make a new one with: llmserve keys generate --name batch, and put its key_sha256 there']);
  // A digest of an unknown key says nothing.
  const quiet = await load({ 'llmserve.yaml': `model: /m\nproxy:\n  keys:\n    - name: batch\n      key_sha256: ${hashKey(STRONG_KEY + 'x').toString('hex')}\n` }, {}, { LLMSERVE_MASTER_KEY: STRONG_KEY });
  assert.deepEqual(quiet.notes.filter((n) => /guess/.test(n)), []);
});

test('LiteLLM config: --model (or LLMSERVE_MODEL) is required', async () => {
  const err = await rejects(load({ 'litellm.config.yaml': LITELLM }, { config: 'litellm.config.yaml' }), /^--model PATH is required with a LiteLLM config: /, ['your-master-key-here']);
  assert.equal(err.code, 'CONFIG');
  const c = await load({ 'litellm.config.yaml': LITELLM }, { config: 'litellm.config.yaml' }, { LLMSERVE_MODEL: '/m' });
  assert.equal(c.model, '/m');
});

test('LiteLLM config: env beats the file for the master key; flags and env beat model_name', async () => {
  const c = await load({ 'llmserve.yaml': LITELLM }, { model: '/m', servedModelName: 'pub' }, { LITELLM_MASTER_KEY: STRONG_KEY });
  assert.equal(c.servedModelName, 'pub');
  assert.ok(c.proxy.keys[0]?.sha256.equals(hashKey(STRONG_KEY)));
  // The overridden file key is still a secret: redacted wherever it shows up.
  assert.deepEqual(c.secrets.values, [STRONG_KEY, 'your-master-key-here']);
  assert.match(c.notes.join('\n'), /LITELLM_MASTER_KEY overrides .*general_settings\.master_key/);
  const d = await load({ 'llmserve.yaml': LITELLM }, { model: '/m' }, { LITELLM_MASTER_KEY: 'x'.repeat(20), LLMSERVE_MASTER_KEY: STRONG_KEY });
  assert.ok(d.proxy.keys[0]?.sha256.equals(hashKey(STRONG_KEY)));
});

test('a file master key read through os.environ/NAME, overridden by LLMSERVE_MASTER_KEY: NAME is still a key variable', async () => {
  const fileKey = 'file-key-0123456789abcdefghij';
  const c = await load({ 'llmserve.yaml': 'model: /m\nproxy:\n  master_key: os.environ/MYKEY\n' }, {}, { MYKEY: fileKey, LLMSERVE_MASTER_KEY: STRONG_KEY });
  assert.ok(c.proxy.keys[0]?.sha256.equals(hashKey(STRONG_KEY)));
  assert.ok(c.secrets.envNames.includes('MYKEY'), 'MYKEY must leave vLLM\'s environment');
  assert.ok(c.secrets.values.includes(fileKey), 'its value must be redacted');
  assertNoLeak(c, [fileKey, STRONG_KEY]);
});

test('LiteLLM config: ignored sections in one note, environment_variables applied, api_base port, several models', async () => {
  const yaml = `model_list:
  - model_name: qwen
    litellm_params: { model: hosted_vllm/qwen, api_base: "http://127.0.0.1:8000/v1" }
  - model_name: qwen
    litellm_params: { model: hosted_vllm/qwen, api_base: "http://127.0.0.1:8001/v1" }
  - model_name: llama
    litellm_params: { model: openai/llama, api_base: "http://127.0.0.1:8002/v1" }
litellm_settings:
  drop_params: true
router_settings:
  routing_strategy: simple-shuffle
general_settings:
  master_key: os.environ/PROXY_KEY
  database_url: postgres://x
environment_variables:
  HF_HOME: /cache
  RETRIES: 3
  PROXY_KEY: ${STRONG_KEY}
  FROM_OUTSIDE: os.environ/OUTSIDE
`;
  const c = await load({ 'llmserve.yaml': yaml }, { model: '/m' }, { OUTSIDE: 'o' });
  assert.equal(c.servedModelName, 'qwen');
  assert.equal(c.vllm.port, 8000);
  assert.deepEqual(c.environment, { HF_HOME: '/cache', RETRIES: '3', PROXY_KEY: STRONG_KEY, FROM_OUTSIDE: 'o' });
  assert.ok(c.proxy.keys[0]?.sha256.equals(hashKey(STRONG_KEY)));
  assert.ok(c.secrets.envNames.includes('PROXY_KEY'));
  const ignored = c.notes.filter((n) => n.includes('were ignored'));
  assert.equal(ignored.length, 1);
  assert.match(ignored[0] ?? '', /litellm_settings\.drop_params, router_settings\.routing_strategy, general_settings\.database_url$/);
  assert.ok(c.notes.some((n) => /only the first, "qwen", is served \(ignored: "llama": other backends\)/.test(n)), c.notes.join('\n'));
  assertNoLeak(c, [STRONG_KEY]);
});

test('LiteLLM config: api_base without a port means 3000; a bad URL is an error', async () => {
  const yaml = (base: string): string => `model_list:\n  - model_name: a\n    litellm_params: { api_base: "${base}" }\ngeneral_settings: { master_key: ${STRONG_KEY} }\n`;
  assert.equal((await load({ 'llmserve.yaml': yaml('http://localhost/v1') }, { model: '/m' })).vllm.port, 3000);
  assert.equal((await load({ 'llmserve.yaml': yaml('http://localhost/v1') }, { model: '/m', backendPort: '3005' })).vllm.port, 3005);
  await rejects(load({ 'llmserve.yaml': yaml('not a url') }, { model: '/m' }), /llmserve\.yaml: model_list\[0\]\.litellm_params\.api_base: expected a URL like http:\/\/localhost:3000\/v1, got "not a url"$/);
  await rejects(load({ 'llmserve.yaml': 'model_list: []\n' }, { model: '/m' }), /model_list: expected a non-empty list of models, got a list$/);
  // Without a scheme, `localhost:8000` parses as a URL of scheme "localhost:" with no port: never a silent 3000.
  await rejects(load({ 'llmserve.yaml': yaml('localhost:8000/v1') }, { model: '/m' }), /api_base: expected a URL like http:\/\/localhost:3000\/v1, got "localhost:8000\/v1"$/);
  await rejects(load({ 'llmserve.yaml': yaml('127.0.0.1:8000') }, { model: '/m' }), /api_base: expected a URL like http:\/\/localhost:3000\/v1, got "127.0.0.1:8000"$/);
  assert.equal((await load({ 'llmserve.yaml': yaml('HTTPS://localhost:8443') }, { model: '/m' })).vllm.port, 8443);
  // A scheme's default port written out is that port (URL drops it), not the backend default.
  assert.equal((await load({ 'llmserve.yaml': yaml('http://localhost:80/v1') }, { model: '/m' })).vllm.port, 80);
  assert.equal((await load({ 'llmserve.yaml': yaml('https://user:pw@[::1]:443') }, { model: '/m' })).vllm.port, 443);
  assert.equal((await load({ 'llmserve.yaml': yaml('http://[::1]/v1') }, { model: '/m' })).vllm.port, 3000);
  // Port 0 would have vLLM pick a port no one knows: refused as every other port setting refuses it.
  await rejects(load({ 'llmserve.yaml': yaml('http://localhost:0/v1') }, { model: '/m' }), /model_list\[0\]\.litellm_params\.api_base \(its port\): expected an integer 1-65535, got "0"$/);
});

test('LiteLLM config without a key: error says how to set one, a fix that works for that format, and a misspelt general_settings', async () => {
  const err = await rejects(load({ 'llmserve.yaml': 'model_list:\n  - model_name: a\n' }, { model: '/m' }), /no API key configured.*export LLMSERVE_MASTER_KEY=\.\.\..*general_settings\.master_key: os\.environ\/NAME in \/srv\/app\/llmserve\.yaml; /);
  // A LiteLLM file ignores proxy.auth: the error must not offer it as a setting of that file.
  assert.doesNotMatch(err.message, /; to serve without authentication, set proxy\.auth: false/);
  assert.match(err.message, /a LiteLLM config cannot turn authentication off: to serve without it, use llmserve's own format with proxy\.auth: false \(llmserve init writes one\)$/);
  // The key is under a misspelt section, ignored as LiteLLM ignores it: the error says which, not only a note never shown.
  const typo = 'model_list:\n  - model_name: m1\n    litellm_params: { model: openai/m1 }\ngeneral_setting:\n  master_key: sk-abcdefghijklmnopqrstuvwxyz0123\n';
  await rejects(load({ 'llmserve.yaml': typo }, { model: '/m' }), /os\.environ\/NAME in \/srv\/app\/llmserve\.yaml \(\/srv\/app\/llmserve\.yaml: ignored as misspelt: general_setting \(did you mean general_settings\?\)\); a LiteLLM config cannot/, ['sk-abcdefghijklmnopqrstuvwxyz0123']);
});

test('named keys and digests, in order after the master key', async () => {
  const digest = hashKey('team-b-key-0123456789').toString('hex');
  const yaml = `model: m
proxy:
  master_key: ${STRONG_KEY}
  keys:
    - { name: team-a, key: os.environ/TEAM_A_KEY }
    - { name: team-b, key_sha256: ${digest.toUpperCase()} }
    - { name: tiny, key: abc }
`;
  const c = await load({ 'llmserve.yaml': yaml }, {}, { TEAM_A_KEY: 'team-a-key-0123456789' });
  assert.deepEqual(c.proxy.keys.map((k) => [k.name, k.digestOnly]), [['master', false], ['team-a', false], ['team-b', true], ['tiny', false]]);
  assert.ok(c.proxy.keys[1]?.sha256.equals(hashKey('team-a-key-0123456789')));
  assert.ok(c.proxy.keys[2]?.sha256.equals(hashKey('team-b-key-0123456789')));
  assert.deepEqual(c.secrets.values, [STRONG_KEY, 'team-a-key-0123456789', 'abc']);
  assert.deepEqual(c.secrets.envNames, ['LLMSERVE_MASTER_KEY', 'LITELLM_MASTER_KEY', 'TEAM_A_KEY']);
  assert.equal(c.notes.length, 1);
  // A named key's fix is a new key for that name, put where the weak one is set (not LLMSERVE_MASTER_KEY, the master's).
  assert.equal(c.notes[0], 'API key "tiny" (from proxy.keys[2].key in /srv/app/llmserve.yaml) is shorter than 16 characters: anyone could guess it. Make a new one with: llmserve keys generate --name tiny, and put its key_sha256 there in place of the key');
  const fromEnv = await load({ 'llmserve.yaml': yaml }, {}, { TEAM_A_KEY: 'sk-1234' });
  assert.match(fromEnv.notes.join('\n'), /API key "team-a" \(from proxy\.keys\[0\]\.key in \/srv\/app\/llmserve\.yaml\) is a well-known placeholder .*llmserve keys generate --name team-a, and set TEAM_A_KEY to the new key/);
  assertNoLeak(c, [STRONG_KEY, 'team-a-key-0123456789', 'abc']);
});

test('named keys alone (no master key) are enough', async () => {
  const c = await load({ 'llmserve.yaml': `model: m\nproxy: { keys: [{ name: a, key: ${STRONG_KEY} }] }\n` });
  assert.deepEqual(c.proxy.keys.map((k) => k.name), ['a']);
});

test('keys_file: relative to the config file, loaded at start and by readKeysFile', async () => {
  const files = {
    '/etc/llmserve/llmserve.yaml': 'model: m\nproxy:\n  keys_file: keys.yaml\n',
    '/etc/llmserve/keys.yaml': `- name: alice\n  key: ${STRONG_KEY}\n- name: bob\n  key_sha256: ${'ab'.repeat(32)}\n`,
  };
  const c = await load(files, { config: '/etc/llmserve/llmserve.yaml' });
  assert.equal(c.proxy.keysFile, '/etc/llmserve/keys.yaml');
  assert.deepEqual(c.proxy.keys.map((k) => k.name), ['alice', 'bob']);
  assert.deepEqual(c.secrets.values, [STRONG_KEY]);

  const { entries } = await readKeysFile('/etc/llmserve/keys.yaml', { readFile: async () => files['/etc/llmserve/keys.yaml'] });
  assert.deepEqual(entries.map((k) => k.name), ['alice', 'bob']);
  assert.ok(entries[1]?.sha256.equals(Buffer.from('ab'.repeat(32), 'hex')));
});

test('readKeysFile on a real file; an empty keys file is allowed with a note; a list wrapped in a mapping is refused with the fix', async () => {
  const { mkdtemp, writeFile, rm } = await import('node:fs/promises');
  const { tmpdir } = await import('node:os');
  const { join } = await import('node:path');
  const dir = await mkdtemp(join(tmpdir(), 'llmserve-keys-'));
  try {
    await writeFile(join(dir, 'keys.yaml'), `- { name: k, key: ${STRONG_KEY} }\n`);
    const { entries } = await readKeysFile(join(dir, 'keys.yaml'));
    assert.equal(entries[0]?.name, 'k');
    await writeFile(join(dir, 'empty.yaml'), '');
    await writeFile(join(dir, 'llmserve.yaml'), 'model: m\nproxy: { keys_file: empty.yaml }\n');
    const c = await loadConfig({ config: join(dir, 'llmserve.yaml') }, { env: {} });
    assert.deepEqual(c.proxy.keys, []);
    assert.match(c.notes.join('\n'), /keys file has no keys yet/);
    await rejects(readKeysFile(join(dir, 'missing.yaml')), /missing\.yaml: cannot read the keys file: no such file$/);
    // The config's `proxy.keys:` shape copied into the keys file.
    await writeFile(join(dir, 'wrapped.yaml'), `keys:\n  - name: k\n    key: ${STRONG_KEY}\n`);
    await rejects(readKeysFile(join(dir, 'wrapped.yaml')), /wrapped\.yaml: expected a list of \{name, key\} or \{name, key_sha256\} entries, got a mapping; a keys file is the list itself: move the entries under `keys:` to the top level, each starting with `- name:`$/);
    await writeFile(join(dir, 'map.yaml'), `alice: ${STRONG_KEY}\n`);
    await rejects(readKeysFile(join(dir, 'map.yaml')), /map\.yaml: expected a list .* got a mapping; write the entries at the top level, each starting with `- name:`$/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('key errors: duplicates, both/neither, bad sha256, unknown field, non-string key; none leak the key', async () => {
  const cases: Array<[string, RegExp]> = [
    [`[{ name: a, key: ${STRONG_KEY} }, { name: a, key: other-key-0123456789 }]`, /proxy\.keys\[1\]: duplicate key name "a" \(also used by .*proxy\.keys\[0\]\)/],
    [`[{ name: a, key: ${STRONG_KEY} }, { name: b, key: ${STRONG_KEY} }]`, /proxy\.keys\[1\]: key "b" is the same key as "a"/],
    [`[{ name: a, key: ${STRONG_KEY}, key_sha256: ${'0'.repeat(64)} }]`, /proxy\.keys\[0\]: key "a" needs exactly one of key or key_sha256, got both$/],
    ['[{ name: a }]', /needs exactly one of key or key_sha256, got neither$/],
    ['[{ name: a, key_sha256: abc123 }]', /proxy\.keys\[0\]\.key_sha256: expected 64 hexadecimal characters .*got 6 characters$/],
    [`[{ name: a, key_sha256: ${'g'.repeat(64)} }]`, /got 64 characters \(not all hexadecimal\)$/],
    [`[{ name: a, kye: ${STRONG_KEY} }]`, /proxy\.keys\[0\]\.kye: unknown key; did you mean "key"\?$/],
    [`[{ name: "", key: ${STRONG_KEY} }]`, /proxy\.keys\[0\]\.name: expected a non-empty string/],
    ['[{ name: a, key: 12345678901234567 }]', /proxy\.keys\[0\]\.key: expected a non-empty string \(the key\), got a number; quote keys/],
    [`{ a: ${STRONG_KEY} }`, /proxy\.keys: expected a list of \{name, key\} or \{name, key_sha256\} entries, got a mapping; write each key as `- name: NAME` with `key: KEY` under it$/],
    // A key no client can present in a header: never accepted, never echoed.
    ['[{ name: a, key: "sk-ключключключключ" }]', /proxy\.keys\[0\]\.key: the key holds a character an HTTP header cannot carry \(a non-ASCII character, at position 4\), so no client could ever present it/],
    ['[{ name: a, key: "sk-0123456789\\nabcdef" }]', /proxy\.keys\[0\]\.key: the key holds a character an HTTP header cannot carry \(a control character, at position 14\)/],
  ];
  for (const [keys, pattern] of cases) {
    await rejects(load({ 'llmserve.yaml': `model: m\nproxy:\n  keys: ${keys}\n` }), pattern, [STRONG_KEY, 'other-key-0123456789', '12345678901234567', 'ключ', '0123456789']);
  }
  // master key in env equal to a named key's name "master"
  await rejects(load({ 'llmserve.yaml': `model: m\nproxy: { keys: [{ name: master, key: other-key-0123456789 }] }\n` }, {}, { LLMSERVE_MASTER_KEY: STRONG_KEY }), /duplicate key name "master" \(also used by LLMSERVE_MASTER_KEY\)/, [STRONG_KEY]);
  await rejects(load({ 'llmserve.yaml': 'model: m\nproxy: { master_key: 12345 }\n' }), /proxy\.master_key: expected a non-empty string \(better: os\.environ\/NAME\), got a number/, ['12345']);
  // keys file errors name the file
  await rejects(load({ 'llmserve.yaml': 'model: m\nproxy: { keys_file: k.yaml }\n' }), /^\/srv\/app\/k\.yaml: cannot read the keys file \(proxy\.keys_file in \/srv\/app\/llmserve\.yaml\): no such file$/);
  await rejects(load({ 'llmserve.yaml': 'model: m\nproxy: { keys_file: k.yaml }\n', 'k.yaml': 'name: a\n' }), /^\/srv\/app\/k\.yaml: expected a list of/);
  await rejects(load({ 'llmserve.yaml': 'model: m\nproxy: { keys_file: k.yaml }\n', 'k.yaml': '- { name: a, key_sha256: xyz }\n' }), /^\/srv\/app\/k\.yaml: \[0\]\.key_sha256: expected 64 hexadecimal/);
});

test("a key's value configured for vLLM under another name (vllm.env, a model's vllm.env, environment_variables) is refused: keys never reach vLLM's environment", async () => {
  const team = 'team-key-0123456789abcdefghijkl';
  const keys = `proxy:\n  keys:\n    - { name: team, key: os.environ/TEAM_KEY }\n`;
  const secrets = [team, STRONG_KEY];
  // The auditor's case: the variable a key is read from, handed to vLLM as X.
  await rejects(load({ 'llmserve.yaml': `model: /m\nvllm: { env: { X: os.environ/TEAM_KEY } }\n${keys}` }, {}, { TEAM_KEY: team }),
    /^\/srv\/app\/llmserve\.yaml: vllm\.env\.X: expected a value that is no API key, got the key "team" \(\[redacted\]\); keys never reach vLLM's environment .*remove X from vllm\.env$/, secrets);
  // The master key from the environment, written into one model's own env; a key known only by its digest.
  await rejects(load({ 'llmserve.yaml': `models:\n  - { model: /m/a, gpus: 1 }\n  - { model: /m/b, gpus: 1, vllm: { env: { HF_TOKEN: ${STRONG_KEY} } } }\n` }, {}, { LLMSERVE_MASTER_KEY: STRONG_KEY }),
    /llmserve\.yaml: models\[1\]\.vllm\.env\.HF_TOKEN: expected a value that is no API key, got the key "master"/, secrets);
  await rejects(load({ 'llmserve.yaml': `model: /m\nvllm: { env: { HF_TOKEN: ${team} } }\nproxy: { keys: [{ name: ops, key_sha256: ${hashKey(team).toString('hex')} }] }\n` }, {}, { LLMSERVE_MASTER_KEY: STRONG_KEY }),
    /vllm\.env\.HF_TOKEN: expected a value that is no API key, got the key "ops"/, secrets);
  // A keys file's key; a LiteLLM config's environment_variables.
  await rejects(load({ 'llmserve.yaml': `model: /m\nvllm: { env: { Y: ${team} } }\nproxy: { keys_file: k.yaml }\n`, 'k.yaml': `- { name: batch, key: ${team} }\n` }, {}, { LLMSERVE_MASTER_KEY: STRONG_KEY }),
    /vllm\.env\.Y: expected a value that is no API key, got the key "batch"/, secrets);
  const litellm = `model_list:\n  - { model_name: m, litellm_params: { model: hosted_vllm/m, api_base: "http://127.0.0.1:3000/v1" } }\nenvironment_variables:\n  OPENAI_API_KEY: ${STRONG_KEY}\ngeneral_settings: { master_key: ${STRONG_KEY} }\n`;
  await rejects(load({ 'litellm.config.yaml': litellm }, { config: 'litellm.config.yaml', model: '/m' }, {}),
    /^\/srv\/app\/litellm\.config\.yaml: environment_variables\.OPENAI_API_KEY: expected a value that is no API key, got the key "master"/, secrets);
  const withInclude = `include:\n  - inc/env.yaml\n${litellm.replace(/^environment_variables:\n.*\n/m, '')}`;
  await rejects(load({ 'litellm.config.yaml': withInclude, 'inc/env.yaml': `environment_variables:\n  OPENAI_API_KEY: ${STRONG_KEY}\n` }, { config: 'litellm.config.yaml', model: '/m' }, {}),
    /^\/srv\/app\/inc\/env\.yaml: environment_variables\.OPENAI_API_KEY: expected a value that is no API key/, secrets);
  // Names vLLM's environment leaves out anyway (key variables, VLLM_API_KEY) are no leak: loaded, and vLLM gets neither.
  const dropped = await load({ 'llmserve.yaml': `model: /m\nvllm: { env: { TEAM_KEY: os.environ/TEAM_KEY, VLLM_API_KEY: os.environ/TEAM_KEY, HF_HOME: /cache } }\n${keys}` }, {}, { TEAM_KEY: team });
  const vllmEnv = buildVllmEnv(dropped, { TEAM_KEY: team });
  assert.ok(!Object.values(vllmEnv).includes(team));
  assert.equal(vllmEnv.HF_HOME, '/cache');
});

test('no key at all: error says how to set one; proxy.auth: false serves open with a loud note', async () => {
  await rejects(load({}, { model: 'm' }), /^no API key configured.*export LLMSERVE_MASTER_KEY=\.\.\..*proxy\.master_key: os\.environ\/NAME.*proxy\.auth: false/);
  await rejects(load({ 'llmserve.yaml': 'model: m\nproxy: { auth: true }\n' }), /no API key configured/);
  const c = await load({ 'llmserve.yaml': 'model: m\nproxy: { auth: false }\n' });
  assert.equal(c.proxy.auth, false);
  assert.deepEqual(c.proxy.keys, []);
  assert.match(c.notes.join('\n'), /^proxy\.auth is false: no API key is checked; anyone who can reach 0\.0\.0\.0:8080/);
});

test('LiteLLM configs: YAML merge keys resolve as PyYAML does; many aliases load; a bomb is exit 2', async () => {
  const merged = `x-vllm: &vllm { model: hosted_vllm/qwen, api_base: "http://127.0.0.1:8001/v1" }
x-gs: &gs { master_key: ${STRONG_KEY} }
model_list:
  - model_name: qwen
    litellm_params:
      <<: *vllm
general_settings:
  <<: *gs
`;
  const c = await load({ 'litellm.config.yaml': merged }, { config: 'litellm.config.yaml', model: '/m' }, {});
  assert.equal(c.vllm.port, 8001);
  assert.ok(c.proxy.keys[0]?.sha256.equals(hashKey(STRONG_KEY)));
  assert.doesNotMatch(c.notes.join('\n'), /<</);
  // A long model_list sharing one anchor (every entry an alias of it).
  const many = `base: &base { model: hosted_vllm/qwen, api_base: "http://127.0.0.1:8000/v1" }\ngeneral_settings: { master_key: ${STRONG_KEY} }\nmodel_list:\n${Array.from({ length: 150 }, () => '  - { model_name: qwen, litellm_params: *base }').join('\n')}\n`;
  assert.equal((await load({ 'litellm.config.yaml': many }, { config: 'litellm.config.yaml', model: '/m' }, {})).vllm.port, 8000);
  // Exponential alias expansion: refused as invalid YAML (exit 2), not an internal error.
  const levels = ['a: &a [x, x, x, x, x, x, x, x, x, x]'];
  for (let i = 1; i < 8; i++) levels.push(`${String.fromCharCode(97 + i)}: &${String.fromCharCode(97 + i)} [${Array(10).fill(`*${String.fromCharCode(96 + i)}`).join(', ')}]`);
  await rejects(load({ 'llmserve.yaml': `model: m\n${levels.join('\n')}\n` }, {}, { LLMSERVE_MASTER_KEY: STRONG_KEY }), /llmserve\.yaml: invalid YAML: /);
});

test('keys written one per line (a raw key list) and a key pasted into a policy field are named by kind, never echoed', async () => {
  // Keys of no recognisable shape: only the kind of value can keep them out of the message.
  const raw = ['a8Fq2LmZx91Kd0Pq7Rw3Tu6', 'Vb5Nc4Xe2Wr8Ty1Ui9Op0Az'];
  await rejects(load({ 'llmserve.yaml': 'model: m\nproxy: { keys_file: k.yaml }\n', 'k.yaml': raw.join('\n') + '\n' }), /^\/srv\/app\/k\.yaml: expected a list of \{name, key\} or \{name, key_sha256\} entries, got a string; write each key as `- name: NAME` with `key: KEY` under it$/, raw);
  await rejects(load({ 'llmserve.yaml': `model: m\nproxy:\n  keys: ${raw[0]}\n` }, {}, { LLMSERVE_MASTER_KEY: STRONG_KEY }), /proxy\.keys: expected a list .* got a string;/, raw);
  // A key one line off, in a field whose value is otherwise shown.
  const pasted = 'sk-pasted-0123456789abcdefXYZ';
  await rejects(load({ 'llmserve.yaml': `model: m\nproxy:\n  keys:\n    - { name: a, key: ${STRONG_KEY}, rpm: ${pasted} }\n` }), /proxy\.keys\[0\]\.rpm: expected .*, got a string that looks like an API key \(not shown\)/, [pasted, STRONG_KEY]);
  await rejects(load({ 'llmserve.yaml': `model: m\nproxy:\n  keys:\n    - { name: a, key: ${STRONG_KEY}, expires: "key= ${pasted}" }\n` }), /proxy\.keys\[0\]\.expires: .*got a string that looks like an API key \(not shown\)/, [pasted, STRONG_KEY]);
});

test('a section written as one string (a space missing after a colon) is named by kind, never echoed: it may be a key', async () => {
  const secret = 'sk-secretvalue-1234567890abcdef';
  await rejects(load({ 'litellm.config.yaml': `model_list:\n  - { model_name: m, litellm_params: { model: x } }\ngeneral_settings:\n  master_key:${secret}\n` }, { config: 'litellm.config.yaml', model: '/m' }, {}), /general_settings: expected a mapping, got a string \(is a space missing after a colon\?\)$/, [secret]);
  await rejects(load({ 'llmserve.yaml': `model: m\nproxy:\n  keys:\n    - name:a key:${secret}\n` }, {}, { LLMSERVE_MASTER_KEY: STRONG_KEY }), /proxy\.keys\[0\]: expected a mapping \{name, key\} or \{name, key_sha256\}, got a string$/, [secret]);
});

test('LiteLLM config: LITELLM_MASTER_KEY given in environment_variables is the master key, and stays out of vLLM', async () => {
  const text = `model_list:\n  - { model_name: m, litellm_params: { model: hosted_vllm/m, api_base: "http://127.0.0.1:3000/v1" } }\nenvironment_variables:\n  LITELLM_MASTER_KEY: ${STRONG_KEY}\n`;
  const c = await load({ 'litellm.config.yaml': text }, { config: 'litellm.config.yaml', model: '/m' }, {});
  assert.ok(c.proxy.keys[0]?.sha256.equals(hashKey(STRONG_KEY)));
  assert.ok(c.secrets.values.includes(STRONG_KEY));
  assert.ok(c.secrets.envNames.includes('LITELLM_MASTER_KEY'));
  // general_settings.master_key comes first, as in LiteLLM.
  const both = await load({ 'litellm.config.yaml': `${text}general_settings: { master_key: other-key-0123456789abcdef }\n` }, { config: 'litellm.config.yaml', model: '/m' }, {});
  assert.ok(both.proxy.keys[0]?.sha256.equals(hashKey('other-key-0123456789abcdef')));
});

test('LiteLLM config: a variable already set in the environment wins over environment_variables, for os.environ/ and for vLLM', async () => {
  // LiteLLM applies each entry as get_secret(NAME, default_value=VALUE): os.environ is read first.
  const devKey = 'dev-key-not-for-production-0000';
  const text = `environment_variables:\n  MY_PROXY_KEY: ${devKey}\n  HF_HOME: /file-cache\n  FROM: os.environ/UNSET_HERE\n  ONLY_FILE: x\nmodel_list:\n  - { model_name: m, litellm_params: { model: hosted_vllm/m, api_base: "http://127.0.0.1:3000/v1" } }\ngeneral_settings:\n  master_key: os.environ/MY_PROXY_KEY\n`;
  const env = { MY_PROXY_KEY: STRONG_KEY, HF_HOME: '/env-cache', FROM: 'set' };
  const c = await load({ 'litellm.config.yaml': text }, { config: 'litellm.config.yaml', model: '/m' }, env);
  assert.ok(c.proxy.keys[0]?.sha256.equals(hashKey(STRONG_KEY)), 'the environment\'s key, not the file\'s');
  assert.ok(!c.secrets.values.includes(devKey));
  assert.deepEqual(c.environment, { ONLY_FILE: 'x' });
  const vllmEnv = buildVllmEnv(c, env);
  assert.equal(vllmEnv.HF_HOME, '/env-cache');
  assert.equal(vllmEnv.FROM, 'set');
  assert.equal(vllmEnv.MY_PROXY_KEY, undefined);
  assert.ok(c.notes.some((n) => /environment_variables: MY_PROXY_KEY, HF_HOME, FROM are set in the environment, which wins as in LiteLLM/.test(n)), c.notes.join('\n'));
  assertNoLeak(c, [STRONG_KEY, devKey]);
  // Unset (or empty) in the environment: the file's value is used, as before.
  const d = await load({ 'litellm.config.yaml': text }, { config: 'litellm.config.yaml', model: '/m' }, { MY_PROXY_KEY: '', UNSET_HERE: 'u' });
  assert.ok(d.proxy.keys[0]?.sha256.equals(hashKey(devKey)));
  assert.deepEqual(d.environment, { MY_PROXY_KEY: devKey, HF_HOME: '/file-cache', FROM: 'u', ONLY_FILE: 'x' });
  // An entry with no value (a placeholder left empty): not an error, left as the environment has it.
  const placeholder = text.replace(/^environment_variables:\n(?: {2}.*\n)+/, 'environment_variables:\n  REDIS_PASSWORD:\n  ONLY_FILE: x\n');
  const e = await load({ 'litellm.config.yaml': placeholder }, { config: 'litellm.config.yaml', model: '/m' }, { MY_PROXY_KEY: STRONG_KEY });
  assert.deepEqual(e.environment, { ONLY_FILE: 'x' });
  assert.ok(e.notes.some((n) => /environment_variables: REDIS_PASSWORD has no value: left as the environment has it/.test(n)), e.notes.join('\n'));
});

test("LiteLLM's include: the included files' model_list entries are combined with the parent's", async () => {
  const parent = `include:\n  - models/qwen.yaml\ngeneral_settings: { master_key: ${STRONG_KEY} }\n`;
  const models = 'model_list:\n  - model_name: qwen\n    litellm_params: { model: hosted_vllm/qwen, api_base: "http://127.0.0.1:8002/v1" }\n';
  const c = await load({ 'litellm.config.yaml': parent, 'models/qwen.yaml': models }, { config: 'litellm.config.yaml', model: '/m' }, {});
  assert.equal(c.configFormat, 'litellm');
  assert.equal(c.servedModelName, 'qwen');
  assert.equal(c.vllm.port, 8002);
  assert.doesNotMatch(c.notes.join('\n'), /include/);
  await rejects(load({ 'litellm.config.yaml': parent }, { config: 'litellm.config.yaml', model: '/m' }, {}), /litellm\.config\.yaml: include\[0\]: cannot read \/srv\/app\/models\/qwen\.yaml: no such file$/);
  await rejects(load({ 'litellm.config.yaml': 'include: models.yaml\n' }, { config: 'litellm.config.yaml', model: '/m' }, {}), /include: expected a list of file paths/);
});

test('LiteLLM config: another model_name on the same vLLM (the same api_base) and router_settings.model_group_alias are aliases of the served name', async () => {
  const yaml = `model_list:
  - model_name: qwen2.5-72b
    litellm_params: { model: hosted_vllm/Qwen/Qwen2.5-72B-Instruct, api_base: "http://localhost:8000/v1" }
  - model_name: gpt-4o
    litellm_params: { model: openai/Qwen/Qwen2.5-72B-Instruct, api_base: "http://127.0.0.1:8000/v1", api_key: none }
  - model_name: embed
    litellm_params: { model: openai/bge, api_base: "http://localhost:8001/v1" }
  - model_name: unset
    litellm_params: { model: openai/x, api_base: os.environ/NOT_SET_ANYWHERE }
router_settings:
  routing_strategy: simple-shuffle
  model_group_alias: { gpt-4: qwen2.5-72b, gpt-4-turbo: { model: gpt-4o, hidden: true }, ada: embed }
general_settings: { master_key: os.environ/PROXY_KEY }
`;
  const c = await load({ 'litellm.config.yaml': yaml }, { config: 'litellm.config.yaml', model: '/m' }, { PROXY_KEY: STRONG_KEY });
  assert.equal(c.servedModelName, 'qwen2.5-72b');
  // Before: only a note; clients calling gpt-4o (and LiteLLM's group aliases) got 404 after the migration.
  assert.deepEqual(c.proxy.modelAliases, { 'gpt-4o': 'qwen2.5-72b', 'gpt-4': 'qwen2.5-72b', 'gpt-4-turbo': 'qwen2.5-72b' });
  assert.ok(c.notes.some((n) => /model_list: "gpt-4o" reaches the same vLLM as "qwen2\.5-72b" \(the same api_base\): served as an alias of it/.test(n)), c.notes.join('\n'));
  assert.ok(c.notes.some((n) => /only the first, "qwen2\.5-72b", is served with its aliases \(ignored: "embed", "unset": other backends\)/.test(n)), c.notes.join('\n'));
  assert.ok(c.notes.some((n) => /were ignored: router_settings\.routing_strategy, router_settings\.model_group_alias\.ada$/.test(n)), c.notes.join('\n'));
});

test('LiteLLM config: its request timeout (litellm_settings.request_timeout, the entry\'s timeout: the larger) is proxy.first_byte_timeout; per-deployment limits are named as ignored', async () => {
  const yaml = (settings: string, params: string) => `model_list:\n  - model_name: m\n    litellm_params: { model: hosted_vllm/m, api_base: "http://localhost:3000/v1"${params} }\n${settings}general_settings: { master_key: os.environ/PROXY_KEY }\n`;
  const env = { PROXY_KEY: STRONG_KEY };
  // Before, llmserve's 600 s applied: a 20-minute non-streamed answer LiteLLM waited for got a 504.
  const c = await load({ 'litellm.config.yaml': yaml('litellm_settings: { request_timeout: 1800, drop_params: true }\n', ', timeout: 1200, rpm: 60, tpm: 100000') }, { config: 'litellm.config.yaml', model: '/m' }, env);
  assert.equal(c.proxy.firstByteTimeout, 1800);
  assert.ok(c.notes.some((n) => /LiteLLM's request timeout \(1800 s\) is proxy\.first_byte_timeout/.test(n)), c.notes.join('\n'));
  assert.ok(c.notes.some((n) => /were ignored: litellm_settings\.drop_params, model_list\[0\]\.litellm_params\.rpm, model_list\[0\]\.litellm_params\.tpm$/.test(n)), c.notes.join('\n'));
  assert.equal((await load({ 'litellm.config.yaml': yaml('', ', timeout: 2400') }, { config: 'litellm.config.yaml', model: '/m' }, env)).proxy.firstByteTimeout, 2400);
  // None set: llmserve's default, and nothing said.
  const d = await load({ 'litellm.config.yaml': yaml('', '') }, { config: 'litellm.config.yaml', model: '/m' }, env);
  assert.equal(d.proxy.firstByteTimeout, 600);
  assert.ok(!d.notes.some((n) => /request timeout/.test(n)));
});

test("LiteLLM's include: an included file's section replaces the parent's, as LiteLLM merges it; lists are appended; errors and the no-key fix name the included file", async () => {
  const cli = { config: 'litellm.config.yaml', model: '/m' };
  const models = 'model_list:\n  - model_name: inc-model\n    litellm_params: { model: hosted_vllm/x, api_base: "http://127.0.0.1:3005/v1" }\n';
  // A base config with a development key; the production overlay it includes sets the real one.
  const base = `include:\n  - inc/prod.yaml\nmodel_list:\n  - model_name: m1\n    litellm_params: { model: hosted_vllm/m1, api_base: "http://127.0.0.1:3000/v1" }\ngeneral_settings:\n  master_key: sk-dev-key-000000000000000000000\n`;
  const prod = 'general_settings:\n  master_key: os.environ/PROD_KEY\nmodel_list:\n  - model_name: m2\n';
  const c = await load({ 'litellm.config.yaml': base, 'inc/prod.yaml': prod }, cli, { PROD_KEY: STRONG_KEY });
  assert.ok(c.proxy.keys[0]?.sha256.equals(hashKey(STRONG_KEY)), "the included file's key, not the parent's");
  assert.ok(c.secrets.envNames.includes('PROD_KEY'));
  assert.equal(c.servedModelName, 'm1');
  assert.ok(c.notes.some((n) => /only the first, "m1", is served \(ignored: "m2": other backends\)/.test(n)), 'model_list entries appended');
  assert.ok(c.notes.some((n) => n === '/srv/app/inc/prod.yaml: general_settings replaces the general_settings of /srv/app/litellm.config.yaml (as LiteLLM merges include: an included file\'s section wins; only lists such as model_list are combined)'), c.notes.join('\n'));
  // An unset variable of the included section is named in the included file.
  await rejects(load({ 'litellm.config.yaml': base, 'inc/prod.yaml': prod }, cli, {}), /^\/srv\/app\/inc\/prod\.yaml: general_settings\.master_key: environment variable PROD_KEY/);
  // No key anywhere, the general_settings in effect is an included file's: the fix names that file, not the parent.
  const parent = 'include:\n  - inc/models.yaml\n  - inc/secrets.yaml\ngeneral_settings:\n  alerting: ["slack"]\n';
  await rejects(load({ 'litellm.config.yaml': parent, 'inc/models.yaml': models, 'inc/secrets.yaml': 'general_settings:\n  alerting: ["email"]\n' }, cli, {}), /general_settings\.master_key: os\.environ\/NAME in \/srv\/app\/inc\/secrets\.yaml;/);
  const d = await load({ 'litellm.config.yaml': parent, 'inc/models.yaml': models, 'inc/secrets.yaml': 'general_settings:\n  master_key: os.environ/INCLUDED_KEY\n' }, cli, { INCLUDED_KEY: STRONG_KEY });
  assert.ok(d.proxy.keys[0]?.sha256.equals(hashKey(STRONG_KEY)));
  assert.equal(d.vllm.port, 3005);
  // A setting llmserve does not use, in a section an included file brought: named with that file.
  const overlay = load({ 'litellm.config.yaml': base, 'inc/prod.yaml': prod.replace('general_settings:\n', 'general_settings:\n  database_url: postgres://x\n') }, cli, { PROD_KEY: STRONG_KEY });
  assert.ok((await overlay).notes.some((n) => /were ignored: general_settings\.database_url \(in \/srv\/app\/inc\/prod\.yaml\)$/.test(n)), (await overlay).notes.join('\n'));
  // An included file's own include: is refused (one level), naming where to list it: not with a claim about LiteLLM,
  // which reads nested includes.
  await rejects(load({ 'litellm.config.yaml': 'include:\n  - inc/a.yaml\n', 'inc/a.yaml': 'include:\n  - b.yaml\n' }, cli, {}), /^\/srv\/app\/inc\/a\.yaml: include: an included file cannot include others in llmserve; list every file in the include: of \/srv\/app\/litellm\.config\.yaml$/);
});

test('LiteLLM config: a wildcard model_name ("*") is served as the name derived from --model, with a note, never as "*"', async () => {
  const yaml = (name: string): string => `model_list:\n  - model_name: "${name}"\n    litellm_params: { model: "hosted_vllm/*", api_base: "http://localhost:3000/v1" }\n  - model_name: other\ngeneral_settings: { master_key: ${STRONG_KEY} }\n`;
  const c = await load({ 'litellm.config.yaml': yaml('*') }, { config: 'litellm.config.yaml', model: '/models/Qwen2.5-7B' });
  assert.equal(c.servedModelName, 'Qwen2.5-7B');
  assert.ok(c.notes.some((n) => /model_list\[0\]\.model_name: "\*" is a LiteLLM wildcard route.*served as "Qwen2\.5-7B" \(derived from the model path/.test(n)), c.notes.join('\n'));
  assert.ok(c.notes.some((n) => /only the first, \(the wildcard "\*"\), is served \(ignored: "other": other backends\)/.test(n)), c.notes.join('\n'));
  const d = await load({ 'litellm.config.yaml': yaml('qwen/*') }, { config: 'litellm.config.yaml', model: '/models/Qwen2.5-7B', servedModelName: 'pub' });
  assert.equal(d.servedModelName, 'pub');
  assert.ok(d.notes.some((n) => /"qwen\/\*" is a LiteLLM wildcard route.*served as "pub" \(--served-model-name\)/.test(n)), d.notes.join('\n'));
});

test('LiteLLM config: an ignored key that is a typo of one llmserve reads says so (the master key would be lost)', async () => {
  const head = 'model_list:\n  - model_name: a\n    litellm_params: { model: openai/custom }\n';
  const env = { LLMSERVE_MASTER_KEY: STRONG_KEY };
  const top = await load({ 'llmserve.yaml': `${head}general_setings: { master_key: sk-typo-0123456789abcdef }\nlitellm_settings: { drop_params: true }\n` }, { model: '/m' }, env);
  assert.ok(top.notes.some((n) => /were ignored: general_setings \(did you mean general_settings\?\), litellm_settings\.drop_params$/.test(n)), top.notes.join('\n'));
  const inner = await load({ 'llmserve.yaml': `${head}general_settings: { master_kye: sk-typo-0123456789abcdef, database_url: x }\n` }, { model: '/m' }, env);
  assert.ok(inner.notes.some((n) => /were ignored: general_settings\.master_kye \(did you mean general_settings\.master_key\?\), general_settings\.database_url$/.test(n)), inner.notes.join('\n'));
  assertNoLeak(inner, ['sk-typo-0123456789abcdef']);
});

test('LiteLLM config: a misspelt litellm_params or api_base in the served entry is said (the backend port would silently be the default)', async () => {
  const env = { LLMSERVE_MASTER_KEY: STRONG_KEY };
  const entry = await load({ 'litellm.yaml': 'model_list:\n  - model_name: m\n    litellm_param: { model: openai/m, api_base: "http://localhost:8080/v1" }\n' }, { config: 'litellm.yaml', model: '/m' }, env);
  assert.equal(entry.vllm.port, 3000);
  assert.ok(entry.notes.some((n) => /model_list\[0\]\.litellm_param: not a key LiteLLM or llmserve reads; did you mean litellm_params\?/.test(n)), entry.notes.join('\n'));
  const param = await load({ 'litellm.yaml': 'model_list:\n  - model_name: m\n    litellm_params: { model: openai/m, api-base: "http://localhost:8080/v1" }\n' }, { config: 'litellm.yaml', model: '/m' }, env);
  assert.ok(param.notes.some((n) => /model_list\[0\]\.litellm_params\.api-base: did you mean api_base\?/.test(n)), param.notes.join('\n'));
  // Spelt right: nothing said.
  const right = await load({ 'litellm.yaml': 'model_list:\n  - model_name: m\n    litellm_params: { model: openai/m, api_base: "http://localhost:8081/v1" }\n    model_info: { id: x }\n' }, { config: 'litellm.yaml', model: '/m' }, env);
  assert.ok(!right.notes.some((n) => /did you mean/.test(n)), right.notes.join('\n'));
  assert.equal(right.vllm.port, 8081);
});

test('a master key read from an unset variable is not an error when LLMSERVE_MASTER_KEY, which overrides it, is set', async () => {
  const litellm = `model_list:\n  - { model_name: m, litellm_params: { model: hosted_vllm/m, api_base: "http://127.0.0.1:3000/v1" } }\ngeneral_settings:\n  master_key: os.environ/LITELLM_MASTER_KEY\n`;
  const own = `model: /m\nproxy:\n  master_key: os.environ/TEAM_KEY\n`;
  for (const [name, text, where] of [['litellm.config.yaml', litellm, 'general_settings.master_key'], ['llmserve.yaml', own, 'proxy.master_key']] as const) {
    const c = await load({ [name]: text }, { config: name, model: '/m' }, { LLMSERVE_MASTER_KEY: STRONG_KEY });
    assert.ok(c.proxy.keys[0]?.sha256.equals(hashKey(STRONG_KEY)), name);
    assert.ok(c.notes.some((n) => n.includes(`${where}: os.environ/`) && n.includes('is not set; LLMSERVE_MASTER_KEY, which overrides it, is the master key')), c.notes.join('\n'));
    // Without a key in the environment, the unset variable is the error it always was.
    await assert.rejects(load({ [name]: text }, { config: name, model: '/m' }, {}), /is not set; export/);
  }
});
