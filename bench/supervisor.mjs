// Supervisor timings with the fake vLLM (`llmserve start`), and `llmserve check` wall time against `node -e 0`.
import { spawn, spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { freePort } from '../test/helpers/free-port.mjs';
import { KEY, root } from './targets.mjs';
import { sleep } from './load.mjs';

const nowMs = () => Number(process.hrtime.bigint()) / 1e6;
const fixtureBin = path.join(root, 'test/fixtures/bin');

/** Starts `llmserve start` with the fake vLLM and a marker that every descendant inherits. */
async function startService(dir) {
  const model = path.join(dir, 'model');
  fs.mkdirSync(model, { recursive: true });
  fs.writeFileSync(path.join(model, 'config.json'), JSON.stringify({ architectures: ['Qwen2ForCausalLM'], model_type: 'qwen2', num_attention_heads: 12, num_key_value_heads: 2, max_position_embeddings: 32768, torch_dtype: 'bfloat16' }));
  fs.writeFileSync(path.join(model, 'model.safetensors'), Buffer.alloc(64));
  const probeDir = path.join(dir, 'probe');
  const [port, backendPort] = [await freePort(), await freePort()];
  const marker = `llmserve-bench-${randomUUID()}`;
  const env = { ...process.env, PATH: `${fixtureBin}:${process.env.PATH}`, NO_COLOR: '1', LLMSERVE_MASTER_KEY: KEY, LLMSERVE_TEST_MARKER: marker, FAKE_VLLM_LOAD_MS: '800', FAKE_NVIDIA_SMI_GPUS: '1', LLMSERVE_USAGE_DIR: dir };
  const args = ['bin/llmserve.js', 'start', '--model', model, '--port', String(port), '--backend-port', String(backendPort), '--probe-dir', probeDir];
  const child = spawn(process.execPath, args, { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (d) => (output += d));
  child.stderr.on('data', (d) => (output += d));
  const exited = new Promise((resolve) => child.on('exit', (code) => resolve(code)));
  return { child, env, marker, port, backendPort, probeDir, exited, output: () => output };
}

/** Polls `pred` every `everyMs` until true; resolves with the time it became true, or null after `timeoutMs`. */
async function until(pred, timeoutMs, everyMs = 2) {
  const deadline = nowMs() + timeoutMs;
  while (nowMs() < deadline) {
    if (await pred()) return nowMs();
    await sleep(everyMs);
  }
  return null;
}

function healthOk(port) {
  return new Promise((resolve) => {
    const req = http.get({ host: '127.0.0.1', port, path: '/health', agent: false, timeout: 200 }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.on('error', () => resolve(false));
    req.on('timeout', () => (req.destroy(), resolve(false)));
  });
}

/** Live processes whose environment carries the marker. */
function marked(marker) {
  const out = [];
  for (const name of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(name) || Number(name) === process.pid) continue;
    try {
      const stat = fs.readFileSync(`/proc/${name}/stat`, 'utf8');
      if (stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z')) continue;
      if (fs.readFileSync(`/proc/${name}/environ`, 'utf8').includes(marker)) out.push({ pid: Number(name), cmdline: fs.readFileSync(`/proc/${name}/cmdline`, 'utf8').replace(/\0/g, ' ') });
    } catch { /* gone or not ours */ }
  }
  return out;
}

function killMarked(marker) {
  for (const p of marked(marker)) {
    try {
      process.kill(p.pid, 'SIGKILL');
    } catch { /* gone */ }
  }
}

/**
 * Run 1: backend answers /health -> `not-ready` removed; `check` wall time against `node -e 0`; SIGTERM -> all
 * processes gone. Run 2: EngineCore killed -> `not-healthy` created.
 */
export async function supervisorTimings(dir, checkRuns) {
  const out = { readyToNotReadyRemovedMs: null, deathToNotHealthyMs: null, sigtermToAllGoneMs: null, check: null, notes: [] };
  const a = await startService(path.join(dir, 'run1'));
  try {
    const ready = await until(() => healthOk(a.backendPort), 20_000, 5);
    const removed = await until(() => !fs.existsSync(path.join(a.probeDir, 'not-ready')), 20_000);
    if (ready !== null && removed !== null) out.readyToNotReadyRemovedMs = Math.max(0, removed - ready);
    else out.notes.push('run 1: the service did not become ready:\n' + a.output().slice(-2000));
    if (removed !== null) {
      out.check = checkWallTime(a, a.env, checkRuns);
      // NODE_EXTRA_CA_CERTS makes Node 20 parse the whole bundle at start-up (about 45 ms here), inflating the
      // `node -e 0` floor the ratio is taken against; probe scripts usually run without it, so measure that too.
      if (a.env.NODE_EXTRA_CA_CERTS) {
        const { NODE_EXTRA_CA_CERTS, ...clean } = a.env;
        out.check.withoutExtraCaCerts = checkWallTime(a, clean, checkRuns);
      }
    }
    const before = marked(a.marker).length;
    const t0 = nowMs();
    a.child.kill('SIGTERM');
    const gone = await until(() => marked(a.marker).length === 0, 10_000, 5);
    if (gone !== null) out.sigtermToAllGoneMs = gone - t0;
    out.processesBeforeSigterm = before;
  } finally {
    killMarked(a.marker);
  }

  const b = await startService(path.join(dir, 'run2'));
  try {
    await until(() => healthOk(b.backendPort), 20_000, 5);
    const removed = await until(() => !fs.existsSync(path.join(b.probeDir, 'not-ready')), 20_000);
    const engine = marked(b.marker).find((p) => p.cmdline.startsWith('VLLM::EngineCore'));
    if (removed === null || engine === undefined) out.notes.push('run 2: no ready service or no EngineCore process');
    else {
      const t0 = nowMs();
      process.kill(engine.pid, 'SIGKILL');
      const created = await until(() => fs.existsSync(path.join(b.probeDir, 'not-healthy')), 15_000);
      if (created !== null) out.deathToNotHealthyMs = created - t0;
    }
    b.child.kill('SIGTERM');
    await Promise.race([b.exited, sleep(5000)]);
  } finally {
    killMarked(b.marker);
  }
  return out;
}

/** Median wall time of `llmserve check` against the running service and of `node -e 0`, run alternately in `env`. */
function checkWallTime(service, env, runs) {
  const check = [process.execPath, ['bin/llmserve.js', 'check', '--port', String(service.port), '--probe-dir', service.probeDir]];
  const bare = [process.execPath, ['-e', '0']];
  const times = { check: [], node: [] };
  let status = null;
  for (let i = 0; i < runs; i++) {
    for (const [name, [cmd, args]] of i % 2 === 0 ? [['check', check], ['node', bare]] : [['node', bare], ['check', check]]) {
      const t0 = nowMs();
      const r = spawnSync(cmd, args, { cwd: root, env, stdio: 'ignore' });
      times[name].push(nowMs() - t0);
      if (name === 'check') status = r.status;
    }
  }
  const median = (xs) => xs.sort((x, y) => x - y)[Math.floor(xs.length / 2)];
  const checkMs = median(times.check);
  const nodeMs = median(times.node);
  return { checkMs, nodeMs, addedMs: checkMs - nodeMs, ratio: checkMs / nodeMs, exitCode: status, runs };
}
