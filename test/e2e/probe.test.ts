// `llmserve probe` end to end: the built bin with the fake vllm and nvidia-smi; nothing may be started or left behind.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { envWithFakes, makeModelDir, tempDir, LITELLM_CONFIG } from '../helpers/fixtures.js';
import { binPath } from '../helpers/llmserve.js';
import { freePort } from '../helpers/ports.js';
import { findByMarker } from '../helpers/procs.js';

const FILE_KEY = 'your-master-key-here';
const ENV_KEY = 'sk-probe-e2e-KEY-5e6f7a8b9c0d1e2f';

interface Ran {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the built bin to completion; asserts that nothing it started is still running. */
async function llmserve(args: string[], env: Record<string, string | undefined> = {}): Promise<Ran> {
  const marker = `llmserve-test-${randomUUID()}`;
  const child = spawn(process.execPath, [binPath, ...args], { env: envWithFakes({ LLMSERVE_TEST_MARKER: marker, ...env }), stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const code = await new Promise<number | null>((resolve) => child.on('close', (c) => resolve(c)));
  assert.deepEqual(findByMarker(marker), [], 'probe must leave no process behind');
  return { code, stdout, stderr };
}

interface ProbeJson {
  ok: boolean;
  gpus: { index: number; uuid: string; name: string; memoryMiB: number | null }[];
  allGpus: { index: number; selected: boolean }[];
  tensorParallelSize: number | null;
  vllm: { argv: string[]; found: boolean; version: string | null; raw: string };
  backend: { port: number; free: boolean };
  proxy: { port: number; free: boolean };
  probes: { dir: string; writable: boolean };
  problems: string[];
  problemDetails: { code: string }[];
  config: { proxy: { keys: { name: string; value: string }[]; workers: number; keepAliveTimeout: number } };
}

async function setup(): Promise<{ dir: string; config: string; model: string }> {
  const dir = await tempDir();
  const config = path.join(dir, 'litellm.config.yaml');
  writeFileSync(config, LITELLM_CONFIG);
  return { dir, config, model: await makeModelDir({ heads: 12 }) };
}

/** Problems other than ports that this machine may happen to use (3000, 8080, 80 are popular). */
const nonPortProblems = (j: ProbeJson) => j.problemDetails.filter((p) => p.code !== 'PORT_IN_USE');

test('the issue\'s command: 2 GPUs, size 2, the whole vLLM argv, proxy 8080 (80 in production), and no key in the output', async () => {
  const { config, model } = await setup();
  const r = await llmserve(['probe', '--config', config, '--model', model, '--json'], { FAKE_NVIDIA_SMI_GPUS: '2' });
  const j = JSON.parse(r.stdout) as ProbeJson;
  assert.ok(r.code === 0 || (r.code === 1 && nonPortProblems(j).length === 0), `${r.code}\n${r.stdout}\n${r.stderr}`);
  assert.equal(r.code === 0, j.ok);
  assert.equal(j.gpus.length, 2);
  assert.deepEqual(j.gpus.map((g) => g.index), [0, 1]);
  assert.equal(j.gpus[0]?.name, 'NVIDIA H100 80GB HBM3');
  assert.equal(j.gpus[0]?.memoryMiB, 81559);
  assert.match(j.gpus[0]?.uuid ?? '', /^GPU-/);
  assert.equal(j.tensorParallelSize, 2);
  assert.deepEqual(j.vllm.argv.slice(0, 5), ['vllm', 'serve', model, '--served-model-name', 'DeepSeek-R1-Distill-Qwen-1.5B']);
  const tp = j.vllm.argv.indexOf('--tensor-parallel-size');
  assert.equal(j.vllm.argv[tp + 1], '2');
  assert.equal(j.proxy.port, 8080);
  assert.equal(j.backend.port, 3000);
  assert.equal(j.probes.dir, '/etc/probe');
  assert.deepEqual(j.config.proxy.keys, [{ name: 'master', kind: 'key', value: '[redacted]' }]);
  // proxy.workers: auto, resolved for this machine: min(2, CPUs).
  assert.equal(j.config.proxy.workers, Math.min(2, os.availableParallelism()));
  assert.equal(j.config.proxy.keepAliveTimeout, 65);
  assert.equal(j.vllm.version, '0.22.0');
  assert.ok(!(r.stdout + r.stderr).includes(FILE_KEY), 'the key must not appear');

  const prod = await llmserve(['probe', '--config', config, '--model', model, '--json'], { FAKE_NVIDIA_SMI_GPUS: '2', OPENBAYES_SERVING_PRODUCTION: '1' });
  assert.equal((JSON.parse(prod.stdout) as ProbeJson).proxy.port, 80);
});

test('free ports and a writable probe dir: exit 0, "start would proceed"; the human report hides the key too', async () => {
  const { dir, config, model } = await setup();
  const [port, backendPort] = [await freePort(), await freePort()];
  const args = ['probe', '--config', config, '--model', model, '--port', String(port), '--backend-port', String(backendPort), '--probe-dir', path.join(dir, 'probe')];
  const r = await llmserve(args, { FAKE_NVIDIA_SMI_GPUS: '2', LLMSERVE_MASTER_KEY: ENV_KEY });
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /^llmserve probe: start would proceed$/m);
  assert.match(r.stdout, /^Tensor parallel 2 \(2 visible GPUs \(12 attention heads and 2 key-value heads split evenly\)\)$/m);
  assert.match(r.stdout, new RegExp(`^Public port\\s+0\\.0\\.0\\.0:${port} free$`, 'm'));
  assert.match(r.stdout, /keys\s+master \(key\) \[redacted\]/);
  assert.match(r.stdout, new RegExp(`^  vllm serve ${model.replace(/[/.]/g, '\\$&')} --served-model-name DeepSeek-R1-Distill-Qwen-1\\.5B --host 127\\.0\\.0\\.1 --port ${backendPort} --tensor-parallel-size 2 --disable-uvicorn-access-log --shutdown-timeout=25$`, 'm'));
  for (const secret of [ENV_KEY, FILE_KEY]) assert.ok(!(r.stdout + r.stderr).includes(secret), `${secret} leaked`);
  assert.equal(existsSync(path.join(dir, 'probe')), false, 'probe creates nothing');
});

test('CUDA_VISIBLE_DEVICES=0 gives tensor-parallel size 1 and lists only GPU 0', async () => {
  const { config, model } = await setup();
  const r = await llmserve(['probe', '--config', config, '--model', model, '--json'], { FAKE_NVIDIA_SMI_GPUS: '2', CUDA_VISIBLE_DEVICES: '0' });
  const j = JSON.parse(r.stdout) as ProbeJson;
  assert.equal(j.tensorParallelSize, 1);
  assert.deepEqual(j.gpus.map((g) => g.index), [0]);
  assert.deepEqual(j.allGpus.map((g) => [g.index, g.selected]), [[0, true], [1, false]]);
  assert.deepEqual(j.vllm.argv.slice(-4), ['--tensor-parallel-size', '1', '--disable-uvicorn-access-log', '--shutdown-timeout=25']);
});

test('a failing nvidia-smi: exit 1 and says why, with the fix', async () => {
  const { dir, config, model } = await setup();
  const r = await llmserve(['probe', '--config', config, '--model', model, '--probe-dir', dir, '--port', String(await freePort()), '--backend-port', String(await freePort())], { FAKE_NVIDIA_SMI_MODE: 'fail' });
  assert.equal(r.code, 1, r.stdout + r.stderr);
  assert.match(r.stdout, /nvidia-smi failed \(exit 9\): "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver/);
  assert.match(r.stdout, /^\s+Fix: check the NVIDIA driver/m);
  const j = JSON.parse((await llmserve(['probe', '--config', config, '--model', model, '--json'], { FAKE_NVIDIA_SMI_MODE: 'fail' })).stdout) as ProbeJson;
  assert.equal(j.tensorParallelSize, null);
  assert.equal(j.problemDetails[0]?.code, 'GPU_QUERY');
  assert.match(j.problems[0] ?? '', /nvidia-smi failed.*Fix: /);
});

test('what start would meet before the plan: an unopenable LLMSERVE_LOG_FILE (exit 1), an unusable usage store (a warning)', async () => {
  const { dir, config, model } = await setup();
  const file = path.join(dir, 'plain-file');
  writeFileSync(file, '');
  const env = { LLMSERVE_LOG_FILE: path.join(dir, 'no-such-dir', 'llmserve.log'), LLMSERVE_USAGE_DIR: path.join(file, 'usage') };
  const r = await llmserve(['probe', '--config', config, '--model', model, '--probe-dir', dir, '--port', String(await freePort()), '--backend-port', String(await freePort())], env);
  assert.equal(r.code, 1, r.stdout + r.stderr);
  assert.match(r.stdout, /LLMSERVE_LOG_FILE: cannot open .*no-such-dir\/llmserve\.log: the directory .*no-such-dir does not exist \(ENOENT\)/);
  assert.match(r.stdout, /usage store directory .*plain-file\/usage cannot be used \(ENOTDIR\): start would count usage in memory only/);
  assert.equal(existsSync(path.join(dir, 'no-such-dir')), false, 'probe creates nothing');
});

test('garbage from nvidia-smi is a problem that quotes it, not a crash', async () => {
  const { config, model } = await setup();
  const r = await llmserve(['probe', '--config', config, '--model', model, '--json'], { FAKE_NVIDIA_SMI_MODE: 'garbage' });
  assert.equal(r.code, 1, r.stderr);
  const j = JSON.parse(r.stdout) as ProbeJson;
  assert.deepEqual(j.gpus, []);
  assert.match(j.problems[0] ?? '', /^nvidia-smi output could not be parsed: "%%% not, a csv ;; line/);
});

test('a missing model directory, a busy port, an unwritable explicit probe dir: each a problem, exit 1', async (t) => {
  const { dir, config, model } = await setup();
  const busy = net.createServer();
  await new Promise<void>((resolve) => busy.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise<void>((resolve) => busy.close(() => resolve())));
  const busyPort = (busy.address() as net.AddressInfo).port;
  // A fresh free port for each run: one taken at the start could be another test's by the last run (they run in parallel).
  const free = async () => String(await freePort());
  const base = ['probe', '--config', config, '--json'];
  const env = { FAKE_NVIDIA_SMI_GPUS: '2' };

  const missing = await llmserve([...base, '--model', path.join(dir, 'no-such-model'), '--probe-dir', dir, '--port', await free(), '--backend-port', await free()], env);
  assert.equal(missing.code, 1);
  assert.deepEqual((JSON.parse(missing.stdout) as ProbeJson).problemDetails.map((p) => p.code), ['MODEL_PATH']);

  for (const [flag, what] of [['--port', 'public'], ['--backend-port', 'backend']] as const) {
    const other = flag === '--port' ? '--backend-port' : '--port';
    const r = await llmserve([...base, '--model', model, '--probe-dir', dir, flag, String(busyPort), other, await free()], env);
    assert.equal(r.code, 1, r.stdout);
    const j = JSON.parse(r.stdout) as ProbeJson;
    assert.deepEqual(j.problemDetails.map((p) => p.code), ['PORT_IN_USE']);
    assert.match(j.problems[0] ?? '', new RegExp(`^${what} port .*:${busyPort} is already in use Fix: `));
  }

  const file = path.join(dir, 'a-regular-file');
  writeFileSync(file, '');
  const unwritable = await llmserve([...base, '--model', model, '--probe-dir', path.join(file, 'sub'), '--port', await free(), '--backend-port', await free()], env);
  assert.equal(unwritable.code, 1);
  const j = JSON.parse(unwritable.stdout) as ProbeJson;
  assert.deepEqual(j.problemDetails.map((p) => p.code), ['PROBE_DIR']);
  assert.match(j.problems[0] ?? '', /probe directory .*a-regular-file\/sub is not writable: ENOTDIR Fix: /);
});

test('an unreadable vLLM version is reported as unknown with the raw text, and start would still proceed', async () => {
  const { dir, config, model } = await setup();
  const r = await llmserve(['probe', '--config', config, '--model', model, '--json', '--probe-dir', dir, '--port', String(await freePort()), '--backend-port', String(await freePort())], { FAKE_NVIDIA_SMI_GPUS: '1', FAKE_VLLM_VERSION: 'not a version' });
  assert.equal(r.code, 0, r.stdout);
  const j = JSON.parse(r.stdout) as ProbeJson;
  assert.deepEqual([j.vllm.found, j.vllm.version, j.vllm.raw], [true, null, 'not a version']);
});

test('unusable configuration or arguments: exit 2 with the reason, nothing on stdout', async () => {
  const { dir, model } = await setup();
  const bad = path.join(dir, 'bad.yaml');
  writeFileSync(bad, 'model: [unclosed\n');
  const r = await llmserve(['probe', '--config', bad, '--model', model]);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /bad\.yaml:\d+:\d+: invalid YAML/);
  assert.equal(r.stdout, '');
  const port = await llmserve(['probe', '--model', model, '--port', 'eighty'], { LLMSERVE_MASTER_KEY: ENV_KEY });
  assert.equal(port.code, 2);
  assert.match(port.stderr, /--port: expected an integer 1-65535, got "eighty"/);
  assert.equal((await llmserve(['probe', '--no-such-flag'])).code, 2);
  // One port for both listeners: a configuration error naming both, not a spurious "already in use".
  const free = String(await freePort());
  const same = await llmserve(['probe', '--model', model, '--port', free, '--backend-port', free, '--probe-dir', path.join(dir, 'probe')], { LLMSERVE_MASTER_KEY: ENV_KEY });
  assert.equal(same.code, 2, same.stdout + same.stderr);
  assert.match(same.stderr, new RegExp(`the public port \\(--port\\) and the backend port \\(--backend-port\\) are both ${free}`));
  assert.doesNotMatch(same.stdout + same.stderr, /in use/);
});
