// A full disk where llmserve writes, or a file-size limit (`ulimit -f`). Probe files on a full disk: probe-files.test.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { closeSync, existsSync, openSync } from 'node:fs';
import path from 'node:path';
import { envWithFakes, makeModelDir, tempDir } from '../helpers/fixtures.js';
import { binPath } from '../helpers/llmserve.js';
import { freePort } from '../helpers/ports.js';
import { findByMarker, killByMarker } from '../helpers/procs.js';
import { waitFor } from '../helpers/wait.js';

const KEY = 'sk-output-full-0123456789abcdef';

/** Starts the bin's `start` with stdout to `stdout` (a pipe when absent) and optionally a file-size limit; kills all it started at the end. */
async function startWith(t: { after(fn: () => Promise<void>): void }, opts: { stdout?: string; ulimitF?: number } = {}) {
  const dir = await tempDir('llmserve-full-');
  const model = await makeModelDir();
  const probeDir = path.join(dir, 'probe');
  const [port, backendPort] = [await freePort(), await freePort()];
  const marker = `llmserve-test-${randomUUID()}`;
  const args = [binPath, 'start', '--model', model, '--port', String(port), '--backend-port', String(backendPort), '--probe-dir', probeDir, '--health-interval', '0.3', '--stop-timeout', '3'];
  const out = opts.stdout === undefined ? 'pipe' : openSync(opts.stdout, 'w');
  const child = spawn(opts.ulimitF === undefined ? process.execPath : '/bin/sh', opts.ulimitF === undefined ? args : ['-c', `ulimit -f ${opts.ulimitF} && exec "$0" "$@"`, process.execPath, ...args], {
    env: envWithFakes({ LLMSERVE_TEST_MARKER: marker, LLMSERVE_MASTER_KEY: KEY, LLMSERVE_USAGE_DIR: dir, FAKE_VLLM_LOAD_MS: '200', FAKE_NVIDIA_SMI_GPUS: '1' }),
    stdio: ['ignore', out, 'pipe'],
  });
  if (typeof out === 'number') closeSync(out);
  let output = '';
  child.stdout?.on('data', (c: Buffer) => (output += c.toString()));
  child.stderr!.on('data', (c: Buffer) => (output += c.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on('close', (code, signal) => resolve({ code, signal })));
  t.after(async () => {
    killByMarker(marker);
    await exited;
    await waitFor(() => findByMarker(marker).length === 0, { timeoutMs: 5000, message: 'marked processes to be gone' });
  });
  return {
    child,
    exited,
    probeDir,
    output: () => output,
    async waitReady() {
      await waitFor(() => existsSync(path.join(probeDir, 'not-ready')), { timeoutMs: 20_000, message: () => `not-ready\n${output}` });
      await waitFor(() => !existsSync(path.join(probeDir, 'not-ready')), { timeoutMs: 20_000, message: () => `ready\n${output}` });
    },
    models: () => fetch(`http://127.0.0.1:${port}/v1/models`, { headers: { authorization: `Bearer ${KEY}` } }).then((r) => r.status),
    readiness: () => fetch(`http://127.0.0.1:${port}/health/readiness`).then((r) => r.status),
  };
}

test('start under a file-size limit (ulimit -f 0): it serves, a failed write is EFBIG, never a SIGXFSZ that kills llmserve', async (t) => {
  // Every data write to a file fails (the runtime file, probe files' times, the usage store); stdout is a pipe.
  const svc = await startWith(t, { ulimitF: 0 });
  await svc.waitReady();
  assert.equal(await svc.models(), 200);
  assert.match(svc.output(), /warning: cannot write llmserve.json in .* \(EFBIG\)/);
  svc.child.kill('SIGTERM');
  const { code, signal } = await svc.exited;
  assert.deepEqual({ code, signal }, { code: 0, signal: null }, svc.output());
  for (const name of ['not-ready', 'not-healthy']) assert.ok(existsSync(path.join(svc.probeDir, name)), name);
});
