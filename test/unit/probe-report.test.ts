// probe's report as data and as text: built from a real plan (fake nvidia-smi output) and hand-made machine facts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { truncateSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { loadConfig, type CliOptions } from '../../src/config/index.js';
import type { RunCommand } from '../../src/gpu/index.js';
import { makePlan, type Plan } from '../../src/plan.js';
import { buildProbeReport, factProblems, formatBytes } from '../../src/probe/report.js';
import { probeLines } from '../../src/probe/text.js';
import { parseVllmVersion, probeVllmVersion, vllmVersionFact } from '../../src/probe/vllm-version.js';
import { runCommand } from '../../src/util/run.js';
import { redactConfig, redactText } from '../../src/probe/redact.js';
import type { ProbeFacts } from '../../src/probe/types.js';
import { makeModelDir, tempDir } from '../helpers/fixtures.js';

const KEY = 'sk-probe-unit-KEY-0a1b2c3d4e5f6789';
const gpuLine = (i: number) => `${i}, GPU-0000000${i}-1111-2222-3333-444444444444, NVIDIA H100 80GB HBM3, 81559`;
const smi = (count: number): RunCommand => async () => ({ exitCode: 0, stdout: Array.from({ length: count }, (_, i) => gpuLine(i)).join('\n') + '\n', stderr: '', notFound: false });
const failingSmi: RunCommand = async () => ({ exitCode: 9, stdout: "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver.", stderr: '', notFound: false });

async function plan(cli: CliOptions, env: NodeJS.ProcessEnv, run: RunCommand = smi(2)): Promise<Plan> {
  const config = await loadConfig(cli, { env });
  return makePlan(config, { run, env });
}

function facts(over: Partial<ProbeFacts> = {}): ProbeFacts {
  return {
    vllm: { command: 'vllm', found: true, version: '0.22.0', raw: '0.22.0', exitCode: 0 },
    proxyPort: { host: '0.0.0.0', port: 8080, free: true, error: null },
    backendPort: { host: '127.0.0.1', port: 3000, free: true, error: null },
    probeDir: { dir: '/etc/probe', explicit: false, exists: true, writable: true, error: null },
    tlsUnreadable: [],
    running: null,
    ...over,
  };
}

test('the JSON report has the nested shape of the issue: GPUs, size, argv, ports, probe dir, no problems', async () => {
  const model = await makeModelDir({ heads: 12 });
  const p = await plan({ model }, { LLMSERVE_MASTER_KEY: KEY });
  const r = buildProbeReport(p, facts());
  assert.equal(r.ok, true);
  assert.deepEqual(r.gpus.map((g) => [g.index, g.uuid, g.name, g.memoryMiB]), [
    [0, 'GPU-00000000-1111-2222-3333-444444444444', 'NVIDIA H100 80GB HBM3', 81559],
    [1, 'GPU-00000001-1111-2222-3333-444444444444', 'NVIDIA H100 80GB HBM3', 81559],
  ]);
  assert.equal(r.tensorParallelSize, 2);
  assert.deepEqual(r.tensorParallel, { size: 2, reason: '2 visible GPUs (12 attention heads and 2 key-value heads split evenly)', requested: 'auto' });
  // The whole command start runs, --shutdown-timeout included (stop_timeout 30 s by default: 25 s for vLLM's drain).
  assert.deepEqual(r.vllm.argv, ['vllm', 'serve', model, '--served-model-name', path.basename(model), '--host', '127.0.0.1', '--port', '3000', '--tensor-parallel-size', '2', '--disable-uvicorn-access-log', '--shutdown-timeout=25']);
  assert.equal(r.vllm.commandLine, `vllm serve ${model} --served-model-name ${path.basename(model)} --host 127.0.0.1 --port 3000 --tensor-parallel-size 2 --disable-uvicorn-access-log --shutdown-timeout=25`);
  assert.deepEqual(r.models.map((m) => m.vllm.argv), [r.vllm.argv]);
  assert.equal(r.backend.port, 3000);
  assert.equal(r.proxy.port, 8080);
  assert.equal(r.probes.dir, '/etc/probe');
  assert.deepEqual(r.problems, []);
  assert.equal(r.model.weightBytes, 64);
  assert.equal(r.model.gpuMemoryBytes, 2 * 81559 * 1024 * 1024);
  assert.equal(r.vllm.version, '0.22.0');
  // Round-trips through JSON unchanged (no Buffers, no undefined).
  assert.deepEqual(JSON.parse(JSON.stringify(r)), r);
});

test('vllm.argv is what start runs: --shutdown-timeout follows the stop timeout, and a user\'s own is kept as given', async () => {
  const model = await makeModelDir({ heads: 12 });
  const env = { LLMSERVE_MASTER_KEY: KEY };
  const shutdownFlags = (r: ReturnType<typeof buildProbeReport>) => r.vllm.argv.filter((a) => /^--shutdown[-_]timeout/.test(a));
  assert.deepEqual(shutdownFlags(buildProbeReport(await plan({ model, stopTimeout: '60' }, env), facts())), ['--shutdown-timeout=55']);
  // Too short a stop timeout to give vLLM a drain: start adds nothing, and neither does probe.
  assert.deepEqual(shutdownFlags(buildProbeReport(await plan({ model, stopTimeout: '1' }, env), facts())), []);
  const own = buildProbeReport(await plan({ model, extraArgs: ['--shutdown-timeout', '7'] }, env), facts());
  assert.deepEqual(own.vllm.argv.slice(-2), ['--shutdown-timeout', '7']);
  assert.match(own.vllm.commandLine, / --shutdown-timeout 7$/);
});

test('CUDA_VISIBLE_DEVICES: gpus lists only the selected ones (nvidia-smi indices), allGpus marks them', async () => {
  const model = await makeModelDir({ heads: 12 });
  const r = buildProbeReport(await plan({ model }, { LLMSERVE_MASTER_KEY: KEY, CUDA_VISIBLE_DEVICES: '1' }), facts());
  assert.deepEqual(r.gpus.map((g) => g.index), [1]);
  assert.deepEqual(r.allGpus.map((g) => [g.index, g.selected]), [[0, false], [1, true]]);
  assert.equal(r.cudaVisibleDevices, '1');
  assert.equal(r.tensorParallelSize, 1);
  const text = probeLines(r).join('\n');
  assert.match(text, /CUDA_VISIBLE_DEVICES="1"/);
  assert.match(text, /^\s+\*\s+1\s+NVIDIA H100/m);
});

test('a failing nvidia-smi is a problem with its fix, and the size is not chosen', async () => {
  const model = await makeModelDir();
  const r = buildProbeReport(await plan({ model }, { LLMSERVE_MASTER_KEY: KEY }, failingSmi), facts());
  assert.equal(r.ok, false);
  assert.equal(r.tensorParallelSize, null);
  assert.equal(r.problems.length, 1);
  assert.match(r.problems[0] ?? '', /^nvidia-smi failed \(exit 9\): .*couldn't communicate.* Fix: /);
  assert.equal(r.problemDetails[0]?.code, 'GPU_QUERY');
  const text = probeLines(r);
  assert.match(text[0] ?? '', /1 problem would stop start/);
  assert.ok(text.some((l) => /^\s+Fix: check the NVIDIA driver/.test(l)));
});

test('a failing nvidia-smi with an explicit size: a warning for one model, a problem for several or for an entry\'s gpus (none to give)', async () => {
  const model = await makeModelDir();
  const one = buildProbeReport(await plan({ model, tensorParallelSize: '1' }, { LLMSERVE_MASTER_KEY: KEY }, failingSmi), facts());
  assert.equal(one.ok, true);
  assert.ok(one.warnings.some((w) => /^nvidia-smi failed \(exit 9\)/.test(w)), one.warnings.join('\n'));
  assert.ok(probeLines(one).some((l) => /GPUs\s+unknown \(nvidia-smi failed: see warnings\)/.test(l)));
  // Two models with their own GPUs: without nvidia-smi neither would get CUDA_VISIBLE_DEVICES, both loading on GPU 0.
  const dir = await tempDir();
  const file = path.join(dir, 'llmserve.yaml');
  writeFileSync(file, `vllm:\n  tensor_parallel_size: 1\nmodels:\n  - model: ${model}\n    served_model_name: a\n    gpus: [0]\n  - model: ${model}\n    served_model_name: b\n    gpus: [1]\n`);
  const two = buildProbeReport(await plan({ config: file }, { LLMSERVE_MASTER_KEY: KEY }, failingSmi), facts());
  assert.equal(two.ok, false);
  assert.match(two.problems[0] ?? '', /^nvidia-smi failed \(exit 9\).*; with several models llmserve needs the GPUs to give each model its own/);
  assert.ok(probeLines(two).some((l) => /GPUs\s+unknown \(nvidia-smi failed: see problems\)/.test(l)));
  // One entry with its own gpus: the same (before, a warning, and vLLM loaded on GPU 0, which may be another job's).
  writeFileSync(file, `vllm:\n  tensor_parallel_size: 1\nmodels:\n  - model: ${model}\n    served_model_name: a\n    gpus: [1]\n`);
  const entry = buildProbeReport(await plan({ config: file }, { LLMSERVE_MASTER_KEY: KEY }, failingSmi), facts());
  assert.equal(entry.ok, false);
  assert.match(entry.problems[0] ?? '', /^nvidia-smi failed \(exit 9\).*; llmserve needs the GPUs to give the model the ones its gpus names/);
});

test('what start checks besides the plan: its log file (a problem, a worker\'s too), the usage store and the open-file limit (warnings)', async () => {
  const model = await makeModelDir();
  const p = await plan({ model }, { LLMSERVE_MASTER_KEY: KEY });
  const message = 'LLMSERVE_LOG_FILE: cannot open /no/dir/llmserve.log: the directory /no/dir does not exist (ENOENT); create it, or give another file with --log-file FILE (LLMSERVE_LOG_FILE)';
  const usageDir = { dir: '/srv/usage', explicit: true, exists: false, writable: false, error: 'ENOTDIR' };
  const r = buildProbeReport(p, facts({ logFileError: message, usageDir, openFilesWarning: 'the open-file limit is 1024 (ulimit -n): ...' }));
  assert.equal(r.ok, false);
  assert.deepEqual(r.problemDetails.map((d) => d.code), ['LOG_FILE']);
  assert.equal(r.problems[0], message);
  assert.ok(r.warnings.includes('the open-file limit is 1024 (ulimit -n): ...'), r.warnings.join('\n'));
  assert.ok(r.warnings.some((w) => /^usage store directory \/srv\/usage cannot be used \(ENOTDIR\): start would count usage in memory only/.test(w)), r.warnings.join('\n'));
  assert.equal(buildProbeReport(p, facts({ usageDir: { ...usageDir, writable: true, error: null } })).warnings.length, 0);
  // A worker opens its log file too (start does before anything else).
  const worker = await plan({ role: 'worker', head: '10.0.0.1:6379' } as CliOptions, {});
  assert.deepEqual(buildProbeReport(worker, facts({ logFileError: message })).problemDetails.map((d) => d.code), ['LOG_FILE']);
});

test('the facts add problems: busy and privileged ports, unwritable explicit probe dir, no vLLM, TLS files', async () => {
  const model = await makeModelDir();
  const p = await plan({ model }, { LLMSERVE_MASTER_KEY: KEY });
  const problems = factProblems(p, facts({
    proxyPort: { host: '0.0.0.0', port: 8080, free: false, error: 'EACCES' },
    backendPort: { host: '127.0.0.1', port: 3000, free: false, error: 'EADDRINUSE' },
    probeDir: { dir: '/x/sub', explicit: true, exists: false, writable: false, error: 'ENOTDIR' },
    vllm: { command: 'vllm', found: false, version: null, raw: '', exitCode: null },
    tlsUnreadable: [['proxy.tls.cert', '/no/cert.pem', 'ENOENT']],
  }));
  assert.deepEqual(problems.map((x) => x.code), ['TLS', 'PORT_IN_USE', 'PORT_IN_USE', 'PROBE_DIR', 'VLLM_NOT_FOUND']);
  assert.match(problems[1]?.message ?? '', /public port 0\.0\.0\.0:8080 cannot be bound by this user \(EACCES\)/);
  assert.match(problems[2]?.message ?? '', /backend port 127\.0\.0\.1:3000 is already in use/);
  assert.match(problems[2]?.details[0] ?? '', /^Fix: .*--backend-port/);
  assert.match(problems[3]?.message ?? '', /probe directory \/x\/sub is not writable: ENOTDIR/);
  for (const x of problems) assert.match(x.details[0] ?? '', /^Fix: /);

  // A bind address that is not this machine's, or a host name that does not resolve: a host problem, not a busy port.
  for (const [error, message] of [['EADDRNOTAVAIL', /public address "10\.9\.9\.9" is not an address of this machine/], ['ENOTFOUND', /public host "10\.9\.9\.9" does not resolve/]] as const) {
    const [hostProblem] = factProblems(p, facts({ proxyPort: { host: '10.9.9.9', port: 8080, free: false, error } }));
    assert.match(hostProblem?.message ?? '', message);
    assert.match(hostProblem?.details[0] ?? '', /^Fix: use --host 0\.0\.0\.0/);
  }

  // proxy.metrics_port is bound by start too: busy, it is a problem that names its setting.
  const [metrics] = factProblems(p, facts({ metricsPort: { host: '127.0.0.1', port: 9100, free: false, error: 'EADDRINUSE' } }));
  assert.match(metrics?.message ?? '', /^metrics port 127\.0\.0\.1:9100 is already in use$/);
  assert.match(metrics?.details[0] ?? '', /proxy\.metrics_port/);
  // An IPv6 listen address is written as start writes it, in brackets: `:::8080` reads as nothing.
  const [v6] = factProblems(p, facts({ proxyPort: { host: '::', port: 8080, free: false, error: 'EADDRINUSE' } }));
  assert.equal(v6?.message, 'public port [::]:8080 is already in use');
  assert.match(v6?.details[0] ?? '', /^Fix: stop what holds it, or choose another with --port N/);

  // Readable TLS files that start would refuse (not PEM, another certificate's key): a problem, as start stops there.
  const [tls] = factProblems(p, facts({ tlsInvalid: 'TLS key file /k.pem is not the private key of the certificate in /c.pem' }));
  assert.equal(tls?.code, 'TLS');
  assert.match(tls?.details[0] ?? '', /^Fix: point proxy\.tls\.cert and proxy\.tls\.key at a PEM certificate and its own private key/);

  // The same port twice never reaches the facts (where both tests would bind at once and one would see the other
  // as "in use"): the configuration refuses it, exit 2.
  await assert.rejects(plan({ model, port: '9000', backendPort: '9000' }, { LLMSERVE_MASTER_KEY: KEY }), (err: Error & { exitCode?: number }) => err.exitCode === 2 && /both 9000/.test(err.message));
});

test('an unwritable default probe dir is only a warning (start falls back to a temporary one)', async () => {
  const model = await makeModelDir();
  const r = buildProbeReport(await plan({ model }, { LLMSERVE_MASTER_KEY: KEY }), facts({ probeDir: { dir: '/etc/probe', explicit: false, exists: false, writable: false, error: 'EACCES' } }));
  assert.equal(r.ok, true);
  assert.ok(r.warnings.some((w) => /default probe directory \/etc\/probe is not writable \(EACCES\): start would use a temporary directory/.test(w)));
  assert.match(probeLines(r).join('\n'), /Probe dir\s+\/etc\/probe NOT WRITABLE \(EACCES\) \(default\)/);
});

test('a certificate that expired (or ends within days) is a warning, as start warns and still serves it', async () => {
  const model = await makeModelDir();
  const warning = 'TLS certificate /tls/cert.pem expired on Mar  1 00:00:00 2026 GMT: clients that verify it refuse every connection; renew it, then send llmserve SIGHUP to serve the new one';
  const r = buildProbeReport(await plan({ model }, { LLMSERVE_MASTER_KEY: KEY }), facts({ tlsWarning: warning }));
  assert.equal(r.ok, true);
  assert.ok(r.warnings.includes(warning), r.warnings.join('\n'));
  assert.ok(probeLines(r).join('\n').includes(warning));
});

test('a probe directory a running llmserve owns is a problem, as start refuses it; a stale runtime file only a warning', async () => {
  const model = await makeModelDir({ heads: 12 });
  const p = await plan({ model }, { LLMSERVE_MASTER_KEY: KEY });
  const owner = { pid: 77, startedAt: '2026-11-27T12:00:00.000Z', proxy: { host: '0.0.0.0', port: 8080, tls: false }, backend: { host: '127.0.0.1', port: 3000 }, models: ['m'] };
  const owned = buildProbeReport(p, facts({ running: { pid: 77, alive: true, owner } }));
  assert.equal(owned.ok, false);
  assert.deepEqual(owned.problems, [
    'the probe directory /etc/probe belongs to a running llmserve (pid 77, started 2026-11-27T12:00:00.000Z, proxy on port 8080); this start would overwrite its probe files Fix: stop that one first, or give this one a probe directory of its own with --probe-dir DIR (and ports of its own).',
  ]);
  assert.equal(owned.problemDetails[0]!.code, 'PROBE_DIR');
  // The pid lives but is not that llmserve (reused): start goes ahead, so probe only says the ports may show as busy.
  const stale = buildProbeReport(p, facts({ running: { pid: 77, alive: true, owner: null } }));
  assert.deepEqual(stale.problems, []);
  assert.match(stale.warnings.join('\n'), /llmserve start \(pid 77\) is running with probe directory/);
  // A worker's start refuses it too (commands/worker.ts), and so does its probe.
  const worker = buildProbeReport(await plan({ role: 'worker', head: '10.0.0.1:6379' }, {}, failingSmi), facts({ running: { pid: 77, alive: true, owner } }));
  assert.deepEqual(worker.problemDetails.map((d) => d.code), ['PROBE_DIR']);
});

test('a missing model directory is a problem; weights near the GPU memory are a warning', async () => {
  const dir = await tempDir();
  const missing = buildProbeReport(await plan({ model: path.join(dir, 'nope') }, { LLMSERVE_MASTER_KEY: KEY }), facts());
  assert.equal(missing.ok, false);
  assert.equal(missing.problemDetails[0]?.code, 'MODEL_PATH');
  assert.equal(missing.model.exists, false);

  const model = await makeModelDir();
  writeFileSync(path.join(model, 'model.safetensors'), Buffer.alloc(1024 * 1024));
  const tiny: RunCommand = async () => ({ exitCode: 0, stdout: '0, GPU-00000000-1111-2222-3333-444444444444, Tiny GPU, 1\n', stderr: '', notFound: false });
  const r = buildProbeReport(await plan({ model }, { LLMSERVE_MASTER_KEY: KEY }, tiny), facts());
  assert.equal(r.model.weightShare, 1);
  assert.ok(r.warnings.some((w) => /take 100% of the GPUs' memory/.test(w)), r.warnings.join('\n'));
});

test('several models: each one\'s weights against its own GPUs, each warned about by name', async () => {
  // Sparse files: the size counts, no disk is used.
  const [alpha, beta] = [await makeModelDir({ heads: 12 }), await makeModelDir({ heads: 12 })];
  truncateSync(path.join(alpha, 'model.safetensors'), 150 * 1024 ** 3);
  truncateSync(path.join(beta, 'model.safetensors'), 100 * 1024 ** 3);
  const config = path.join(await tempDir(), 'multi.yaml');
  writeFileSync(config, `models:\n  - { model: ${alpha}, served_model_name: alpha, gpus: [0, 1] }\n  - { model: ${beta}, served_model_name: beta, gpus: [2] }\n`);
  const r = buildProbeReport(await plan({ config }, { LLMSERVE_MASTER_KEY: KEY }, smi(4)), facts());
  const gpu = 81559 * 1024 * 1024;
  // The top-level fields keep describing the first model, now against its own two GPUs (not all three in use).
  assert.deepEqual([r.model.weightBytes, r.model.gpuMemoryBytes, r.model.weightShare], [150 * 1024 ** 3, 2 * gpu, 0.942]);
  assert.deepEqual(r.models.map((m) => [m.name, m.weightBytes, m.gpuMemoryBytes, m.weightShare]), [['alpha', 150 * 1024 ** 3, 2 * gpu, 0.942], ['beta', 100 * 1024 ** 3, gpu, 1.256]]);
  assert.ok(r.warnings.includes(`model "alpha": the weights (150.0 GiB) take 94% of the GPUs' memory (159.3 GiB): vLLM will probably run out of memory; use more GPUs or a smaller (quantized) model`), r.warnings.join('\n'));
  assert.ok(r.warnings.some((w) => w.startsWith(`model "beta": the weights (100.0 GiB) take 126% of the GPUs' memory (79.6 GiB)`)), r.warnings.join('\n'));
  const text = probeLines(r).join('\n');
  assert.match(text, /^Weights\s+~150\.0 GiB against 159\.3 GiB of GPU memory \(94\.2%\)$/m);
  assert.match(text, /^ {2}beta +2 +1 +127\.0\.0\.1:3001 free +~100\.0 GiB of 79\.6 GiB \(125\.6%\) +GPU-00000002-/m);
});

test('several models on MIG instances: the Models table names each by its UUID, and --json gives the UUIDs beside the indices', async () => {
  const [alpha, beta] = [await makeModelDir(), await makeModelDir()];
  const config = path.join(await tempDir(), 'mig.yaml');
  writeFileSync(config, `models:\n  - { model: ${alpha}, served_model_name: alpha, gpus: 1 }\n  - { model: ${beta}, served_model_name: beta, gpus: 1 }\n`);
  const [a, b] = ['MIG-aaaaaaaa-1111-2222-3333-000000000001', 'MIG-bbbbbbbb-1111-2222-3333-000000000002'];
  const r = buildProbeReport(await plan({ config }, { LLMSERVE_MASTER_KEY: KEY, CUDA_VISIBLE_DEVICES: `${a},${b}` }, smi(1)), facts());
  assert.deepEqual(r.models.map((m) => [m.name, m.gpus, m.gpuUuids]), [['alpha', [-1], [a]], ['beta', [-1], [b]]]);
  const text = probeLines(r).join('\n');
  assert.match(text, new RegExp(`^ {2}alpha +${a} +1 `, 'm'), text);
  assert.match(text, new RegExp(`^ {2}beta +${b} +1 `, 'm'), text);
});

test('a file given as the model: config.json gets "a file, not a directory" and its folder; a .gguf file is let through', async () => {
  const model = await makeModelDir();
  const env = { LLMSERVE_MASTER_KEY: KEY };
  const configJson = buildProbeReport(await plan({ model: path.join(model, 'config.json') }, env), facts());
  assert.equal(configJson.ok, false);
  assert.equal(configJson.problemDetails[0]?.code, 'MODEL_PATH');
  assert.equal(configJson.problems[0], `model ${path.join(model, 'config.json')} is a file, not a directory Fix: give the directory that holds it: --model ${model} (or model: ${model}).`);
  assert.equal(configJson.model.isFile, true);
  assert.match(probeLines(configJson).join('\n'), /local file, NOT A DIRECTORY/);

  const gguf = path.join(await tempDir(), 'tinyllama.Q4_K_M.gguf');
  writeFileSync(gguf, Buffer.alloc(2048));
  const one = buildProbeReport(await plan({ model: gguf }, env), facts());
  assert.deepEqual(one.problems, []);
  assert.equal(one.model.weightBytes, 2048);
  assert.ok(one.warnings.some((w) => /is a single GGUF file: .*--tokenizer HUB_ID/.test(w)), one.warnings.join('\n'));
  assert.match(probeLines(one).join('\n'), /local GGUF file/);
  // With a tokenizer given, nothing is left to say.
  const withTokenizer = buildProbeReport(await plan({ model: gguf, extraArgs: ['--tokenizer', 'TinyLlama/TinyLlama-1.1B-Chat-v1.0'] }, env), facts());
  assert.ok(!withTokenizer.warnings.some((w) => /GGUF/.test(w)), withTokenizer.warnings.join('\n'));
});

test('keys never appear: not in JSON, not in the text, not in argv; key names do, as [redacted]', async () => {
  const model = await makeModelDir();
  const dir = await tempDir();
  const config = path.join(dir, 'llmserve.yaml');
  writeFileSync(config, `model: ${model}\nproxy:\n  keys:\n    - name: alice\n      key: ${KEY}-alice\n    - name: bob\n      key_sha256: ${'ab'.repeat(32)}\nvllm:\n  env:\n    HF_TOKEN: hf_secret_token_value\n`);
  const p = await plan({ config }, { LLMSERVE_MASTER_KEY: KEY });
  const r = buildProbeReport(p, facts());
  const all = JSON.stringify(r) + '\n' + probeLines(r).join('\n');
  assert.ok(!all.includes(KEY), 'the master key leaked');
  assert.ok(!all.includes('hf_secret_token_value'), 'a secret-looking variable leaked');
  assert.ok(!all.includes('ab'.repeat(32)), 'a digest leaked');
  assert.deepEqual(r.config.proxy.keys, [
    { name: 'master', kind: 'key', value: '[redacted]' },
    { name: 'alice', kind: 'key', value: '[redacted]' },
    { name: 'bob', kind: 'key_sha256', value: '[redacted]' },
  ]);
  assert.equal(r.config.vllm.env.HF_TOKEN, '[redacted]');
  // (A key's value in vllm.env is refused at load: config-keys.test.ts.)
  assert.match(probeLines(r).join('\n'), /keys\s+master \(key\) \[redacted\], alice \(key\) \[redacted\], bob \(key_sha256\) \[redacted\]/);
  assert.equal(redactText(`a ${KEY} b`, [KEY]), 'a [redacted] b');
  assert.equal(redactConfig(p.config).proxy.keys.length, 3);
});

test('credentials a LiteLLM config keeps in environment_variables (a database URL\'s password, webhooks, DSNs) never appear', async () => {
  const model = await makeModelDir();
  const dir = await tempDir();
  const config = path.join(dir, 'litellm.config.yaml');
  writeFileSync(config, [
    'model_list:',
    '  - { model_name: m1, litellm_params: { model: hosted_vllm/m1, api_base: "http://localhost:3000/v1" } }',
    'environment_variables:',
    '  DATABASE_URL: postgresql://llmproxy:S3cretDbPass@db.internal:5432/litellm',
    '  REDIS_URL: redis://:R3disPass@redis:6379/0',
    '  SLACK_WEBHOOK_URL: https://hooks.slack.com/services/T0000/B0000/XXsecretXX',
    '  SENTRY_DSN: https://abc123publickey@o0.ingest.sentry.io/1',
    '  HF_HOME: /cache/hf',
    '',
  ].join('\n'));
  const r = buildProbeReport(await plan({ config, model }, { LLMSERVE_MASTER_KEY: KEY }), facts());
  const all = JSON.stringify(r) + '\n' + probeLines(r).join('\n');
  // Before, each was printed in full, in the text and twice in --json.
  for (const secret of ['S3cretDbPass', 'R3disPass', 'XXsecretXX', 'abc123publickey']) assert.ok(!all.includes(secret), `${secret} leaked`);
  assert.equal(r.config.environment.DATABASE_URL, 'postgresql://llmproxy:[redacted]@db.internal:5432/litellm');
  assert.equal(r.config.environment.REDIS_URL, 'redis://:[redacted]@redis:6379/0');
  assert.equal(r.config.environment.HF_HOME, '/cache/hf', 'what is no secret stays readable');
});

test("the vLLM env row lists what vLLM gets: VLLM_PORT, VLLM_API_KEY and key variables are named as removed, never as vLLM's", async () => {
  const model = await makeModelDir();
  const dir = await tempDir();
  const config = path.join(dir, 'litellm.yaml');
  writeFileSync(config, 'environment_variables:\n  CUDA_VISIBLE_DEVICES: "0,1"\n  VLLM_PORT: "tcp://10.0.0.1:8000"\n  VLLM_API_KEY: abc\n  PROXY_KEY: os.environ/PK\nmodel_list:\n  - { model_name: m1, litellm_params: { model: openai/custom, api_base: "http://localhost:3000/v1" } }\ngeneral_settings:\n  master_key: os.environ/PROXY_KEY\n');
  const p = await plan({ config, model }, { PK: KEY });
  const r = buildProbeReport(p, facts());
  assert.deepEqual(r.vllm.envRemoved, ['VLLM_PORT', 'VLLM_API_KEY', 'PROXY_KEY']);
  assert.deepEqual(Object.keys(p.env).filter((k) => ['CUDA_VISIBLE_DEVICES', 'VLLM_PORT', 'VLLM_API_KEY', 'PROXY_KEY'].includes(k)), ['CUDA_VISIBLE_DEVICES']);
  const row = probeLines(r).find((l) => l.startsWith('  vLLM env')) ?? '';
  assert.match(row, /^ {2}vLLM env\s+CUDA_VISIBLE_DEVICES=0,1; removed by llmserve, vLLM never gets them: VLLM_PORT, VLLM_API_KEY, PROXY_KEY$/);
});

test('several models: each one\'s own vLLM env in JSON and text; CUDA_VISIBLE_DEVICES in vllm.env yields to gpus, with a warning', async () => {
  const [alpha, beta] = [await makeModelDir({ heads: 12 }), await makeModelDir({ heads: 12 })];
  const config = path.join(await tempDir(), 'multi.yaml');
  writeFileSync(config, [
    'vllm:',
    '  env: { SHARED: s, VLLM_PORT: "tcp://10.0.0.1:8000" }',
    'models:',
    `  - { model: ${alpha}, served_model_name: alpha, gpus: [0], vllm: { env: { ALPHA_ONLY: a, HF_TOKEN: hf_secret_token_value } } }`,
    `  - { model: ${beta}, served_model_name: beta, gpus: [1], vllm: { env: { CUDA_VISIBLE_DEVICES: "2,3", VLLM_API_KEY: abc } } }`,
    '',
  ].join('\n'));
  const p = await plan({ config }, { LLMSERVE_MASTER_KEY: KEY }, smi(4));
  const r = buildProbeReport(p, facts());
  const uuid1 = 'GPU-00000001-1111-2222-3333-444444444444';
  assert.deepEqual(r.models.map((m) => [m.name, m.vllm.env, m.vllm.envRemoved]), [
    ['alpha', { SHARED: 's', ALPHA_ONLY: 'a', HF_TOKEN: '[redacted]' }, ['VLLM_PORT']],
    ['beta', { SHARED: 's', CUDA_VISIBLE_DEVICES: uuid1 }, ['VLLM_PORT', 'VLLM_API_KEY']],
  ]);
  // What start gives that vLLM: the assigned GPU, not the 2,3 of vllm.env.
  assert.equal(p.models[1]?.env.CUDA_VISIBLE_DEVICES, uuid1);
  assert.ok(r.warnings.some((w) => w.startsWith(`model "beta": vllm.env sets CUDA_VISIBLE_DEVICES=2,3 (${config}), but gpus wins: its vLLM gets CUDA_VISIBLE_DEVICES=${uuid1} (GPU 1)`)), r.warnings.join('\n'));
  assert.ok(!r.warnings.some((w) => w.startsWith('model "alpha": vllm.env')), r.warnings.join('\n'));
  const lines = probeLines(r);
  const text = lines.join('\n');
  assert.ok(!text.includes('hf_secret_token_value'), 'a secret-looking variable leaked');
  assert.match(text, /^ {2}alpha +SHARED=s ALPHA_ONLY=a HF_TOKEN=\[redacted\]; removed by llmserve, vLLM never gets them: VLLM_PORT$/m);
  assert.match(text, new RegExp(`^ {2}beta +SHARED=s CUDA_VISIBLE_DEVICES=${uuid1}; removed by llmserve, vLLM never gets them: VLLM_PORT, VLLM_API_KEY$`, 'm'));
  // No single "vLLM env" row that would show the first model's as everyone's.
  assert.ok(!lines.some((l) => l.startsWith('  vLLM env')), text);
});

test('the human report: sections in order, size with its reason, ports, the exact vLLM command line', async () => {
  const model = await makeModelDir({ heads: 12 });
  const lines = probeLines(buildProbeReport(await plan({ model, port: '18080' }, { LLMSERVE_MASTER_KEY: KEY }), facts({ proxyPort: { host: '0.0.0.0', port: 18080, free: false, error: 'EADDRINUSE' } })));
  const text = lines.join('\n');
  assert.equal(lines[0], 'llmserve probe: 1 problem would stop start');
  assert.match(text, /^GPUs\s+2 used of 2 found \(nvidia-smi; CUDA_VISIBLE_DEVICES unset: all are used\)$/m);
  assert.match(text, /^Tensor parallel 2 \(2 visible GPUs \(12 attention heads and 2 key-value heads split evenly\)\)$/m);
  assert.match(text, /^vLLM\s+found, version 0\.22\.0 \(vllm --version\)$/m);
  assert.match(text, /^Public port\s+0\.0\.0\.0:18080 IN USE$/m);
  assert.match(text, /^Backend port\s+127\.0\.0\.1:3000 free$/m);
  assert.match(text, /^Weights\s+~64 B against 159\.3 GiB of GPU memory/m);
  assert.ok(lines.includes(`  vllm serve ${model} --served-model-name ${path.basename(model)} --host 127.0.0.1 --port 3000 --tensor-parallel-size 2 --disable-uvicorn-access-log --shutdown-timeout=25`));
  const order = ['GPUs', 'Tensor parallel', 'Model', 'vLLM ', 'Public port', 'Probe dir', 'Configuration', 'vLLM command', 'Problems'].map((h) => lines.findIndex((l) => l.startsWith(h)));
  assert.deepEqual([...order].sort((a, b) => a - b), order);
  assert.ok(order.every((i) => i >= 0), String(order));
});

test('a --role worker only runs `ray start --address`: busy ports, no GPU, no vLLM and no model stop nothing; probe shows the Ray command', async () => {
  // start --role worker (commands/worker.ts) checks none of these, so probe must not say they would stop it.
  const p = await plan({ role: 'worker', head: '10.0.0.1:6379' }, {}, failingSmi);
  const busy = { free: false, error: 'EADDRINUSE' };
  const r = buildProbeReport(p, facts({ vllm: { command: 'vllm', found: false, version: null, raw: '', exitCode: null }, proxyPort: { ...facts().proxyPort, ...busy }, backendPort: { ...facts().backendPort, ...busy } }));
  assert.deepEqual(r.problems, []);
  assert.equal(r.ok, true);
  assert.deepEqual(r.warnings, []);
  assert.deepEqual(r.cluster.ray?.argv, ['ray', 'start', '--address=10.0.0.1:6379', '--block']);
  const text = probeLines(r).join('\n');
  assert.match(text, /^llmserve probe: start would proceed/);
  assert.match(text, /Ray command\n  ray start --address=10\.0\.0\.1:6379 --block/);
  assert.doesNotMatch(text, /vllm serve|Public port|Backend port|config\.json/);
  // Its own probe directory is still its business.
  const unwritable = buildProbeReport(p, facts({ probeDir: { dir: '/ro/probe', explicit: true, exists: true, writable: false, error: 'EACCES' } }));
  assert.deepEqual(unwritable.problemDetails.map((x) => x.code), ['PROBE_DIR']);
  // A head runs `ray start --head` on Ray's port.
  const model = await makeModelDir({ heads: 12 });
  const head = buildProbeReport(await plan({ model, role: 'head', nodes: '2' }, { LLMSERVE_MASTER_KEY: KEY }), facts());
  assert.deepEqual(head.cluster.ray?.argv, ['ray', 'start', '--head', '--port=6379', '--block']);
  assert.equal(buildProbeReport(await plan({ model }, { LLMSERVE_MASTER_KEY: KEY }), facts()).cluster.ray, null);
});

test('a head refuses vLLM args that set what it sets itself (pipeline stages, executor), in any spelling: they would idle GPUs', async () => {
  const model = await makeModelDir({ heads: 12 });
  for (const [extra, shown] of [
    [['--pipeline-parallel-size', '2'], '--pipeline-parallel-size'],
    [['-pp=4'], '-pp'],
    [['--pipeline_parallel'], '--pipeline-parallel (short for --pipeline-parallel-size)'],
    [['--distributed-executor-backend', 'mp'], '--distributed-executor-backend'],
  ] as const) {
    const r = buildProbeReport(await plan({ model, role: 'head', nodes: '2', extraArgs: [...extra] }, { LLMSERVE_MASTER_KEY: KEY }), facts());
    assert.equal(r.ok, false, extra.join(' '));
    assert.equal(r.problemDetails[0]?.code, 'USAGE');
    assert.ok(r.problems[0]?.startsWith(`vLLM flag ${shown} is set by llmserve: with --role head`), r.problems[0]);
  }
  // Without --role head the same args are the user's (a pipeline on one node).
  assert.equal(buildProbeReport(await plan({ model, extraArgs: ['-pp', '2'] }, { LLMSERVE_MASTER_KEY: KEY }), facts()).ok, true);
});

test('a head\'s Ray port (6379) in use is a problem, as start refuses it (exit 2) before anything starts', async () => {
  const model = await makeModelDir({ heads: 12 });
  // start refuses a head whose Ray port is taken (exit 2): probe must not say it would proceed.
  const rayBusy = buildProbeReport(await plan({ model, role: 'head', nodes: '2' }, { LLMSERVE_MASTER_KEY: KEY }), facts({ rayPort: { host: '0.0.0.0', port: 6379, free: false, error: 'EADDRINUSE' } }));
  assert.equal(rayBusy.ok, false);
  assert.deepEqual(rayBusy.problems, ['Ray head port 0.0.0.0:6379 is already in use Fix: stop what holds it, or run `ray stop` if it is a Ray left from an earlier run (the head always uses 6379).']);
  assert.equal(rayBusy.cluster.ray?.port?.free, false);
  assert.match(probeLines(rayBusy).join('\n'), /Ray port +0\.0\.0\.0:6379 IN USE/);
});

test('a head or worker whose ray command cannot be run: a problem, as start fails at once (exit 2)', async () => {
  const model = await makeModelDir({ heads: 12 });
  for (const cli of [{ role: 'worker', head: '10.0.0.1:6379' }, { model, role: 'head', nodes: '2' }]) {
    const r = buildProbeReport(await plan(cli, { LLMSERVE_MASTER_KEY: KEY }), facts({ rayFound: false }));
    assert.equal(r.ok, false, cli.role);
    assert.deepEqual(r.problemDetails.map((p) => p.code), ['RAY_NOT_FOUND']);
    assert.match(r.problems[0] ?? '', /the Ray command "ray" was not found Fix: install Ray/);
    assert.equal(r.cluster.ray?.found, false);
  }
});

test('the resolved configuration includes the stall timeout, the drain and the restart policy, as flags and env set them', async () => {
  // A Deployment sets LLMSERVE_DRAIN_DELAY without a config file (README): probe is where it can be checked.
  const model = await makeModelDir({ heads: 12 });
  const env = { LLMSERVE_MASTER_KEY: KEY, LLMSERVE_DRAIN_DELAY: '10', LLMSERVE_STALL_TIMEOUT: '120', LLMSERVE_ENGINE_STALL_TIMEOUT: '300' };
  const r = buildProbeReport(await plan({ model, drainTimeout: '45', restart: 'never' }, env), facts());
  assert.deepEqual(r.config.timeouts, { startup: 1800, stop: 30, stall: 120, engineStall: 300 });
  assert.deepEqual(r.config.drain, { delay: 10, timeout: 45 });
  assert.equal(r.config.restart.policy, 'never');
  const text = probeLines(r).join('\n');
  assert.match(text, /timeouts +startup 1800 s, stall 120 s, stop 30 s, health every 10 s, engine stall 300 s$/m);
  assert.match(text, /on SIGTERM +serve 10 s more, drain up to 45 s, then stop \(up to 30 s\)/);
  assert.match(text, /restart +never/);
  const defaults = probeLines(buildProbeReport(await plan({ model }, { LLMSERVE_MASTER_KEY: KEY }), facts())).join('\n');
  assert.match(defaults, /restart +on-failure: gives up at 5 failures in 600 s, backoff 1-60 s/);
  assert.match(defaults, /timeouts +.*, engine stall off$/m);
});

test('vllm --version: plain, after log lines, prefixed, unparsable, failing, missing', () => {
  assert.equal(parseVllmVersion('0.22.0\n'), '0.22.0');
  assert.equal(parseVllmVersion('INFO 05-01 12:00:00 [__init__.py:239] Automatically detected platform cuda.\n0.10.1.dev12+gabcdef\n'), '0.10.1.dev12+gabcdef');
  assert.equal(parseVllmVersion('vllm 0.9.2'), '0.9.2');
  assert.equal(parseVllmVersion('Traceback (most recent call last):\nImportError: no torch'), null);
  assert.equal(parseVllmVersion(''), null);
  const unknown = vllmVersionFact('vllm', { exitCode: 0, stdout: 'something odd', stderr: '', notFound: false });
  assert.deepEqual(unknown, { command: 'vllm', found: true, version: null, raw: 'something odd', exitCode: 0 });
  const failing = vllmVersionFact('vllm', { exitCode: 1, stdout: '', stderr: 'ImportError: libcuda.so.1', notFound: false });
  assert.equal(failing.version, null);
  assert.equal(failing.raw, 'ImportError: libcuda.so.1');
  assert.equal(vllmVersionFact('vllm', { exitCode: null, stdout: '', stderr: '', notFound: true }).found, false);
});

test('a vllm.command (or ray.command) that is not executable is a problem, as start exits 2 on it', async () => {
  // start cannot spawn it (EACCES: exit 2, spawn-failure.ts); probe used to call it "found, version unknown".
  const dir = await tempDir();
  const script = path.join(dir, 'vllm');
  writeFileSync(script, '#!/bin/sh\necho 0.22.0\n', { mode: 0o644 });
  const vllm = await probeVllmVersion(script, runCommand);
  assert.deepEqual(vllm, { command: script, found: false, version: null, raw: 'EACCES: not executable by this user, or a directory', exitCode: null });
  const model = await makeModelDir();
  const r = buildProbeReport(await plan({ model }, { LLMSERVE_MASTER_KEY: KEY }), facts({ vllm }));
  assert.equal(r.ok, false);
  assert.deepEqual(r.problemDetails.map((p) => p.code), ['VLLM_NOT_FOUND']);
  assert.equal(r.problemDetails[0]?.message, `the vLLM command "${script}" cannot be run (EACCES: not executable by this user, or a directory)`);
  assert.ok(probeLines(r).includes(`vLLM            CANNOT RUN "${script}" (EACCES: not executable by this user, or a directory)`), probeLines(r).join('\n'));
  const [ray] = factProblems(await plan({ model }, { LLMSERVE_MASTER_KEY: KEY }), facts({ rayFound: false, rayUnrunnable: vllm.raw }));
  assert.equal(ray?.message, 'the Ray command "ray" cannot be run (EACCES: not executable by this user, or a directory)');
  // A command that is missing stays "was not found".
  assert.deepEqual(await probeVllmVersion(path.join(dir, 'missing'), runCommand), { command: path.join(dir, 'missing'), found: false, version: null, raw: '', exitCode: null });
});

test('a vllm script whose #! interpreter cannot run is a problem naming it: missing, through env (exit 127), not executable', async () => {
  const dir = await tempDir();
  const noX = path.join(dir, 'python-no-x');
  writeFileSync(noX, '', { mode: 0o644 });
  for (const [shebang, raw] of [
    ['#!/opt/gone-venv/bin/python3', 'ENOENT: the interpreter its #! line names, /opt/gone-venv/bin/python3, does not exist'],
    ['#!/usr/bin/env no-such-python-llmserve', 'ENOENT: the interpreter its #! line names, no-such-python-llmserve, does not exist'],
    [`#!${noX}`, `EACCES: the interpreter its #! line names, ${noX}, is not executable by this user`],
    // env finds it on PATH but cannot run it (exit 126): named by its path, as the chmod needs.
    ['#!/usr/bin/env python-no-x', `EACCES: the interpreter its #! line names, ${noX}, is not executable by this user`],
  ] as const) {
    const script = path.join(dir, `vllm-${raw.slice(0, 6)}-${shebang.length}`);
    writeFileSync(script, `${shebang}\nprint("0.22.0")\n`, { mode: 0o755 });
    assert.deepEqual(await probeVllmVersion(script, runCommand, { PATH: `/usr/bin:/bin:${dir}` }), { command: script, found: false, version: null, raw, exitCode: null });
  }
});

test('an unknown vLLM version is a warning with the raw text, never a problem', async () => {
  const model = await makeModelDir();
  const r = buildProbeReport(await plan({ model }, { LLMSERVE_MASTER_KEY: KEY }), facts({ vllm: { command: 'vllm', found: true, version: null, raw: 'weird output', exitCode: 0 } }));
  assert.equal(r.ok, true);
  assert.ok(r.warnings.some((w) => w.includes('"weird output"')));
  assert.match(probeLines(r).join('\n'), /vLLM\s+found, version unknown \(vllm --version printed "weird output"\)/);
});

test('formatBytes', () => {
  assert.equal(formatBytes(64), '64 B');
  assert.equal(formatBytes(1536), '1.5 KiB');
  assert.equal(formatBytes(81559 * 1024 * 1024), '79.6 GiB');
});
