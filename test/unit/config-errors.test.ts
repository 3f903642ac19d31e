// loadConfig's errors: one line each, naming the file, the key path (or flag / env var), expected and found.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkExtraArgs, didYouMean, loadConfig, type CliOptions, type Config } from '../../src/config/index.js';
import { LlmserveError } from '../../src/errors.js';
import { STRONG_KEY, load, rejects } from '../helpers/config.js';
import { tempDirSync } from '../helpers/fixtures.js';

const F = '/srv/app/llmserve.yaml';
const esc = (s: string): string => s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
const KEY_ENV = { LLMSERVE_MASTER_KEY: STRONG_KEY };
const file = (text: string, cli: CliOptions = {}, env: NodeJS.ProcessEnv = KEY_ENV): Promise<Config> => load({ 'llmserve.yaml': text }, cli, env);

test('invalid YAML: FILE:LINE:COL: invalid YAML: message', async () => {
  await rejects(file('model: m\nproxy:\n  port: [8080\n'), new RegExp(`^${esc(F)}:4:1: invalid YAML: `));
  await rejects(file('model: m\nmodel: n\n'), new RegExp(`^${esc(F)}:2:1: invalid YAML: Map keys must be unique`));
  // A value the parser chokes on may be a key: the error never quotes it.
  for (const value of ['*Kx9mQ2vLp7Rt4Wz8Ny3', '|Kx9mQ2vLp7Rt4Wz8Ny3', '>Kx9mQ2vLp7Rt4Wz8Ny3']) {
    await rejects(file(`model: m\nproxy:\n  master_key: ${value}\n`), /invalid YAML: .*\(the text is not shown: it may be a key; quote the value\)$/, ['Kx9mQ2vLp7Rt4Wz8Ny3']);
  }
  // The YAML library's advice names its own API; the error says what to change in the file instead.
  await rejects(file('model: m\n---\nmodel: n\n'), new RegExp(`^${esc(F)}:2:1: invalid YAML: a second document \\(after \`---\`\\); a config is one document: remove the \`---\` line and merge the settings$`));
  await rejects(file('model: "m\n'), new RegExp(`^${esc(F)}:\\d+:\\d+: invalid YAML: Missing closing "quote$`));
});

test('a NUL character in any string (vLLM\'s name, its environment, a key) is refused at load, naming where, never the value', async () => {
  // Before, it passed every check (probe said start would proceed) and failed when vLLM was spawned, exit 3, with
  // "install vLLM" as the fix.
  await rejects(file('model: m\nserved_model_name: "a\\0b"\n'), new RegExp(`^${esc(F)}:2:20: a NUL character \\(\\\\0\\) in a string, which no command line, environment variable or header can carry; remove it$`));
  await rejects(file('model: m\nvllm:\n  env: { X: "1\\x00" }\n'), new RegExp(`^${esc(F)}:3:13: a NUL character`));
  await rejects(file('model: m\nproxy:\n  master_key: "Kx9mQ2vLp7Rt4Wz8\\u0000Ny3"\n'), /a NUL character/, ['Kx9mQ2vLp7Rt4Wz8']);
});

test('top level must be a mapping', async () => {
  await rejects(file('- model: m\n'), new RegExp(`^${esc(F)}: expected a mapping of settings at the top level .*got a list$`));
  await rejects(file('just a string\n'), /expected a mapping of settings at the top level .*got a string$/);
  await rejects(file(''), new RegExp(`^${esc(F)}: the config file is empty`));
});

test('unknown keys: path, file, did-you-mean', async () => {
  await rejects(file('model: m\nproxy:\n  prot: 80\n'), new RegExp(`^${esc(F)}: proxy\\.prot: unknown key; did you mean "port"\\?$`));
  await rejects(file('model: m\nserved-model-name: x\n'), /: served-model-name: unknown key; did you mean "served_model_name"\?$/);
  await rejects(file('modle: m\n'), /: modle: unknown key; did you mean "model"\?$/);
  await rejects(file('model: m\nvllm: { tensor_paralel_size: 2 }\n'), /: vllm\.tensor_paralel_size: unknown key; did you mean "tensor_parallel_size"\?$/);
  await rejects(file('model: m\nproxy: { tls: { cret: a, key: b } }\n'), /: proxy\.tls\.cret: unknown key; did you mean "cert"\?$/);
  await rejects(file('model: m\nprobes: { intervall: 3 }\n'), /: probes\.intervall: unknown key; did you mean "interval"\?$/);
  await rejects(file('model: m\nzzzzzz: 1\n'), /: zzzzzz: unknown key; known keys here: model, served_model_name, vllm/);
  await rejects(file('modellist:\n  - { model_name: m }\n'), /: modellist: unknown key; did you mean "model_list" \(a LiteLLM config's list of models\)\?$/);
  await rejects(file('model_lists: []\n'), /: model_lists: unknown key; did you mean "model_list"/);
  await rejects(file('model: m\ngeneral_settings: { master_key: x }\n'), /general_settings: unknown key; this is a LiteLLM section, but a LiteLLM config needs a top-level model_list$/);
  await rejects(file('model: m\nproxy: { master_limits: { rpn: 3 } }\n'), /: proxy\.master_limits\.rpn: unknown key; did you mean "rpm"\? \(known keys here: /);
  await rejects(file('model: m\nproxy: { master_limits: { rpm_limit: 3 } }\n'), /: proxy\.master_limits\.rpm_limit: unknown key; did you mean "rpm"\?/);
  // unknown keys are reported before os.environ/ is read
  await rejects(file('model: os.environ/UNSET\nproxy: { prot: 1 }\n'), /proxy\.prot: unknown key/);
});

test('a vLLM flag written as a key under vllm: (as from a vllm.sh): the error says it goes in vllm.args, or after --', async () => {
  await rejects(file('model: m\nvllm:\n  gpu_memory_utilization: 0.9\n'), new RegExp(`^${esc(F)}: vllm\\.gpu_memory_utilization: unknown key; known keys here: .*; vLLM's own flags go in vllm\\.args \\(- --gpu-memory-utilization=0\\.9\\), or after "--" on the command line \\(llmserve start \\.\\.\\. -- --gpu-memory-utilization=0\\.9\\)$`));
  await rejects(file('model: m\nvllm: { enforce_eager: true }\n'), /vllm\.enforce_eager: unknown key; .*vLLM's own flags go in vllm\.args \(- --enforce-eager\)/);
  await rejects(file('models:\n  - model: a\n    vllm: { max_model_len: 16384 }\n'), /models\[0\]\.vllm\.max_model_len: unknown key; .*vLLM's own flags go in models\[0\]\.vllm\.args \(- --max-model-len=16384\)/);
  // One llmserve sets itself: which of llmserve's settings to use instead.
  await rejects(file('model: m\nvllm: { host: 0.0.0.0 }\n'), /vllm\.host: unknown key; .*; as vLLM's flag --host: llmserve binds vLLM to 127\.0\.0\.1; the public address is --host \/ proxy\.host$/);
  // A value that looks like a key is not printed.
  await rejects(file('model: m\nvllm: { some_token: sk-abcdef0123456789abcdef }\n'), /vllm\.some_token: unknown key; .*\(- --some-token=VALUE\)/, ['sk-abcdef0123456789abcdef']);
  // A near miss of llmserve's own key keeps its did-you-mean alone.
  await rejects(file('model: m\nvllm: { tensor_paralel_size: 2 }\n'), /did you mean "tensor_parallel_size"\?$/);
});

test('models (once a reserved key) is read now: beside model it is an error', async () => {
  await rejects(file('model: m\nmodels: [{ model: a }]\n'), /model and models are both set/);
  await rejects(file('models: [{ name: a }]\n'), /models\[0\]\.name: unknown key/);
});

test('wrong types in the file: FILE: key.path: expected X, got Y', async () => {
  const cases: Array<[string, string]> = [
    ['proxy: { port: x }', 'proxy.port: expected an integer 1-65535 or "auto", got "x"'],
    ['proxy: { port: 70000 }', 'proxy.port: expected an integer 1-65535 or "auto", got 70000'],
    ['proxy: { port: 80.5 }', 'proxy.port: expected an integer 1-65535 or "auto", got 80.5'],
    ['vllm: { port: auto }', 'vllm.port: expected an integer 1-65535, got "auto"'],
    ['vllm: { tensor_parallel_size: 0 }', 'vllm.tensor_parallel_size: expected a positive integer or "auto", got 0'],
    ['vllm: { args: --foo }', 'vllm.args: expected a list of strings (vLLM flags), got "--foo"'],
    ['vllm: { args: [--a, { b: 1 }] }', 'vllm.args[1]: expected a string or a number, got a mapping'],
    ['vllm: { env: [A] }', 'vllm.env: expected a mapping, got a list'],
    ['vllm: { env: { A: [1] } }', 'vllm.env.A: expected a string or a number, got a list'],
    ['vllm: { command: "" }', 'vllm.command: expected a command: a string like "vllm serve"'],
    ['proxy: { auth: "no" }', 'proxy.auth: expected true or false, got "no"'],
    ['proxy: { log_health: 1 }', 'proxy.log_health: expected true or false, got 1'],
    ['proxy: { max_body_bytes: lots }', 'proxy.max_body_bytes: expected a positive number of bytes or a size like "64MiB" or "10MB", got "lots"'],
    ['proxy: { first_byte_timeout: 0 }', 'proxy.first_byte_timeout: expected a positive number of seconds, got 0'],
    ['proxy: { headers_timeout: -1 }', 'proxy.headers_timeout: expected a positive number of seconds, got -1'],
    ['proxy: { body_timeout: soon }', 'proxy.body_timeout: expected a positive number of seconds, got "soon"'],
    ['proxy: { keep_alive_timeout: 0 }', 'proxy.keep_alive_timeout: expected a positive number of seconds, got 0'],
    ['proxy: { routes: [v1/models] }', 'proxy.routes[0]: expected a path starting with / (a prefix ends in /*), got "v1/models"'],
    ['proxy: { routes: ["/v1/*/x"] }', 'proxy.routes[0]: expected a path starting with / (a prefix ends in /*), got "/v1/*/x"'],
    ['proxy: { model_aliases: { a: 1 } }', 'proxy.model_aliases.a: expected a string, got 1'],
    ['proxy: { tls: { cert: a.pem } }', 'proxy.tls: set both cert and key (or neither), got only cert'],
    ['proxy: { host: "" }', 'proxy.host: expected a bind address like 0.0.0.0, :: or a host name, got ""'],
    ['proxy: { host: "fe80::1%eth0" }', 'proxy.host: expected a bind address like 0.0.0.0, :: or a host name, got "fe80::1%eth0"; an IPv6 address with a zone (%interface) cannot be used: listen on :: (every interface) or on an address of global scope'],
    ['proxy: { host: "[::]" }', 'proxy.host: expected a bind address like 0.0.0.0, :: or a host name, got "[::]"; write the address without brackets: ::'],
    ['proxy: { host: "http://0.0.0.0" }', 'proxy.host: expected a bind address like 0.0.0.0, :: or a host name, got "http://0.0.0.0"'],
    ['proxy: 5', 'proxy: expected a mapping, got a number'],
    ['probes: { interval: 0 }', 'probes.interval: expected a positive number of seconds, got 0'],
    ['startup_timeout: forever', 'startup_timeout: expected a positive number of seconds, got "forever"'],
    ['stop_timeout: false', 'stop_timeout: expected a positive number of seconds, got false'],
    ['log_format: xml', 'log_format: expected "text" or "json", got "xml"'],
    ['served_model_name: [a]', 'served_model_name: expected a non-empty string, got a list'],
  ];
  for (const [yaml, message] of cases) {
    await rejects(file(`model: m\n${yaml}\n`), new RegExp(`^${esc(F)}: ${esc(message)}`));
  }
  await rejects(file('model: 5\n'), new RegExp(`^${esc(F)}: model: expected a model path or hub id, got 5$`));
});

test('wrong values in flags and env name the flag or the variable', async () => {
  const m = { model: 'm' };
  await rejects(load({}, { ...m, port: 'abc' }, KEY_ENV), /^--port: expected an integer 1-65535, got "abc"$/);
  await rejects(load({}, { ...m, port: '0' }, KEY_ENV), /^--port: expected an integer 1-65535, got "0"$/);
  await rejects(load({}, { ...m, backendPort: '65536' }, KEY_ENV), /^--backend-port: expected an integer 1-65535, got "65536"$/);
  await rejects(load({}, { ...m, tensorParallelSize: 'two' }, KEY_ENV), /^--tensor-parallel-size: expected a positive integer or "auto", got "two"$/);
  // Past 2^53 the number read is not the one written (it would reach vLLM as 100000000000000000000): refused.
  await rejects(load({}, { ...m, tensorParallelSize: '99999999999999999999' }, KEY_ENV), /^--tensor-parallel-size: expected a positive integer or "auto", got "99999999999999999999"$/);
  await rejects(load({ 'llmserve.yaml': 'model: /m\nvllm: { port: 1e300 }\n' }, {}, KEY_ENV), /vllm\.port: expected an integer 1-65535/);
  await rejects(load({}, { ...m, healthInterval: '-1' }, KEY_ENV), /^--health-interval: expected a positive number of seconds, got "-1"$/);
  await rejects(load({}, { ...m, startupTimeout: '1h' }, KEY_ENV), /^--startup-timeout: expected a positive number of seconds, got "1h"$/);
  await rejects(load({}, { ...m, stopTimeout: '0' }, KEY_ENV), /^--stop-timeout: /);
  await rejects(load({}, { ...m, logFormat: 'yaml' }, KEY_ENV), /^--log-format: expected "text" or "json", got "yaml"$/);
  await rejects(load({}, { ...m, drainDelay: '-1' }, KEY_ENV), /^--drain-delay: expected a number of seconds, 0 or more, got "-1"$/);
  await rejects(load({}, { ...m, stallTimeout: '0' }, KEY_ENV), /^--stall-timeout: expected a positive number of seconds, got "0"$/);
  await rejects(load({}, { ...m, engineStallTimeout: '5m' }, KEY_ENV), /^--engine-stall-timeout: expected a number of seconds, 0 or more, got "5m"$/);
  await rejects(load({ 'llmserve.yaml': 'model: m\nengine_stall_timeout: -1\n' }, {}, KEY_ENV), /llmserve\.yaml: engine_stall_timeout: expected a number of seconds, 0 or more, got -1/);
  await rejects(load({}, m, { ...KEY_ENV, LLMSERVE_DRAIN_TIMEOUT: '30s' }), /^LLMSERVE_DRAIN_TIMEOUT: expected a number of seconds, 0 or more, got "30s"$/);
  await rejects(load({}, m, { ...KEY_ENV, LLMSERVE_RESTART: 'always' }), /^LLMSERVE_RESTART: expected "on-failure" or "never", got "always"$/);
  await rejects(load({}, { ...m, host: '' }, KEY_ENV), /^--host: expected a bind address/);
  // A host no URL can carry (start checks readiness over HTTP once vLLM is ready: it crashed there, after the load).
  await rejects(load({}, { ...m, host: 'a b' }, KEY_ENV), /^--host: expected a bind address like 0\.0\.0\.0, :: or a host name, got "a b"$/);
  await rejects(load({}, m, { ...KEY_ENV, LLMSERVE_HOST: 'fe80::1%eth0' }), /^LLMSERVE_HOST: expected a bind address .*with a zone/);
  for (const host of ['::', '0.0.0.0', '::1', '10.0.0.5', 'localhost', 'llmserve.ns.svc.cluster.local', 'my_host']) {
    assert.equal((await load({}, { ...m, host }, KEY_ENV)).proxy.host, host);
  }
  await rejects(load({}, m, { ...KEY_ENV, LLMSERVE_PORT: 'eighty' }), /^LLMSERVE_PORT: expected an integer 1-65535, got "eighty"$/);
  await rejects(load({}, m, { ...KEY_ENV, LLMSERVE_HEALTH_INTERVAL: 'x' }), /^LLMSERVE_HEALTH_INTERVAL: expected a positive number of seconds/);
  await rejects(load({}, m, { ...KEY_ENV, LLMSERVE_TENSOR_PARALLEL_SIZE: '1.5' }), /^LLMSERVE_TENSOR_PARALLEL_SIZE: expected a positive integer or "auto"/);
  await rejects(load({}, m, { ...KEY_ENV, LLMSERVE_LOG_FORMAT: 'JSON' }), /^LLMSERVE_LOG_FORMAT: /);
  // a flag value wins before the env's bad value is looked at
  assert.equal((await load({}, { ...m, port: '81' }, { ...KEY_ENV, LLMSERVE_PORT: 'bad' })).proxy.port, 81);
});

test('the model is required', async () => {
  await rejects(load({}, {}, KEY_ENV), /^no model given: pass --model PATH .*LLMSERVE_MODEL.*model:/);
  await rejects(file('proxy: { port: 81 }\n'), new RegExp(`^no model given: .*set model: in ${esc(F)}$`));
});

test('extra vLLM args that collide with llmserve are usage errors naming llmserve\'s option', async () => {
  const cases: Array<[string[], RegExp]> = [
    [['--host', '0.0.0.0'], /vLLM flag --host is set by llmserve: llmserve binds vLLM to 127\.0\.0\.1; the public address is --host \/ proxy\.host$/],
    [['--port=4000'], /vLLM flag --port is set by llmserve: .*--backend-port \/ vllm\.port$/],
    [['--served-model-name', 'x'], /vLLM flag --served-model-name is set by llmserve: .*served_model_name$/],
    [['--tensor-parallel-size', '2'], /vLLM flag --tensor-parallel-size is set by llmserve: .*--tensor-parallel-size \/ vllm\.tensor_parallel_size$/],
    [['--tensor_parallel_size=2'], /vLLM flag --tensor-parallel-size is set by llmserve/],
    [['-tp', '2'], /vLLM flag -tp is set by llmserve: .*vllm\.tensor_parallel_size$/],
    [['--api-key', 'sk-secret-value'], /vLLM flag --api-key is refused: keys go in proxy\.master_key \/ LLMSERVE_MASTER_KEY \(never on a command line\)/],
    [['--api_key=sk-secret-value'], /vLLM flag --api-key/],
    [['--hf-token', 'hf_secret'], /vLLM flag --hf-token is refused: .*HF_TOKEN environment variable \(vllm\.env or the container environment\)$/],
    [['--hf-token=hf_secret'], /vLLM flag --hf-token is refused/],
    [['--model', '/x'], /vLLM flag --model is set by llmserve/],
    // vLLM would serve HTTPS, which llmserve's readiness check and proxy (plain HTTP) never reach.
    [['--ssl-keyfile', '/k.pem'], /vLLM flag --ssl-keyfile is refused: llmserve talks plain HTTP to vLLM on 127\.0\.0\.1; serve TLS from the proxy with proxy\.tls\.cert \/ proxy\.tls\.key$/],
    [['--ssl_certfile=/c.pem'], /vLLM flag --ssl-certfile is refused: .*proxy\.tls/],
  ];
  for (const [args, pattern] of cases) {
    const err = await rejects(load({}, { model: 'm', extraArgs: ['--seed', '1', ...args] }, KEY_ENV), new RegExp(`^vLLM arguments after --: ${pattern.source}`), ['sk-secret-value', 'hf_secret']);
    assert.equal(err.code, 'USAGE');
  }
  await rejects(file('model: m\nvllm: { args: [--max-model-len, 4096, --port, 3001] }\n'), new RegExp(`^${esc(F)}: vllm\\.args: vLLM flag --port is set by llmserve`));
  // In an entry of models: its own key is the fix (--backend-port / vllm.port set the first model's port only).
  const two = 'models:\n  - { model: /a, served_model_name: a }\n  - { model: /b, served_model_name: b, vllm: { args: [--port, "9999"] } }\n';
  await rejects(file(two), new RegExp(`^${esc(F)}: models\\[1\\]\\.vllm\\.args: vLLM flag --port is set by llmserve: llmserve sets it for each model; use models\\[1\\]\\.port$`));
  await rejects(file(two.replace('[--port, "9999"]', '[--served-model-name, x]')), /: vLLM flag --served-model-name is set by llmserve: llmserve sets it for each model; use models\[1\]\.served_model_name$/);
  await rejects(file(two.replace('[--port, "9999"]', '[--api-key, x]')), /: vLLM flag --api-key is refused: keys go in proxy\.master_key/);
  assert.doesNotThrow(() => checkExtraArgs(['--max-model-len', '4096', '--enable-auto-tool-choice', '--hostname-like-value'], 'x'));
  // A flag and its value written as one item: vLLM would refuse it after a start that passed every check; a secret
  // flag written so is still refused as a secret, and no value is ever shown.
  assert.throws(() => checkExtraArgs(['--max-model-len 16384'], 'vllm.args'), /^LlmserveError: vllm\.args: "--max-model-len \.\.\." is one argument with a space in it, .* give the flag and its value as two items \(--max-model-len and its value\), or as --max-model-len=VALUE$/);
  assert.throws(() => checkExtraArgs(['--hf-token hf_SECRETVALUE'], 'vllm.args'), (err: Error) => /vLLM flag --hf-token is refused/.test(err.message) && !err.message.includes('SECRETVALUE'));
  assert.throws(() => checkExtraArgs(['--some-token s3cr3t value'], 'x'), (err: Error) => !err.message.includes('s3cr3t'));
  assert.doesNotThrow(() => checkExtraArgs(['--chat-template', '{{ a b }}', '--override-generation-config={"a": 1}', '-1 2'], 'x'));
  assert.throws(() => checkExtraArgs(['--HOST=1.2.3.4'], 'origin'), /^LlmserveError: origin: vLLM flag --host/);
});

test("abbreviations of the flags llmserve sets are refused too: vLLM's argparse would take them for the full flag", async () => {
  // argparse's allow_abbrev is on in vLLM (vllm/entrypoints/cli/main.py): `--hos 0.0.0.0` is `--host 0.0.0.0`.
  const cases: Array<[string[], RegExp]> = [
    [['--hos', '0.0.0.0'], /vLLM flag --hos \(short for --host\) is set by llmserve: llmserve binds vLLM to 127\.0\.0\.1/],
    [['--served-model=x'], /vLLM flag --served-model \(short for --served-model-name\) is set by llmserve/],
    [['--tensor_parallel', '4'], /vLLM flag --tensor-parallel \(short for --tensor-parallel-size\) is set by llmserve/],
    [['--hf-tok', 'hf_secret'], /vLLM flag --hf-tok \(short for --hf-token\) is refused/],
    [['-t', '4'], /vLLM flag -t \(short for -tp\) is set by llmserve/],
  ];
  for (const [args, pattern] of cases) {
    const err = await rejects(load({}, { model: 'm', extraArgs: args }, KEY_ENV), new RegExp(`^vLLM arguments after --: ${pattern.source}`), ['hf_secret']);
    assert.equal(err.code, 'USAGE');
  }
  // Longer names that merely start like an owned flag are other flags (--model-impl), not abbreviations.
  assert.doesNotThrow(() => checkExtraArgs(['--model-impl', 'transformers', '--port-x', '--hostname-like-value'], 'x'));
});

test('did-you-mean is quiet when nothing is close', () => {
  assert.equal(didYouMean('prot', ['port', 'host']), 'port');
  assert.equal(didYouMean('kye', ['name', 'key', 'key_sha256']), 'key');
  assert.equal(didYouMean('completely_else', ['port', 'host']), undefined);
});

test('./llmserve.yaml in a real working directory is found and read', async () => {
  const { mkdtemp, writeFile, rm } = await import('node:fs/promises');
  const { tmpdir } = await import('node:os');
  const { join } = await import('node:path');
  const dir = await mkdtemp(join(tmpdir(), 'llmserve-config-'));
  try {
    await writeFile(join(dir, 'llmserve.yaml'), 'model: /models/x\nproxy:\n  port: nope\n');
    await rejects(loadConfig({}, { cwd: dir, env: KEY_ENV }), new RegExp(`^${esc(join(dir, 'llmserve.yaml'))}: proxy\\.port: expected an integer 1-65535 or "auto", got "nope"$`));
    await writeFile(join(dir, 'llmserve.yaml'), 'model: /models/x\n');
    const c = await loadConfig({}, { cwd: dir, env: KEY_ENV });
    assert.equal(c.configFile, join(dir, 'llmserve.yaml'));
    assert.equal(c.servedModelName, 'x');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('one port for two listeners is a configuration error (exit 2) that names both and where each was set', async () => {
  const m = { model: '/m/a' };
  await rejects(load({}, { ...m, port: '8080', backendPort: '8080' }, KEY_ENV), /^the public port \(--port\) and the backend port \(--backend-port\) are both 8080: each needs a port of its own/);
  await rejects(load({}, { ...m, port: '3000' }, KEY_ENV), /^the public port \(--port\) and the backend port \(the default\) are both 3000:/);
  await rejects(load({}, m, { ...KEY_ENV, LLMSERVE_BACKEND_PORT: '8080' }), /^the public port \(the default\) and the backend port \(LLMSERVE_BACKEND_PORT\) are both 8080:/);
  await rejects(file('model: m\nproxy: { port: 9000 }\nvllm: { port: 9000 }\n'), new RegExp(`^the public port \\(${esc(F)}: proxy\\.port\\) and the backend port \\(${esc(F)}: vllm\\.port\\) are both 9000:`));
  // A LiteLLM file's backend port is its api_base's (TGI's 8080 meets the default public port): that key is named.
  const litellm = 'model_list:\n  - { model_name: m, litellm_params: { model: openai/m, api_base: "http://localhost:8080/v1" } }\n';
  await rejects(load({ 'litellm.yaml': litellm }, { config: 'litellm.yaml', model: '/m' }, KEY_ENV), /^the public port \(the default\) and the backend port \(\/srv\/app\/litellm\.yaml: model_list\[0\]\.litellm_params\.api_base\) are both 8080:/);
  await rejects(file('model: m\nproxy: { metrics_port: 3000 }\n'), new RegExp(`^the backend port \\(the default\\) and the metrics port \\(${esc(F)}: proxy\\.metrics_port\\) are both 3000:`));
  // Several models: a backend port set by the list, or counted up from the backend port, meets the public port.
  await rejects(file('models: [{ model: /m/a }, { model: /m/b }]\n', { port: '3001' }), /^the public port \(--port\) and the backend port of model "b" \(the default \+ 1\) are both 3001:/);
  await rejects(file('models: [{ model: /m/a }, { model: /m/b, port: 8080 }]\n'), new RegExp(`^the public port \\(the default\\) and the backend port of model "b" \\(${esc(F)}: models\\[1\\]\\.port\\) are both 8080:`));
  // Distinct ports load; a worker binds none of them, so its flags may repeat the head's.
  assert.equal((await load({}, { ...m, port: '8081', backendPort: '8080' }, KEY_ENV)).proxy.port, 8081);
  assert.equal((await load({}, { ...m, port: '3000', role: 'worker', head: '10.0.0.1:6379' }, KEY_ENV)).cluster.role, 'worker');
  // A public port on a specific external address does not meet vLLM's loopback one; a wildcard or loopback does.
  assert.equal((await load({}, { ...m, host: '10.0.0.5', port: '3000' }, KEY_ENV)).proxy.port, 3000);
  await rejects(load({}, { ...m, host: '127.0.0.1', port: '3000' }, KEY_ENV), /^the public port \(--port\) and the backend port \(the default\) are both 3000:/);
  await rejects(load({}, { ...m, host: '::', port: '3000' }, KEY_ENV), /are both 3000:/);
});

test('seconds above what a Node timer can wait are refused, not fired at once (TimeoutOverflowWarning)', async () => {
  const tooLong = 'a number of seconds up to 2147483 (about 24 days)';
  for (const yaml of ['stop_timeout: 1e12', 'probes: { interval: 99999999999 }', 'proxy: { first_byte_timeout: 1e9 }', 'drain: { timeout: 3000000 }', 'restart: { backoff_max: 1e10 }', 'usage: { flush_interval: 1e10 }']) {
    const key = yaml.replace(/^(\w+)(: \{ (\w+))?.*$/, (_m, a: string, _b, c?: string) => (c ? `${a}.${c}` : a));
    await rejects(file(`model: m\n${yaml}\n`), new RegExp(`^${esc(F)}: ${esc(key)}: expected ${esc(tooLong)}, got .*; longer waits cannot be timed`));
  }
  const m = { model: 'm' };
  await rejects(load({}, { ...m, healthInterval: '99999999999' }, KEY_ENV), new RegExp(`^--health-interval: expected ${esc(tooLong)}, got "99999999999"`));
  await rejects(load({}, m, { ...KEY_ENV, LLMSERVE_DRAIN_DELAY: '1e10' }), /^LLMSERVE_DRAIN_DELAY: expected a number of seconds, 0 or more/);
  await rejects(load({}, m, { ...KEY_ENV, LLMSERVE_DRAIN_DELAY: '99999999' }), new RegExp(`^LLMSERVE_DRAIN_DELAY: expected ${esc(tooLong)}`));
  // the bound itself is accepted
  assert.equal((await load({}, { ...m, stopTimeout: '2147483' }, KEY_ENV)).timeouts.stop, 2147483);
});

test('bytes that are not UTF-8 (a Latin-1 file) are refused at FILE:LINE:COL, not read as another value', async () => {
  const { writeFileSync } = await import('node:fs');
  const { join } = await import('node:path');
  const dir = tempDirSync('llmserve-utf8-');
  const config = join(dir, 'llmserve.yaml');
  const keys = join(dir, 'keys.yaml');
  // `café` in Latin-1: 0xE9 alone is no UTF-8; Node's 'utf8' decoding would turn it into U+FFFD without an error.
  writeFileSync(config, Buffer.concat([Buffer.from('model: /models/caf'), Buffer.from([0xe9]), Buffer.from('\n')]));
  await rejects(loadConfig({ config }, { env: KEY_ENV, cwd: dir }), new RegExp(`^${esc(config)}:1:19: not valid UTF-8 .*save the file as UTF-8`));
  const secret = 'sk-caf-0123456789abcdef0123';
  writeFileSync(config, `model: /models/m\nproxy:\n  keys_file: ${keys}\n`);
  writeFileSync(keys, Buffer.concat([Buffer.from(`- name: a\n  key: ${secret}`), Buffer.from([0xe9]), Buffer.from('\n')]));
  await rejects(loadConfig({ config }, { env: KEY_ENV, cwd: dir }), new RegExp(`^${esc(keys)}:2:\\d+: not valid UTF-8`), [secret]);
  // A BOM and CRLF line endings are fine.
  writeFileSync(config, '\uFEFFmodel: /models/m\r\nstop_timeout: 5\r\n');
  assert.equal((await loadConfig({ config }, { env: KEY_ENV, cwd: dir })).timeouts.stop, 5);
});

test('--head that is no HOST:PORT is refused at once (a worker would retry it until the 30-minute start-up timeout)', async () => {
  const worker = (head: string, env: NodeJS.ProcessEnv = {}) => load({}, { model: 'm', role: 'worker', ...(head ? { head } : {}) }, { ...KEY_ENV, ...env });
  const what = esc('expected the Ray head as HOST[:PORT] (port 6379 if left out), e.g. 10.0.0.1:6379');
  await rejects(worker('http://10.0.0.1:6379'), new RegExp(`^--head: ${what}.*got "http://10\\.0\\.0\\.1:6379"; give the address without a scheme`));
  await rejects(worker('10.0.0.1:99999'), new RegExp(`^--head: ${what}.*got "10\\.0\\.0\\.1:99999"$`));
  await rejects(worker('head host:6379'), new RegExp(`^--head: ${what}`));
  await rejects(worker('', { LLMSERVE_HEAD: '$(LWS_LEADER_ADDRESS):6379' }), new RegExp(`^LLMSERVE_HEAD: ${what}.*; a variable was not expanded`));
  for (const ok of ['10.0.0.1:6379', 'lws-0.lws.default.svc.cluster.local:6379', '[fd00::1]:6379']) {
    assert.equal((await worker(ok)).cluster.head, ok);
  }
  // Without a port: the head's Ray port.
  assert.equal((await worker('head-0')).cluster.head, 'head-0:6379');
});

test('an API key pasted as a mapping key is not printed by the unknown-key error', async () => {
  const secret = 'sk-pasted-0123456789abcdef';
  await rejects(file(`model: m\nproxy:\n  ${secret}: team-a\n`), new RegExp(`^${esc(F)}: proxy\\.\\[redacted\\]: unknown key`), [secret]);
  await rejects(file(`model: m\nproxy:\n  keys:\n    - name: a\n      ${secret}: x\n`), /proxy\.keys\[0\]\.\[redacted\]: unknown key/, [secret]);
  await rejects(file(`models:\n  - model: /m/a\n    ${secret}: x\n`), /models\[0\]\.\[redacted\]: unknown key/, [secret]);
  // Ordinary keys are still named, with their "did you mean".
  await rejects(file('model: m\nvllm:\n  env: { HF_HUB_ENABLE_HF_TRANSFER: [1] }\n'), /vllm\.env\.HF_HUB_ENABLE_HF_TRANSFER: expected a string or a number, got a list$/);
  await rejects(file('model: m\nproxy:\n  prot: 1\n'), /proxy\.prot: unknown key; did you mean "port"\?$/);
});

test('an API key pasted after os.environ/ is not printed by the bad-variable-name error', async () => {
  const secret = 'sk-pasted-0123456789abcdef';
  await rejects(file(`model: m\nproxy:\n  master_key: os.environ/${secret}\n`), /proxy\.master_key: expected os\.environ\/NAME with a variable name, got "os\.environ\/\[redacted\]"$/, [secret]);
  await rejects(file(`model: m\nproxy:\n  keys:\n    - name: a\n      key: os.environ/${secret}\n`), /proxy\.keys\[0\]\.key: expected os\.environ\/NAME/, [secret]);
  const litellm = `model_list:\n  - model_name: m\n    litellm_params: { model: hosted_vllm/m }\ngeneral_settings:\n  master_key: os.environ/${secret}\n`;
  await rejects(load({ 'litellm.yaml': litellm }, { config: 'litellm.yaml', model: '/m' }), /general_settings\.master_key: expected os\.environ\/NAME/, [secret]);
  // A name that is only mistyped is still shown, so that it can be fixed.
  await rejects(file('model: m\nproxy:\n  master_key: os.environ/MY-KEY\n'), /got "os\.environ\/MY-KEY"$/);
  // A key that is also a valid variable name (hex that starts with a letter, letters and digits only), unset as a
  // variable: before, the not-set error printed it three times.
  for (const named of ['a0328f1c9d7e4b2a8c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f1a0b9c8d7e6f5a4b', 'Kx9mQ2vLp7Rt4Wz8Ny3aB5cD']) {
    await rejects(file(`model: m\nproxy:\n  master_key: os.environ/${named}\n`, {}, {}), /proxy\.master_key: expected os\.environ\/NAME with the name of a variable that is set, got os\.environ\/\[redacted\], which looks like a key/, [named]);
  }
  // A variable name that is only unset is still named, with the fix.
  await rejects(file('model: m\nproxy:\n  master_key: os.environ/MY_MASTER_KEY\n', {}, {}), /environment variable MY_MASTER_KEY \(from os\.environ\/MY_MASTER_KEY\) is not set; export MY_MASTER_KEY=\.\.\./);
});

test('vLLM\'s own --config FILE that sets a flag llmserve refuses (api-key, ssl-*, uds) is refused at load, naming the file and key', async () => {
  const secret = 'sk-vllm-own-0123456789abcdef';
  // vLLM puts the file's keys on its own command line: api-key there turned its auth on, and the start then waited out
  // its whole timeout on 401s (now also caught at the first 401: faults-startup.test.ts).
  const config = 'model: /m\nvllm:\n  args: [--config, vllm.yaml]\n';
  await rejects(load({ 'llmserve.yaml': config, 'vllm.yaml': `max-model-len: 4096\napi-key: ${secret}\n` }, {}, KEY_ENV), /^\/srv\/app\/llmserve\.yaml: vllm\.args: --config vllm\.yaml: api-key is refused \(vLLM puts it on its own command line\): keys go in proxy\.master_key/, [secret]);
  await rejects(load({ 'vllm.yaml': 'ssl_keyfile: /k.pem\n' }, { model: '/m', extraArgs: ['--config=vllm.yaml'] }, KEY_ENV), /^vLLM arguments after --: --config vllm\.yaml: ssl_keyfile is refused/);
  await rejects(load({ 'vllm.yaml': 'uds: /tmp/v.sock\n' }, { model: '/m', extraArgs: ['--config', '/srv/app/vllm.yaml'] }, KEY_ENV), /: uds is refused/);
  // What llmserve sets itself (port, host, served-model-name) is no problem there: its own flags come later and win.
  const fine = await load({ 'vllm.yaml': 'port: 8000\nhost: 0.0.0.0\nmax-model-len: 4096\n' }, { model: '/m', extraArgs: ['--config', 'vllm.yaml'] }, KEY_ENV);
  assert.deepEqual(fine.vllm.args.slice(-2), ['--config', 'vllm.yaml']);
  // A file that cannot be read is vLLM's to report.
  assert.equal((await load({}, { model: '/m', extraArgs: ['--config', 'missing.yaml'] }, KEY_ENV)).model, '/m');
});

test('vllm.command may not carry a secret flag: it would be on the command line, in ps and in the logs', async () => {
  const secret = 'sk-command-0123456789abcdef';
  await rejects(file(`model: m\nvllm:\n  command: vllm serve --api-key ${secret}\n`), /vllm\.command: vLLM flag --api-key is refused: keys go in proxy\.master_key/, [secret]);
  await rejects(file('model: m\nvllm:\n  command: [vllm, serve, --hf-token=hf_0123456789abcdef]\n'), /vllm\.command: vLLM flag --hf-token is refused/, ['hf_0123456789abcdef']);
  // A wrapper's own flags are its business: only exact names are refused (no abbreviations: `-t` is not `-tp` here).
  const ok = await file('model: m\nvllm:\n  command: [numactl, -t, --host-like, vllm, serve]\n');
  assert.deepEqual(ok.vllm.command, ['numactl', '-t', '--host-like', 'vllm', 'serve']);
});
