// The vLLM command line and environment, model inspection, start-up diagnosis, the restart policy.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { loadConfig } from '../../src/config/index.js';
import { buildVllmArgv, buildVllmEnv, formatArgv, inspectModel, headCounts } from '../../src/engine/index.js';
import { diagnose, rejectedRemovedFlags, withoutFlags } from '../../src/engine/diagnose.js';
import { allowedOrigins } from '../../src/engine/cors-args.js';
import { droppedLoraWarning, loraModuleNames, loraNameClashes, withLoraNames } from '../../src/engine/lora-args.js';
import { RestartPolicy, DEFAULT_RESTART } from '../../src/supervisor/restart-policy.js';
import { tempDir } from '../helpers/fixtures.js';

const KEY = 'sk-test-0123456789abcdef';
const baseEnv = { LLMSERVE_MASTER_KEY: KEY, PATH: '/usr/bin' };

test('the vLLM command: model first, loopback, port, tensor parallel, then extra args', async () => {
  const config = await loadConfig({ model: '/models/qwen', backendPort: '3100', extraArgs: ['--max-model-len', '16384'] }, { env: baseEnv, cwd: os.tmpdir() });
  assert.deepEqual(buildVllmArgv(config, 2), [
    'vllm', 'serve', '/models/qwen', '--served-model-name', 'qwen', '--host', '127.0.0.1', '--port', '3100', '--tensor-parallel-size', '2', '--disable-uvicorn-access-log', '--max-model-len', '16384',
  ]);
  assert.ok(!buildVllmArgv(config, 2).includes('--disable-log-requests'));
  // vllm.access_log: true leaves uvicorn's access log on; a user's own flag (any spelling) is not doubled.
  assert.ok(!buildVllmArgv({ ...config, vllm: { ...config.vllm, accessLog: true } }, 2).includes('--disable-uvicorn-access-log'));
  assert.deepEqual(buildVllmArgv(config, 2, ['--disable_uvicorn_access_log']).slice(-2), ['2', '--disable_uvicorn_access_log']);
  assert.equal(formatArgv(['vllm', 'serve', 'a b', "it's"]), `vllm serve 'a b' 'it'\\''s'`);
});

test('the vLLM command: a served name that starts with "-" is one --served-model-name=NAME token, which argparse cannot take for a flag', async () => {
  const config = await loadConfig({ model: '/models/qwen', servedModelName: '-my-model' }, { env: baseEnv, cwd: os.tmpdir() });
  const argv = buildVllmArgv(config, 1);
  assert.deepEqual(argv.slice(2, 4), ['/models/qwen', '--served-model-name=-my-model']);
  assert.ok(!argv.includes('-my-model'));
  // Any other name keeps the two tokens that users' scripts read from probe's argv.
  const plain = await loadConfig({ model: '/models/qwen', servedModelName: 'my-model' }, { env: baseEnv, cwd: os.tmpdir() });
  assert.deepEqual(buildVllmArgv(plain, 1).slice(3, 5), ['--served-model-name', 'my-model']);
});

test("vLLM's environment: allocator and device-order defaults, no VLLM_PORT, no keys", async () => {
  const env = { ...baseEnv, VLLM_PORT: 'tcp://10.0.0.1:8000', LITELLM_MASTER_KEY: 'other', HF_HOME: '/cache' };
  const config = await loadConfig({ model: '/models/qwen' }, { env, cwd: os.tmpdir() });
  const vllmEnv = buildVllmEnv(config, env);
  assert.equal(vllmEnv.PYTORCH_CUDA_ALLOC_CONF, 'expandable_segments:True');
  assert.equal(vllmEnv.CUDA_DEVICE_ORDER, 'PCI_BUS_ID');
  assert.equal(vllmEnv.VLLM_PORT, undefined);
  assert.equal(vllmEnv.LLMSERVE_MASTER_KEY, undefined);
  assert.equal(vllmEnv.LITELLM_MASTER_KEY, undefined);
  assert.equal(vllmEnv.HF_HOME, '/cache');
  assert.ok(!Object.values(vllmEnv).includes(KEY));
  const kept = buildVllmEnv(config, { ...env, PYTORCH_CUDA_ALLOC_CONF: 'backend:cudaMallocAsync', CUDA_DEVICE_ORDER: 'FASTEST_FIRST' });
  assert.equal(kept.PYTORCH_CUDA_ALLOC_CONF, 'backend:cudaMallocAsync');
  assert.equal(kept.CUDA_DEVICE_ORDER, 'FASTEST_FIRST');
  // Nor a key under another name, inherited from the shell or the pod (OPENAI_API_KEY set to the master key).
  const inherited = buildVllmEnv(config, { ...env, OPENAI_API_KEY: KEY, EMPTY_ONE: '' });
  assert.equal(inherited.OPENAI_API_KEY, undefined);
  assert.equal(inherited.EMPTY_ONE, '');
});

test("vLLM's environment: no VLLM_API_KEY, which would make vLLM refuse the proxy's key-less requests", async () => {
  // vLLM turns on its own auth when VLLM_API_KEY is set (vllm/entrypoints/openai/api_server.py, build_app), and the
  // proxy never forwards keys: every /v1 request (the readiness check included) would get 401.
  const env = { ...baseEnv, VLLM_API_KEY: 'legacy-key' };
  const config = await loadConfig({ model: '/models/qwen' }, { env, cwd: os.tmpdir() });
  assert.equal(buildVllmEnv(config, env).VLLM_API_KEY, undefined);
  const viaConfig = { ...config, vllm: { ...config.vllm, env: { ...config.vllm.env, VLLM_API_KEY: 'from-config' } } };
  assert.equal(buildVllmEnv(viaConfig, baseEnv).VLLM_API_KEY, undefined);
});

test('model inspection: local dir with heads and weights, missing path, hub id', async () => {
  const dir = await tempDir('llmserve-model-');
  await writeFile(path.join(dir, 'config.json'), JSON.stringify({ num_attention_heads: 12, num_key_value_heads: 4 }));
  await writeFile(path.join(dir, 'model.safetensors'), Buffer.alloc(1000));
  const info = await inspectModel(dir);
  assert.deepEqual({ ...info, model: '' }, { model: '', isLocalPath: true, exists: true, isFile: false, hasConfigJson: true, attentionHeads: 12, keyValueHeads: 4, weightBytes: 1000 });
  const missing = await inspectModel('/nonexistent/model');
  assert.equal(missing.isLocalPath, true);
  assert.equal(missing.exists, false);
  const hub = await inspectModel('Qwen/Qwen2.5-1.5B-Instruct', os.tmpdir());
  assert.equal(hub.isLocalPath, false);
  assert.equal(headCounts('{"text_config":{"num_attention_heads":32}}').attention, 32);
  assert.equal(headCounts('not json').attention, null);
});

test('diagnosis of known start-up failures', () => {
  assert.match(diagnose(['torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB']) ?? '', /out of GPU memory/);
  assert.match(diagnose(['vllm serve: error: unrecognized arguments: --foo']) ?? '', /unknown arguments: --foo/);
  assert.match(diagnose(['ValueError: Total number of attention heads (12) must be divisible by tensor parallel size (8).']) ?? '', /12 attention heads .*a divisor of 12, such as 6 /);
  // A hub id with auto on 6 GPUs (its heads unknown to llmserve): the advice is a size, not "auto", which got it here.
  assert.match(diagnose(['ValueError: Total number of attention heads (28) must be divisible by tensor parallel size (6).']) ?? '', /set --tensor-parallel-size to a divisor of 28, such as 4 \(auto fits it by itself when it can read the model's config\.json/);
  assert.match(diagnose(['OSError: [Errno 98] Address already in use']) ?? '', /port is already in use/);
  assert.match(diagnose(['(EngineCore_DP0 pid=7) AssertionError: 10 is not divisible by 4']) ?? '', /does not split by 4: usually the model's key-value heads against the tensor-parallel size/);
  assert.equal(diagnose(['something else entirely']), null);
  // The KV-cache check, as vLLM words it (vllm/v1/core/kv_cache_utils.py); the estimate is optional there.
  const kv = "(EngineCore_DP0 pid=7) ValueError: To serve at least one request with the models's max seq len (40960), (4.38 GiB KV cache is needed, which is larger than the available KV cache memory (1.0 GiB). Based on the available memory, the estimated maximum model length is 9344. Try increasing `gpu_memory_utilization` or decreasing `max_model_len` when initializing the engine.";
  assert.match(diagnose([kv, '(APIServer pid=1) RuntimeError: Engine core initialization failed. See root cause above.']) ?? '', /out of GPU memory for the KV cache: .*max length \(40960 tokens\).*--max-model-len.*\(vLLM estimates 9344 fits\)/);
  assert.match(diagnose([kv.replace(/ Based on[^.]*\./, '')]) ?? '', /\(40960 tokens\) does not fit\. Set a smaller --max-model-len in vllm\.args, raise/);
  assert.deepEqual(rejectedRemovedFlags(['vllm serve: error: unrecognized arguments: --disable-log-requests']), ['--disable-log-requests']);
  assert.deepEqual(rejectedRemovedFlags(['vllm serve: error: unrecognized arguments: --bogus']), []);
  assert.deepEqual(withoutFlags(['a', '--disable_log_requests', '--x'], ['--disable-log-requests']), ['a', '--x']);
});

test('restart policy: backoff doubles to the cap, the Nth failure in the window gives up, health resets backoff', () => {
  const policy = new RestartPolicy({ ...DEFAULT_RESTART, maxFailures: 5, windowS: 600, backoffInitialS: 1, backoffMaxS: 4, resetAfterS: 10 });
  assert.equal(policy.recordFailure(0)?.delayMs, 1000);
  assert.equal(policy.recordFailure(1000)?.delayMs, 2000);
  assert.equal(policy.recordFailure(2000)?.delayMs, 4000);
  assert.equal(policy.recordFailure(3000)?.delayMs, 4000);
  assert.equal(policy.recordFailure(4000), null);
  const windowed = new RestartPolicy({ ...DEFAULT_RESTART, maxFailures: 2, windowS: 10, resetAfterS: 5 });
  assert.notEqual(windowed.recordFailure(0), null);
  assert.notEqual(windowed.recordFailure(20_000), null, 'the first failure left the window');
  windowed.recordHealthy(21_000);
  windowed.recordHealthy(27_000);
  assert.equal(windowed.recordFailure(40_000)?.delayMs, 1000, 'backoff reset after staying healthy');
  const never = new RestartPolicy({ ...DEFAULT_RESTART, policy: 'never' });
  assert.equal(never.recordFailure(0), null);
});

test("vLLM's CORS origins from its arguments: default every origin; any spelling argparse takes; unparsable = null", () => {
  const base = ['vllm', 'serve', '/models/m', '--port', '3000'];
  assert.deepEqual(allowedOrigins(base), ['*']);
  assert.deepEqual(allowedOrigins([...base, '--allowed-origins', '["https://a.example"]']), ['https://a.example']);
  assert.deepEqual(allowedOrigins([...base, '--allowed_origins=["https://a.example","https://b.example"]']), ['https://a.example', 'https://b.example']);
  assert.deepEqual(allowedOrigins([...base, '--allowed-o', '["https://a.example"]']), ['https://a.example'], 'the shortest unique abbreviation');
  // `--allowed` is ambiguous (vLLM refuses it); --allowed-methods is another flag.
  assert.deepEqual(allowedOrigins([...base, '--allowed-methods', '["GET"]']), ['*']);
  assert.deepEqual(allowedOrigins([...base, '--allowed-origins', '["https://a.example"]', '--allowed-origins', '["*"]']), ['*'], 'the last one wins');
  assert.equal(allowedOrigins([...base, '--allowed-origins', 'https://a.example']), null);
  assert.equal(allowedOrigins([...base, '--allowed-origins']), null);
});

test('loraModuleNames: every --lora-modules spelling and both value forms; values end at the next option', () => {
  assert.deepEqual(loraModuleNames(['serve', '/m', '--lora-modules', 'sql=/l/sql', '{"name": "chat", "path": "/l/chat"}', '--port', '3000']), ['sql', 'chat']);
  assert.deepEqual(loraModuleNames(['--lora_modules=a=/x', '--enable-lora']), ['a']);
  assert.deepEqual(loraModuleNames(['--lora-m', 'b=/y', 'c=/z', '--enable-lora']), ['b', 'c']);
  // Given twice, vLLM keeps the last one's list only (its LoRAParserAction sets the list each time): so do we.
  assert.deepEqual(loraModuleNames(['--lora_modules=a=/x', '--lora-m', 'b=/y', '--enable-lora']), ['b']);
  assert.equal(droppedLoraWarning(['--lora-modules', 'sql=/a']), null);
  assert.equal(droppedLoraWarning(['--lora-modules', 'sql=/a', 'chat=/c', '--lora-modules', 'chat=/c', 'b=/b']), '--lora-modules appears 2 times in vLLM\'s arguments, and vLLM keeps only the last one\'s adapters: "sql" will not be served; list every adapter after a single --lora-modules');
  assert.deepEqual(loraModuleNames(['--lora-dtype', 'auto', '--max-lora-rank', '64']), []);
  assert.deepEqual(loraModuleNames(['--lora-modules', '{not json', 'noequals']), []);
});

test('loraNameClashes: an adapter named like another model, an alias or another model\'s adapter is refused; its own model\'s name is not', () => {
  const models = [{ name: 'alpha', loras: ['sql', 'alpha'] }, { name: 'beta', loras: ['sql', 'alpha', 'fast'] }];
  assert.deepEqual(loraNameClashes(models, { fast: 'beta' }), [
    'model "beta": its LoRA adapter "sql" (--lora-modules) is also a LoRA adapter of model "alpha"',
    'model "beta": its LoRA adapter "alpha" (--lora-modules) is also the served name of model "alpha"',
    'model "beta": its LoRA adapter "fast" (--lora-modules) is also an alias (proxy.model_aliases)',
  ]);
  assert.deepEqual(loraNameClashes([{ name: 'alpha', loras: ['a'] }, { name: 'beta', loras: ['b'] }], {}), []);
});

test('withLoraNames: with aliases, each adapter is a known name (as itself); an alias of the same name wins; without aliases nothing changes', () => {
  assert.deepEqual(withLoraNames({ 'gpt-4o': 'm' }, ['sql', 'chat']), { sql: 'sql', chat: 'chat', 'gpt-4o': 'm' });
  assert.deepEqual(withLoraNames({ sql: 'm' }, ['sql']), { sql: 'm' });
  assert.deepEqual(withLoraNames({}, ['sql']), {});
});
