// loadConfig: llmserve's format, defaults, precedence, file location, os.environ/.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DEFAULT_ROUTES, hashKey, nameFromModel } from '../../src/config/index.js';
import { CWD, STRONG_KEY, load, rejects, assertNoLeak } from '../helpers/config.js';

const KEY_ENV = { LLMSERVE_MASTER_KEY: STRONG_KEY };

test('defaults with no file: model from --model, key from env', async () => {
  const c = await load({}, { model: '/models/Qwen2.5-7B-Instruct/' }, KEY_ENV);
  assert.equal(c.configFile, null);
  assert.equal(c.configFormat, null);
  assert.equal(c.model, '/models/Qwen2.5-7B-Instruct/');
  assert.equal(c.servedModelName, 'Qwen2.5-7B-Instruct');
  assert.deepEqual(c.vllm, { command: ['vllm', 'serve'], port: 3000, tensorParallelSize: 'auto', args: [], env: {}, accessLog: false });
  assert.equal(c.proxy.port, 8080);
  assert.equal(c.proxy.host, '0.0.0.0');
  assert.equal(c.proxy.auth, true);
  assert.deepEqual(c.proxy.routes, [...DEFAULT_ROUTES]);
  assert.ok(c.proxy.routes.includes('/v1/responses/*'));
  assert.equal(c.proxy.maxBodyBytes, 64 * 1024 * 1024);
  assert.equal(c.proxy.firstByteTimeout, 600);
  assert.equal(c.proxy.headersTimeout, 30);
  assert.equal(c.proxy.bodyTimeout, 300);
  assert.equal(c.proxy.keepAliveTimeout, 65);
  assert.equal(c.proxy.tls, null);
  assert.equal(c.proxy.logHealth, false);
  assert.equal(c.proxy.keysFile, null);
  assert.deepEqual(c.probes, { dir: '/etc/probe', dirExplicit: false, interval: 10, require: 'all' });
  assert.deepEqual(c.timeouts, { startup: 1800, stop: 30, stall: 600, engineStall: 0 });
  assert.deepEqual(c.restart, { policy: 'on-failure', maxFailures: 5, windowS: 600, backoffInitialS: 1, backoffMaxS: 60, resetAfterS: 300 });
  assert.deepEqual(c.drain, { delay: 0, timeout: 30 });
  assert.equal(c.log.format, 'text');
  assert.deepEqual(c.extra, {});
  assert.equal(c.proxy.keys.length, 1);
  assert.equal(c.proxy.keys[0]?.name, 'master');
  assert.ok(c.proxy.keys[0]?.sha256.equals(hashKey(STRONG_KEY)));
  assert.deepEqual(c.secrets.values, [STRONG_KEY]);
  assert.deepEqual(c.secrets.envNames, ['LLMSERVE_MASTER_KEY', 'LITELLM_MASTER_KEY']);
  assert.deepEqual(c.notes, []);
});

test('public name from a hub id and from paths', () => {
  assert.equal(nameFromModel('Qwen/Qwen2.5-0.5B-Instruct'), 'Qwen2.5-0.5B-Instruct');
  assert.equal(nameFromModel('/models/llama///'), 'llama');
  assert.equal(nameFromModel('plain'), 'plain');
  // `--model .` in the model's directory: its name, as init writes it; never "." or "..".
  const cwd = () => '/models/Qwen2.5-7B-Instruct';
  for (const dot of ['.', './', '/models/Qwen2.5-7B-Instruct/.', 'sub/..']) assert.equal(nameFromModel(dot, cwd), 'Qwen2.5-7B-Instruct', dot);
  assert.equal(nameFromModel('..', () => '/models/Qwen2.5-7B-Instruct/snapshot'), 'Qwen2.5-7B-Instruct');
  assert.equal(nameFromModel('..', () => '/'), '..', 'nothing better to name it by');
});

const FULL = `
model: /models/m
served_model_name: my-model
vllm:
  command: python -m vllm.entrypoints.openai.api_server
  port: 3100
  tensor_parallel_size: 2
  args: [--max-model-len, 8192, --enable-prefix-caching]
  env: { HF_HOME: /cache, VLLM_LOGGING_LEVEL: DEBUG, NCCL_P2P_DISABLE: 1 }
proxy:
  port: 9000
  host: 127.0.0.1
  master_key: os.environ/MY_KEY
  routes: [/v1/chat/completions, /v1/audio/*]
  model_aliases: { gpt-4o: my-model }
  max_body_bytes: 10MiB
  first_byte_timeout: 120
  headers_timeout: 10
  body_timeout: 60.5
  keep_alive_timeout: 620
  tls: { cert: tls/cert.pem, key: /etc/tls/key.pem }
  log_health: true
probes:
  dir: /tmp/probe
  interval: 2.5
startup_timeout: 900
stop_timeout: 5
log_format: json
restart: { max_failures: 3 }
drain: { delay: 5, timeout: 30 }
stall_timeout: 120
engine_stall_timeout: 240
models: []
usage: { dir: /var/lib/llmserve, track: all, flush_interval: 2 }
`;

test('llmserve format: every key read', async () => {
  const c = await load({ 'llmserve.yaml': FULL }, { extraArgs: ['--seed', '1'] }, { MY_KEY: STRONG_KEY });
  assert.equal(c.configFile, `${CWD}/llmserve.yaml`);
  assert.equal(c.configFormat, 'llmserve');
  assert.equal(c.servedModelName, 'my-model');
  assert.deepEqual(c.vllm.command, ['python', '-m', 'vllm.entrypoints.openai.api_server']);
  assert.equal(c.vllm.port, 3100);
  assert.equal(c.vllm.tensorParallelSize, 2);
  assert.deepEqual(c.vllm.args, ['--max-model-len', '8192', '--enable-prefix-caching', '--seed', '1']);
  assert.deepEqual(c.vllm.env, { HF_HOME: '/cache', VLLM_LOGGING_LEVEL: 'DEBUG', NCCL_P2P_DISABLE: '1' });
  assert.equal(c.proxy.port, 9000);
  assert.equal(c.proxy.host, '127.0.0.1');
  assert.deepEqual(c.proxy.routes, ['/v1/chat/completions', '/v1/audio/*']);
  assert.deepEqual(c.proxy.modelAliases, { 'gpt-4o': 'my-model' });
  assert.equal(c.proxy.maxBodyBytes, 10 * 1024 * 1024);
  assert.equal(c.proxy.firstByteTimeout, 120);
  assert.equal(c.proxy.headersTimeout, 10);
  assert.equal(c.proxy.bodyTimeout, 60.5);
  assert.equal(c.proxy.keepAliveTimeout, 620);
  assert.deepEqual(c.proxy.tls, { cert: `${CWD}/tls/cert.pem`, key: '/etc/tls/key.pem' });
  assert.equal(c.proxy.logHealth, true);
  assert.deepEqual(c.probes, { dir: '/tmp/probe', dirExplicit: true, interval: 2.5, require: 'all' });
  assert.deepEqual(c.timeouts, { startup: 900, stop: 5, stall: 120, engineStall: 240 });
  assert.deepEqual(c.restart, { policy: 'on-failure', maxFailures: 3, windowS: 600, backoffInitialS: 1, backoffMaxS: 60, resetAfterS: 300 });
  assert.deepEqual(c.drain, { delay: 5, timeout: 30 });
  assert.equal(c.log.format, 'json');
  // `models: []` (an empty list) counts as not set, so it does not clash with `model:`.
  assert.deepEqual(c.extra, {});
  assert.deepEqual(c.usage, { dir: '/var/lib/llmserve', track: 'all', flushInterval: 2 });
  assert.ok(c.secrets.envNames.includes('MY_KEY'));
  assert.deepEqual(c.secrets.values, [STRONG_KEY]);
  assert.ok(c.proxy.keys[0]?.sha256.equals(hashKey(STRONG_KEY)));
});

test('vllm.command as a list; max_body_bytes as 10MB and as a number', async () => {
  const yaml = (size: string): string => `model: m\nvllm: { command: [uv, run, vllm, serve] }\nproxy: { max_body_bytes: ${size} }\n`;
  const a = await load({ 'llmserve.yaml': yaml('10MB') }, {}, KEY_ENV);
  assert.deepEqual(a.vllm.command, ['uv', 'run', 'vllm', 'serve']);
  assert.equal(a.proxy.maxBodyBytes, 10_000_000);
  const b = await load({ 'llmserve.yaml': yaml('1048576') }, {}, KEY_ENV);
  assert.equal(b.proxy.maxBodyBytes, 1048576);
});

test('empty sections and empty values count as not set', async () => {
  const c = await load({ 'llmserve.yaml': 'model: m\nproxy:\nvllm:\n  port:\nprobes: {}\n' }, {}, KEY_ENV);
  assert.equal(c.vllm.port, 3000);
  assert.equal(c.probes.dirExplicit, false);
});

test('config file location: --config > LLMSERVE_CONFIG > ./llmserve.yaml > none', async () => {
  const files = {
    'llmserve.yaml': 'model: local\n',
    '/etc/a.yaml': 'model: from-flag\n',
    '/etc/b.yaml': 'model: from-env\n',
  };
  assert.equal((await load(files, { config: '/etc/a.yaml' }, { ...KEY_ENV, LLMSERVE_CONFIG: '/etc/b.yaml' })).model, 'from-flag');
  assert.equal((await load(files, {}, { ...KEY_ENV, LLMSERVE_CONFIG: '/etc/b.yaml' })).model, 'from-env');
  assert.equal((await load(files, {}, KEY_ENV)).model, 'local');
  const none = await load({}, { model: 'x' }, KEY_ENV);
  assert.equal(none.configFile, null);
  const rel = await load({ 'conf/c.yaml': 'model: rel\n' }, { config: 'conf/c.yaml' }, KEY_ENV);
  assert.equal(rel.configFile, `${CWD}/conf/c.yaml`);
});

test('a missing --config file or LLMSERVE_CONFIG file is an error naming it', async () => {
  await rejects(load({}, { config: 'nope.yaml' }, KEY_ENV), /^--config: cannot read config file \/srv\/app\/nope\.yaml: no such file$/);
  await rejects(load({}, {}, { ...KEY_ENV, LLMSERVE_CONFIG: '/x.yaml' }), /^LLMSERVE_CONFIG: cannot read config file \/x\.yaml/);
});

test('precedence flags > env > file > defaults, key by key', async () => {
  const file = {
    'llmserve.yaml': `model: /file/model
served_model_name: file-name
vllm: { port: 3001, tensor_parallel_size: 2 }
proxy: { port: 9001, host: 10.0.0.1 }
probes: { dir: /file/probe, interval: 7 }
startup_timeout: 100
stop_timeout: 11
log_format: text
`,
  };
  const env = {
    ...KEY_ENV,
    LLMSERVE_MODEL: '/env/model',
    LLMSERVE_SERVED_MODEL_NAME: 'env-name',
    LLMSERVE_PORT: '9002',
    LLMSERVE_HOST: '10.0.0.2',
    LLMSERVE_BACKEND_PORT: '3002',
    LLMSERVE_TENSOR_PARALLEL_SIZE: '4',
    LLMSERVE_PROBE_DIR: '/env/probe',
    LLMSERVE_HEALTH_INTERVAL: '0.5',
    LLMSERVE_STARTUP_TIMEOUT: '200',
    LLMSERVE_STOP_TIMEOUT: '12',
    LLMSERVE_LOG_FORMAT: 'json',
  };
  const flags = {
    model: '/flag/model',
    servedModelName: 'flag-name',
    port: '9003',
    host: '10.0.0.3',
    backendPort: '3003',
    tensorParallelSize: 'auto',
    probeDir: '/flag/probe',
    healthInterval: '1.5',
    startupTimeout: '300',
    stopTimeout: '13',
    logFormat: 'text',
  };
  const pick = (c: Awaited<ReturnType<typeof load>>) => [
    c.model, c.servedModelName, c.proxy.port, c.proxy.host, c.vllm.port, c.vllm.tensorParallelSize,
    c.probes.dir, c.probes.interval, c.timeouts.startup, c.timeouts.stop, c.log.format,
  ];
  assert.deepEqual(pick(await load(file, {}, KEY_ENV)), ['/file/model', 'file-name', 9001, '10.0.0.1', 3001, 2, '/file/probe', 7, 100, 11, 'text']);
  assert.deepEqual(pick(await load(file, {}, env)), ['/env/model', 'env-name', 9002, '10.0.0.2', 3002, 4, '/env/probe', 0.5, 200, 12, 'json']);
  assert.deepEqual(pick(await load(file, flags, env)), ['/flag/model', 'flag-name', 9003, '10.0.0.3', 3003, 'auto', '/flag/probe', 1.5, 300, 13, 'text']);
  assert.deepEqual(pick(await load({}, { model: 'org/name' }, KEY_ENV)), ['org/name', 'name', 8080, '0.0.0.0', 3000, 'auto', '/etc/probe', 10, 1800, 30, 'text']);
  // An empty environment variable counts as unset.
  assert.equal((await load(file, {}, { ...KEY_ENV, LLMSERVE_PORT: '' })).proxy.port, 9001);
});

test('restart, drain and stall_timeout: flags > environment > file > defaults; the long restart form keeps its budget', async () => {
  const files = { 'llmserve.yaml': 'model: m\nrestart: { policy: on-failure, max_failures: 3 }\ndrain: { delay: 5, timeout: 20 }\nstall_timeout: 120\n' };
  const env = { ...KEY_ENV, LLMSERVE_RESTART: 'never', LLMSERVE_DRAIN_DELAY: '7', LLMSERVE_DRAIN_TIMEOUT: '0', LLMSERVE_STALL_TIMEOUT: '90' };
  const flags = { restart: 'on-failure', drainDelay: '2.5', drainTimeout: '45', stallTimeout: '30' };
  const pick = (c: Awaited<ReturnType<typeof load>>) => [c.restart.policy, c.restart.maxFailures, c.drain.delay, c.drain.timeout, c.timeouts.stall];
  assert.deepEqual(pick(await load(files, {}, KEY_ENV)), ['on-failure', 3, 5, 20, 120]);
  assert.deepEqual(pick(await load(files, {}, env)), ['never', 3, 7, 0, 90]);
  assert.deepEqual(pick(await load(files, flags, env)), ['on-failure', 3, 2.5, 45, 30]);
  assert.deepEqual(pick(await load({}, { model: 'm', drainDelay: '10' }, KEY_ENV)), ['on-failure', 5, 10, 30, 600]);
});

test('engine_stall_timeout: off (0) by default; flags > environment > file; 0 turns it off', async () => {
  const files = { 'llmserve.yaml': 'model: m\nengine_stall_timeout: 300\n' };
  const stall = async (...a: Parameters<typeof load>) => (await load(...a)).timeouts.engineStall;
  assert.equal(await stall({}, { model: 'm' }, KEY_ENV), 0);
  assert.equal(await stall(files, {}, KEY_ENV), 300);
  assert.equal(await stall(files, {}, { ...KEY_ENV, LLMSERVE_ENGINE_STALL_TIMEOUT: '0' }), 0);
  assert.equal(await stall(files, { engineStallTimeout: '120.5' }, { ...KEY_ENV, LLMSERVE_ENGINE_STALL_TIMEOUT: '600' }), 120.5);
});

test('probes.dirExplicit from flag, env and file', async () => {
  assert.equal((await load({}, { model: 'm', probeDir: '/p' }, KEY_ENV)).probes.dirExplicit, true);
  assert.equal((await load({}, { model: 'm' }, { ...KEY_ENV, LLMSERVE_PROBE_DIR: '/p' })).probes.dirExplicit, true);
  assert.equal((await load({ 'llmserve.yaml': 'model: m\nprobes: { dir: /etc/probe }\n' }, {}, KEY_ENV)).probes.dirExplicit, true);
});

test('public port: auto = 8080, or 80 when OPENBAYES_SERVING_PRODUCTION is non-empty; flags still win', async () => {
  const files = { 'llmserve.yaml': 'model: m\nproxy: { port: auto }\n' };
  assert.equal((await load(files, {}, KEY_ENV)).proxy.port, 8080);
  assert.equal((await load(files, {}, { ...KEY_ENV, OPENBAYES_SERVING_PRODUCTION: '1' })).proxy.port, 80);
  assert.equal((await load(files, {}, { ...KEY_ENV, OPENBAYES_SERVING_PRODUCTION: '' })).proxy.port, 8080);
  assert.equal((await load({}, { model: 'm' }, { ...KEY_ENV, OPENBAYES_SERVING_PRODUCTION: 'true' })).proxy.port, 80);
  assert.equal((await load({}, { model: 'm', port: '8888' }, { ...KEY_ENV, OPENBAYES_SERVING_PRODUCTION: 'true' })).proxy.port, 8888);
  assert.equal((await load({ 'llmserve.yaml': 'model: m\nproxy: { port: 81 }\n' }, {}, { ...KEY_ENV, OPENBAYES_SERVING_PRODUCTION: '1' })).proxy.port, 81);
});

test('os.environ/NAME in any string value', async () => {
  const yaml = `model: os.environ/MODEL_DIR
proxy: { port: os.environ/PUBLIC_PORT, master_key: os.environ/KEY_VAR }
vllm: { env: { HF_TOKEN: os.environ/HF_TOKEN }, args: [--seed, os.environ/SEED] }
drain: { delay: os.environ/DRAIN_DELAY }
`;
  const env = { MODEL_DIR: '/models/x', PUBLIC_PORT: '8181', KEY_VAR: STRONG_KEY, HF_TOKEN: 'hf_abc', SEED: '7', DRAIN_DELAY: '3' };
  const c = await load({ 'llmserve.yaml': yaml }, {}, env);
  assert.equal(c.model, '/models/x');
  assert.equal(c.proxy.port, 8181);
  assert.deepEqual(c.vllm.env, { HF_TOKEN: 'hf_abc' });
  assert.deepEqual(c.vllm.args, ['--seed', '7']);
  assert.deepEqual(c.drain, { delay: 3, timeout: 30 });
  assert.deepEqual(c.secrets.envNames, ['LLMSERVE_MASTER_KEY', 'LITELLM_MASTER_KEY', 'KEY_VAR']);
  assert.ok(!c.secrets.envNames.includes('HF_TOKEN'));
});

test('numbers where a string goes (vllm.args, vllm.env, models, environment_variables) keep the text as written', async () => {
  const yaml = `model: m
vllm:
  args: [--revision, 8130e14, --seed, 12345678901234567890, --hf-overrides-version, 1.10, --max-num-seqs, 256]
  env:
    UMASK_LIKE: 0022
    BIG_ID: 123456789012345678901
    HEX: 0x1F
    QUOTED: "1.10"
  port: 0x1F91
drain: { delay: 1.50 }
`;
  const c = await load({ 'llmserve.yaml': yaml }, {}, KEY_ENV);
  assert.deepEqual(c.vllm.args, ['--revision', '8130e14', '--seed', '12345678901234567890', '--hf-overrides-version', '1.10', '--max-num-seqs', '256']);
  assert.deepEqual(c.vllm.env, { UMASK_LIKE: '0022', BIG_ID: '123456789012345678901', HEX: '0x1F', QUOTED: '1.10' });
  // Where a number goes, a number it stays.
  assert.equal(c.vllm.port, 8081);
  assert.equal(c.drain.delay, 1.5);
  // A merge key brings its values to the string place; each model's own args and env too.
  const many = `models:\n  - model: /a\n    vllm: { args: [--revision, 8130e14], env: { V: 1.10 } }\n  - model: /b\n`;
  const m = await load({ 'llmserve.yaml': many }, {}, KEY_ENV);
  assert.deepEqual(m.models[0]?.args, ['--revision', '8130e14']);
  assert.deepEqual(m.models[0]?.env, { V: '1.10' });
  const merged = await load({ 'litellm.yaml': `x: &base { MODEL_REVISION: 8130e14 }\nenvironment_variables:\n  <<: *base\n  DISCORD_CHANNEL_ID: 123456789012345678901\nmodel_list:\n  - model_name: m1\n` }, { config: 'litellm.yaml', model: '/m' }, KEY_ENV);
  assert.deepEqual(merged.environment, { MODEL_REVISION: '8130e14', DISCORD_CHANNEL_ID: '123456789012345678901' });
});

test('os.environ/NAME unset: error names the key path and the variable', async () => {
  const yaml = 'model: m\nvllm:\n  env:\n    HF_TOKEN: os.environ/MISSING_TOKEN\n';
  await rejects(load({ 'llmserve.yaml': yaml }, {}, KEY_ENV), /^\/srv\/app\/llmserve\.yaml: vllm\.env\.HF_TOKEN: environment variable MISSING_TOKEN \(from os\.environ\/MISSING_TOKEN\) is not set/);
  await rejects(load({ 'llmserve.yaml': 'model: m\nproxy: { master_key: os.environ/NOPE }\n' }, {}, {}), /proxy\.master_key: environment variable NOPE/);
});

test('weak keys are noted, never quoted', async () => {
  const c = await load({}, { model: 'm' }, { LLMSERVE_MASTER_KEY: 'Zq9xW' });
  assert.equal(c.notes.length, 1);
  assert.equal(c.notes[0], 'API key "master" (from LLMSERVE_MASTER_KEY) is shorter than 16 characters: anyone could guess it. Use a long random key: export LLMSERVE_MASTER_KEY=$(openssl rand -hex 32)');
  assertNoLeak(c, ['Zq9xW']);
  const d = await load({}, { model: 'm' }, { LLMSERVE_MASTER_KEY: 'sk-1234' });
  assert.match(d.notes.join('\n'), /placeholder/);
  assertNoLeak(d, ['sk-1234']);
});

test('Kubernetes service links for Services named llmserve and llmserve-backend are not ports: ignored, with a note', async () => {
  const links = (svc: string, ip: string) => ({
    [`${svc}_SERVICE_HOST`]: ip, [`${svc}_SERVICE_PORT`]: '80', [`${svc}_PORT`]: `tcp://${ip}:80`,
    [`${svc}_PORT_80_TCP`]: `tcp://${ip}:80`, [`${svc}_PORT_80_TCP_PROTO`]: 'tcp', [`${svc}_PORT_80_TCP_PORT`]: '80', [`${svc}_PORT_80_TCP_ADDR`]: ip,
  });
  const env = { LLMSERVE_MASTER_KEY: STRONG_KEY, ...links('LLMSERVE', '10.96.12.34'), ...links('LLMSERVE_BACKEND', '10.96.12.35') };
  const c = await load({}, { model: 'm' }, env);
  assert.equal(c.proxy.port, 8080);
  assert.equal(c.vllm.port, 3000);
  assert.deepEqual(c.notes, [
    'LLMSERVE_PORT=tcp://10.96.12.34:80 is the link Kubernetes makes for a Service named llmserve, not a port: ignored (set enableServiceLinks: false in the pod spec to keep such variables out)',
    'LLMSERVE_BACKEND_PORT=tcp://10.96.12.35:80 is the link Kubernetes makes for a Service named llmserve-backend, not a port: ignored (set enableServiceLinks: false in the pod spec to keep such variables out)',
  ]);
  // A port that is set wins over nothing; a bad value that is no service link is still an error.
  assert.equal((await load({}, { model: 'm' }, { ...env, LLMSERVE_PORT: '9000' })).proxy.port, 9000);
  await assert.rejects(load({}, { model: 'm' }, { ...env, LLMSERVE_PORT: 'http://x:80' }), /LLMSERVE_PORT: expected an integer 1-65535/);
});

test('a misspelt variable that causes an error (no key, no model) is named in that error, with "did you mean"', async () => {
  await assert.rejects(load({}, { model: 'm' }, { LLMSERVE_MASTERKEY: STRONG_KEY }), (err: Error) => {
    assert.match(err.message, /^no API key configured, .* \(environment variable LLMSERVE_MASTERKEY is not one llmserve reads \(did you mean LLMSERVE_MASTER_KEY\?\); it is ignored\)$/);
    assert.ok(!err.message.includes(STRONG_KEY));
    return true;
  });
  await assert.rejects(load({}, {}, { LLMSERVE_MASTER_KEY: STRONG_KEY, LLMSERVE_MODLE: '/m' }), /no model given: .* \(environment variable LLMSERVE_MODLE is not one llmserve reads \(did you mean LLMSERVE_MODEL\?\); it is ignored\)$/);
});

test('a set LLMSERVE_* variable that is a likely typo of an unset one is a note with "did you mean"', async () => {
  const env = { LLMSERVE_MASTER_KEY: STRONG_KEY, LLMSERVE_PROBEDIR: '/srv/probe', LLMSERVE_HEALTH_INTERVALL: '2', LLMSERVE_TEAM_A_KEY: 'x' };
  const c = await load({}, { model: 'm' }, env);
  const typos = c.notes.filter((n) => /is not one llmserve reads/.test(n));
  assert.deepEqual(typos, [
    'environment variable LLMSERVE_HEALTH_INTERVALL is not one llmserve reads (did you mean LLMSERVE_HEALTH_INTERVAL?); it is ignored',
    'environment variable LLMSERVE_PROBEDIR is not one llmserve reads (did you mean LLMSERVE_PROBE_DIR?); it is ignored',
  ]);
  // A look-alike whose known name is set too is the user's own variable (an os.environ/ reference, say): no note.
  const own = await load({}, { model: 'm' }, { LLMSERVE_MASTER_KEY: STRONG_KEY, LLMSERVE_MODEL: 'm', LLMSERVE_MODEL2: 'n' });
  assert.ok(!own.notes.some((n) => /is not one llmserve reads/.test(n)), own.notes.join('\n'));

  // A look-alike the config file reads through os.environ/ is read, not ignored: no note, whatever it looks like.
  const files = {
    'llmserve.yaml': `model: m\nproxy:\n  keys:\n    - name: next\n      key: os.environ/LLMSERVE_MASTER_KEY2\n  keys_file: keys.yaml\n`,
    'keys.yaml': `- name: team\n  key: os.environ/LLMSERVE_MODE\n`,
  };
  const referenced = await load(files, {}, { LLMSERVE_MASTER_KEY2: STRONG_KEY, LLMSERVE_MODE: `${STRONG_KEY}x` });
  assert.ok(!referenced.notes.some((n) => /is not one llmserve reads/.test(n)), referenced.notes.join('\n'));
});
