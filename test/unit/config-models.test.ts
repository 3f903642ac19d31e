// `models:`, `probes.require` and the Ray flags in the configuration (issue 9).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadConfig, type CliOptions, type Config } from '../../src/config/index.js';
import { LlmserveError } from '../../src/errors.js';
import { assignGpus, selectVisible, visibleDevicesFor } from '../../src/gpu/index.js';
import { parseRayStatus } from '../../src/supervisor/ray.js';

const KEY_ENV = { LLMSERVE_MASTER_KEY: 'sk-config-models-0123456789abcdef' };
const load = (text: string | null, cli: CliOptions = {}, env: NodeJS.ProcessEnv = KEY_ENV): Promise<Config> =>
  loadConfig(text === null ? cli : { config: '/cfg/llmserve.yaml', ...cli }, { env, cwd: '/cfg', readFile: async () => text ?? '', exists: async () => false });

async function rejects(p: Promise<unknown>, pattern: RegExp, exitCode = 2): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(err instanceof LlmserveError, String(err));
    assert.match(err.message, pattern);
    assert.equal(err.exitCode, exitCode);
    return true;
  });
}

test('models: each entry resolved; ports from vllm.port up unless set; shared args first; require', async () => {
  const c = await load(`vllm: { port: 4000, args: [--enforce-eager], env: { A: '1' } }
probes: { require: any }
models:
  - { model: /m/a, served_model_name: a, gpus: [0, 1], vllm: { args: [--seed, '1'], env: { B: '2' } } }
  - { model: /m/b, gpus: 2, port: 5000, vllm: { tensor_parallel_size: 1 } }
  - { model: /m/c }
`, { extraArgs: ['--max-model-len', '4096'] });
  assert.deepEqual(c.models.map((m) => [m.servedModelName, m.gpus, m.port, m.tensorParallelSize]), [['a', [0, 1], 4000, 'auto'], ['b', 2, 5000, 1], ['c', null, 4002, 'auto']]);
  assert.deepEqual(c.models[0]!.args, ['--enforce-eager', '--seed', '1', '--max-model-len', '4096']);
  assert.deepEqual(c.models[0]!.env, { A: '1', B: '2' });
  assert.equal(c.model, '/m/a');
  assert.equal(c.servedModelName, 'a');
  assert.equal(c.vllm.port, 4000);
  assert.equal(c.probes.require, 'any');
  assert.deepEqual(c.cluster, { role: 'single', nodes: 1, head: null });
  const single = await load(null, { model: '/m/x' });
  assert.deepEqual(single.models.map((m) => [m.model, m.servedModelName, m.gpus, m.port]), [['/m/x', 'x', null, 3000]]);
  assert.equal(single.probes.require, 'all');
});

test('models: errors are exit 2 and name the place', async () => {
  await rejects(load('model: /m/a\nmodels: [{ model: /m/b }]\n'), /model and models are both set/);
  await rejects(load('models: [{ model: /m/a }]\n', { model: '/m/x' }), /--model cannot be used with the models: list/);
  await rejects(load('models: [{ model: /m/a, gpu: [0] }]\n'), /models\[0\]\.gpu: unknown key; did you mean "gpus"\?/);
  await rejects(load('models: [{ model: /m/a, gpus: [0, 0] }]\n'), /models\[0\]\.gpus: GPU 0 is listed twice/);
  await rejects(load('models: [{ model: /m/a }, { model: /m/b, served_model_name: a }]\n'), /public name "a" is already used by models\[0\]/);
  await rejects(load('models: [{ model: /m/a, port: 4000 }, { model: /m/b, port: 4000 }]\n'), /^\/cfg\/llmserve\.yaml: models "a" and "b" would both use backend port 4000; give each entry its own `port`$/);
  await rejects(load('vllm: { port: 65535 }\nmodels: [{ model: /m/a }, { model: /m/b }]\n'), /models\[1\]: no port of its own, so it would take vllm\.port \+ 1 = 65536, past 65535/);
  await rejects(load('model: /m/a\nprobes: { require: most }\n'), /probes\.require: expected "all" or "any", got "most"/);
  await rejects(load('models: [{ model: /m/a, port: 4000, vllm: { port: 4001 } }]\n'), /models\[0\]: port 4000 and vllm\.port 4001 disagree/);
  await rejects(load('models: [{ model: /m/a, vllm: { command: /opt/vllm } }]\n'), /models\[0\]\.vllm\.command: the vLLM command is shared by every model/);
  await rejects(load('models: [{ model: /m/a, vllm: { access_log: true } }]\n'), /models\[0\]\.vllm\.access_log: vLLM's access log is on or off for every model: set vllm\.access_log at the top level/);
  assert.equal((await load('vllm: { access_log: true }\nmodels: [{ model: /m/a }]\n')).vllm.accessLog, true);
  await rejects(load('vllm: { access_log: sometimes }\nmodels: [{ model: /m/a }]\n'), /vllm\.access_log: expected true or false/);
  // The router sends an alias only to a model's served name: any other target answers 404 to every request.
  await rejects(load('models: [{ model: /m/a }, { model: /m/b }]\nproxy: { model_aliases: { gpt-4: c } }\n'), /proxy\.model_aliases\.gpt-4: expected the served name of one of the models \("a", "b"\), got "c"/);
  // An alias named like a served model would never be used: that model's own name wins.
  await rejects(load('models: [{ model: /m/a }, { model: /m/b }]\nproxy: { model_aliases: { b: a } }\n'), /proxy\.model_aliases\.b: "b" is the served name of models\[1\]/);
  const ok = await load('models: [{ model: /m/a }, { model: /m/b }]\nproxy: { model_aliases: { gpt-4: b, a: a } }\n');
  assert.deepEqual(ok.proxy.modelAliases, { 'gpt-4': 'b', a: 'a' });
});

test('models: an entry takes vllm.port like the single-model config, as an alias of port', async () => {
  const c = await load('models:\n  - { model: /m/a, vllm: { port: 4100 } }\n  - { model: /m/b, port: 4200, vllm: { port: 4200 } }\n');
  assert.deepEqual(c.models.map((m) => m.port), [4100, 4200]);
});

test('--role/--nodes/--head and their env forms: validated together (exit 2)', async () => {
  await rejects(load(null, { model: '/m/a', role: 'worker' }), /--role worker needs --head ADDRESS/);
  await rejects(load(null, { model: '/m/a', role: 'head', nodes: '1' }), /--role head needs --nodes 2 or more/);
  await rejects(load(null, { model: '/m/a', role: 'head' }), /--role head needs --nodes N/);
  await rejects(load(null, { model: '/m/a' }, { ...KEY_ENV, LLMSERVE_ROLE: 'boss' }), /LLMSERVE_ROLE: expected "head", "worker" or "single", got "boss"/);
  await rejects(load(null, { model: '/m/a', nodes: '3' }), /--nodes 3 needs --role head/);
  await rejects(load(null, { model: '/m/a', head: '10.0.0.1:6379' }), /--head needs --role worker/);
  await rejects(load(null, { model: '/m/a', nodes: 'two', role: 'head' }), /--nodes: expected a whole number/);
  const head = await load(null, { model: '/m/a' }, { ...KEY_ENV, LLMSERVE_ROLE: 'head', LLMSERVE_NODES: '4' });
  assert.deepEqual(head.cluster, { role: 'head', nodes: 4, head: null });
  // The head's Ray binds 6379 on every address: none of our listeners may take it, whatever its address.
  await rejects(load(null, { model: '/m/a', role: 'head', nodes: '2', port: '6379', host: '10.1.2.3' }), /^the public port \(--port\) is 6379, the port the Ray head binds on every address \(--role head\); choose another$/);
  await rejects(load(null, { model: '/m/a', role: 'head', nodes: '2', backendPort: '6379' }), /^the backend port \(--backend-port\) is 6379, the port the Ray head binds/);
  assert.equal((await load(null, { model: '/m/a', port: '6379' })).proxy.port, 6379, 'without Ray 6379 is free to use');
  // A worker runs only Ray: no model and no key are needed.
  const worker = await load(null, { role: 'worker', head: '10.0.0.1:6379' }, {});
  assert.deepEqual(worker.cluster, { role: 'worker', nodes: 1, head: '10.0.0.1:6379' });
  assert.deepEqual(worker.ray.command, ['ray']);
  // Nor the head's key when the worker shares the head's config file: the proxy's section is not read on a worker.
  const shared = `model: /m/a\nproxy:\n  master_key: os.environ/HEAD_ONLY_KEY\n  keys_file: /nowhere/keys.yaml\nray: { command: /opt/ray }\n`;
  const fromFile = await load(shared, { role: 'worker', head: '10.0.0.1' }, {});
  assert.deepEqual(fromFile.ray.command, ['/opt/ray']);
  assert.equal((await load(shared, {}, { LLMSERVE_ROLE: 'worker', LLMSERVE_HEAD: '10.0.0.1' })).cluster.role, 'worker');
  await rejects(load(shared, { role: 'head', nodes: '2' }, {}), /environment variable HEAD_ONLY_KEY \(from os\.environ\/HEAD_ONLY_KEY\) is not set/);
});

test('--head without a port means the head\'s Ray port 6379: ray start --address needs HOST:PORT', async () => {
  // Ray splits the address at its last ':' into host and port (ray-project/ray python/ray/_private/services.py);
  // without a port `ray start --address` fails, and the worker would retry forever thinking the head was down.
  const worker = async (head: string) => (await load(null, { role: 'worker', head }, {})).cluster.head;
  assert.equal(await worker('10.0.0.1'), '10.0.0.1:6379');
  assert.equal(await worker(' head.example.svc '), 'head.example.svc:6379');
  assert.equal(await worker('[fd00::1]'), '[fd00::1]:6379');
  assert.equal(await worker('10.0.0.1:6380'), '10.0.0.1:6380');
  assert.equal(await worker('[fd00::1]:6379'), '[fd00::1]:6379');
});

test('GPU assignment: lists, counts in order, overlaps and missing GPUs', () => {
  const gpus = [0, 1, 2, 3].map((index) => ({ index, uuid: `GPU-${index}`, name: 'H100', memoryMiB: 81559 }));
  const ok = assignGpus([{ name: 'a', gpus: 2 }, { name: 'b', gpus: [0] }, { name: 'c', gpus: 1 }], gpus);
  assert.deepEqual(ok.problems, []);
  assert.deepEqual(ok.gpus.map((g) => g?.map((x) => x.index)), [[1, 2], [0], [3]]);
  const bad = assignGpus([{ name: 'a', gpus: [0, 1] }, { name: 'b', gpus: [1, 7] }, { name: 'c', gpus: 3 }, { name: 'd', gpus: null }], gpus);
  assert.deepEqual(bad.problems.map((p) => p.message), [
    'models "a" and "b" both claim GPU 1',
    'model "b": GPU 7 is not visible (visible: 0, 1, 2, 3)',
    'model "d" has no gpus: with several models each entry needs its GPUs',
    'model "c" asks for 3 GPU(s) but only 2 of the 4 visible are left',
  ]);
});

test('GPU assignment on MIG instances: each count gets its own instance, known by UUID (they have no index)', () => {
  // nvidia-smi --query-gpu lists the parent GPU only; the MIG-<uuid> entries of CUDA_VISIBLE_DEVICES match none.
  const parent = [{ index: 0, uuid: 'GPU-5d5b6c3e-0000-0000-0000-000000000000', name: 'NVIDIA A100-SXM4-80GB', memoryMiB: null }];
  const a = 'MIG-aaaaaaaa-1111-2222-3333-000000000001';
  const b = 'MIG-bbbbbbbb-1111-2222-3333-000000000002';
  const visible = selectVisible(parent, `${a},${b}`).gpus;
  assert.deepEqual(visible.map((g) => g.uuid), [a, b]);
  // As CUDA reads it, an instance named twice leaves none visible.
  const repeated = selectVisible(parent, `${a},${b},${a}`);
  assert.deepEqual(repeated.gpus, []);
  assert.equal(repeated.warnings[0], `CUDA_VISIBLE_DEVICES=${a},${b},${a} names ${a} twice, and CUDA then makes no GPU visible at all: list each GPU once`);
  const ok = assignGpus([{ name: 'a', gpus: 1 }, { name: 'b', gpus: 1 }], visible);
  assert.deepEqual(ok.problems, []);
  assert.deepEqual(ok.gpus.map((g) => (g === null ? null : visibleDevicesFor(g))), [a, b]);
  const listed = assignGpus([{ name: 'a', gpus: [0] }], visible);
  assert.equal(listed.problems[0]?.message, `model "a": GPU 0 is not visible (visible: ${a}, ${b})`);
  assert.match(listed.problems[0]?.details.join(' ') ?? '', /MIG instances have no nvidia-smi index: give this entry a count/);
  const three = assignGpus([{ name: 'a', gpus: 1 }, { name: 'b', gpus: 2 }], visible);
  assert.deepEqual(three.problems.map((p) => p.message), ['model "b" asks for 2 GPU(s) but only 1 of the 2 visible are left']);
});

test('ray status: nodes under Active and Idle, total GPUs', () => {
  const text = `======== Autoscaler status: 2026-05-01 10:00:00.000000 ========
Node status
---------------------------------------------------------------
Active:
 1 node_0a1b2c
Idle:
 1 node_3d4e5f
Pending:
 (no pending nodes)
Recent failures:
 (no failures)

Resources
---------------------------------------------------------------
Usage:
 0.0/64.0 CPU
 2.0/16.0 GPU
 0B/400.00GiB memory
`;
  assert.deepEqual(parseRayStatus(text), { nodes: 2, gpus: 16 });
  assert.equal(parseRayStatus('ConnectionError: Could not find any running Ray instance.'), null);
});

// The forms of Ray's own formatters (python/ray/autoscaler/_private/util.py, v2/utils.py) across releases.
test('ray status: Total Usage, no idle section, placement-group notes, Healthy, node types with counts', () => {
  const head = '======== Autoscaler status: 2026-05-01 10:00:00.000000 ========\nNode status\n' + '-'.repeat(63) + '\n';
  const v1 = `${head}Active:\n 1 node_32769bb197cd\n 1 node_7cae9434ee30\nPending:\n (no pending nodes)\nRecent failures:\n (no failures)\n\nResources\n${'-'.repeat(63)}\nTotal Usage:\n 0.0/128.0 CPU\n 0.0/16.0 GPU\n 0B/1.14TiB memory\n\nTotal Demands:\n (no resource demands)\n`;
  assert.deepEqual(parseRayStatus(v1), { nodes: 2, gpus: 16 });
  const v2 = `${head}Active:\n (no active nodes)\nIdle:\n 1 node_a\n 1 node_b\nPending:\n (no pending nodes)\nRecent failures:\n (no failures)\n\nResources\n${'-'.repeat(63)}\nTotal Usage:\n 16.0/16.0 GPU (16.0 used of 16.0 reserved in placement groups)\n`;
  assert.deepEqual(parseRayStatus(v2), { nodes: 2, gpus: 16 });
  const old = `${head}Healthy:\n 1 node_a\nPending:\n 10.0.0.5: node_b, setting-up\nRecent failures:\n (no failures)\n\nResources\n${'-'.repeat(63)}\n\nUsage:\n 0.0/8.0 GPU\n`;
  assert.deepEqual(parseRayStatus(old), { nodes: 1, gpus: 8 }, 'a pending node is not counted');
  const typed = `${head}Active:\n 1 head-group\n 2 gpu-workers\nPending:\n gpu-workers, 1 launching\n\nResources\n${'-'.repeat(63)}\nUsage:\n 0.0/24.0 GPU\n`;
  assert.deepEqual(parseRayStatus(typed), { nodes: 3, gpus: 24 });
});

test('models: an entry\'s vllm.args may not set what llmserve owns (a later --host 0.0.0.0 would win)', async () => {
  // vLLM's argparse keeps the last --host: a model's args go after llmserve's `--host 127.0.0.1`, so without this
  // check that vLLM listened on every interface, without a key.
  const entry = (args: string) => `models:\n  - model: /m/a\n    gpus: [0]\n    vllm:\n      args: ${args}\n  - model: /m/b\n    gpus: [1]\n`;
  await rejects(load(entry('[--host, 0.0.0.0]')), /^\/cfg\/llmserve\.yaml: models\[0\]\.vllm\.args: vLLM flag --host is set by llmserve/);
  await rejects(load(entry('[--hos=0.0.0.0]')), /models\[0\]\.vllm\.args: vLLM flag --hos \(short for --host\)/);
  await rejects(load(entry('[--api-key, sk-entry-0123456789abcdef]')), /models\[0\]\.vllm\.args: vLLM flag --api-key is refused/);
  await rejects(load(entry('[--uds, /tmp/v.sock]')), /models\[0\]\.vllm\.args: vLLM flag --uds/);
  const ok = await load(entry('[--max-model-len, "4096"]'));
  assert.deepEqual(ok.models[0]?.args.slice(-2), ['--max-model-len', '4096']);
});
