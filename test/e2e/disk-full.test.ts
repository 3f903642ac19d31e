// A full disk where llmserve writes, or a file-size limit (`ulimit -f`). Output with no room (stdout sent to a file
// on a full disk): `start` keeps serving; a command whose output is its product (a key, a report) exits 1 instead of
// 0 with an empty or cut file. A reader that is gone (a closed pipe) is another matter: faults-stop.test.ts. Probe
// files on a full disk: probe-files.test.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { envWithFakes, makeModelDir, tempDir } from '../helpers/fixtures.js';
import { binPath } from '../helpers/llmserve.js';
import { freePort } from '../helpers/ports.js';
import { findByMarker, killByMarker } from '../helpers/procs.js';
import { waitFor, waitForFile } from '../helpers/wait.js';

const KEY = 'sk-output-full-0123456789abcdef';
// /dev/full: every write fails with ENOSPC, as on a full disk.
const noDevFull = existsSync('/dev/full') ? false : 'no /dev/full';

/** Runs the bin with stdout written to `file` (opened here) and stderr captured; `ulimitF` caps file sizes (512-byte blocks). */
function runTo(file: string, args: string[], ulimitF?: number) {
  const fd = openSync(file, 'w');
  try {
    const argv = ulimitF === undefined ? [binPath, ...args] : ['-c', `ulimit -f ${ulimitF} && exec "$0" "$@"`, process.execPath, binPath, ...args];
    const r = spawnSync(ulimitF === undefined ? process.execPath : '/bin/sh', argv, {
      env: envWithFakes({ LLMSERVE_MASTER_KEY: KEY, LLMSERVE_CONFIG: undefined }),
      stdio: ['ignore', fd, 'pipe'],
      encoding: 'utf8',
      timeout: 30_000,
    });
    return { code: r.status, stderr: r.stderr };
  } finally {
    closeSync(fd);
  }
}

test('keys generate and usage --json with stdout on a full disk: exit 1 with an OUTPUT error, not 0 with nothing written', { skip: noDevFull }, async () => {
  const usageDir = await tempDir('llmserve-usage-');
  for (const args of [['keys', 'generate', '--json'], ['usage', '--json']]) {
    const r = runTo('/dev/full', args);
    assert.equal(r.code, 1, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, /error: cannot write the output to stdout \(ENOSPC: no space left where it goes\); it is missing or cut short code=OUTPUT/);
  }
  // The same with room: exit 0 (LLMSERVE_USAGE_DIR: no store yet is no rows).
  const ok = path.join(usageDir, 'keys.json');
  assert.equal(runTo(ok, ['keys', 'generate', '--json']).code, 0);
  assert.match(readFileSync(ok, 'utf8'), /^\{"name":"client","key":"sk-/);
});

test('a disk that fills in the middle of the output (a short write): the rest is written or the command fails, never exit 0 with a cut report', async () => {
  const dir = await tempDir('llmserve-short-');
  const model = await makeModelDir();
  const out = path.join(dir, 'probe.json');
  // `ulimit -f 1`: 512 bytes fit, the rest of the report does not (the write falls short, then fails with EFBIG).
  const args = ['probe', '--model', model, '--port', String(await freePort()), '--backend-port', String(await freePort()), '--probe-dir', path.join(dir, 'probe'), '--json'];
  const r = runTo(out, args, 1);
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, /cannot write the output to stdout \(EFBIG: over the file-size limit\)/);
  assert.ok(readFileSync(out).length <= 512);
});

/** Starts the bin's `start` with stdout to `stdout` and stderr to `stderr` (pipes when absent) and optionally a file-size limit; kills all it started at the end. */
async function startWith(t: { after(fn: () => Promise<void>): void }, opts: { stdout?: string; stderr?: string; ulimitF?: number; before?: (probeDir: string) => void } = {}) {
  const dir = await tempDir('llmserve-full-');
  const model = await makeModelDir();
  const probeDir = path.join(dir, 'probe');
  opts.before?.(probeDir);
  const [port, backendPort] = [await freePort(), await freePort()];
  const marker = `llmserve-test-${randomUUID()}`;
  const args = [binPath, 'start', '--model', model, '--port', String(port), '--backend-port', String(backendPort), '--probe-dir', probeDir, '--health-interval', '0.3', '--stop-timeout', '3'];
  const out = opts.stdout === undefined ? 'pipe' : openSync(opts.stdout, 'w');
  const err = opts.stderr === undefined ? 'pipe' : openSync(opts.stderr, 'w');
  const child = spawn(opts.ulimitF === undefined ? process.execPath : '/bin/sh', opts.ulimitF === undefined ? args : ['-c', `ulimit -f ${opts.ulimitF} && exec "$0" "$@"`, process.execPath, ...args], {
    env: envWithFakes({ LLMSERVE_TEST_MARKER: marker, LLMSERVE_MASTER_KEY: KEY, LLMSERVE_USAGE_DIR: dir, FAKE_VLLM_LOAD_MS: '200', FAKE_NVIDIA_SMI_GPUS: '1' }),
    stdio: ['ignore', out, err],
  });
  for (const fd of [out, err]) if (typeof fd === 'number') closeSync(fd);
  let output = '';
  child.stdout?.on('data', (c: Buffer) => (output += c.toString()));
  child.stderr?.on('data', (c: Buffer) => (output += c.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on('close', (code, signal) => resolve({ code, signal })));
  t.after(async () => {
    killByMarker(marker);
    await exited;
    await waitFor(() => findByMarker(marker).length === 0, { timeoutMs: 30_000, message: 'marked processes to be gone' });
  });
  return {
    child,
    exited,
    probeDir,
    output: () => output,
    async waitReady() {
      await waitFor(() => existsSync(path.join(probeDir, 'not-ready')), { timeoutMs: 60_000, message: () => `not-ready\n${output}` });
      await waitFor(() => !existsSync(path.join(probeDir, 'not-ready')), { timeoutMs: 60_000, message: () => `ready\n${output}` });
    },
    models: () => fetch(`http://127.0.0.1:${port}/v1/models`, { headers: { authorization: `Bearer ${KEY}` } }).then((r) => r.status),
    readiness: () => fetch(`http://127.0.0.1:${port}/health/readiness`).then((r) => r.status),
  };
}

test('start with stdout on a full disk: it warns on stderr and keeps serving (before, it stopped as if the terminal had closed)', { skip: noDevFull }, async (t) => {
  const svc = await startWith(t, { stdout: '/dev/full' });
  // Every line on stdout fails from the first one on, the ready line and the access log included.
  await svc.waitReady();
  for (let i = 0; i < 3; i++) assert.equal(await svc.models(), 200);
  // Several health intervals later it still serves: nothing took the failed writes for a closed terminal.
  await new Promise((r) => setTimeout(r, 1000));
  assert.equal(existsSync(path.join(svc.probeDir, 'not-healthy')), false, svc.output());
  assert.equal(await svc.readiness(), 200);
  assert.match(svc.output(), /warning: cannot write stdout \(ENOSPC: no space left where it goes\); llmserve keeps serving/);
  assert.doesNotMatch(svc.output(), /output closed|internal error/);
  svc.child.kill('SIGTERM');
  assert.equal((await svc.exited).code, 0, svc.output());
});

test('start with stderr on a full disk: the warning goes to stdout, the stream that still works, and it keeps serving', { skip: noDevFull }, async (t) => {
  const svc = await startWith(t, { stderr: '/dev/full' });
  await svc.waitReady();
  assert.equal(await svc.models(), 200);
  await waitFor(() => /warning: cannot write stderr \(ENOSPC: no space left where it goes\); llmserve keeps serving/.test(svc.output()), {
    timeoutMs: 30_000,
    message: () => `the warning on stdout\n${svc.output()}`,
  });
  svc.child.kill('SIGTERM');
  assert.equal((await svc.exited).code, 0, svc.output());
});

test('start under a file-size limit (ulimit -f 0): it serves, a failed write is EFBIG, never a SIGXFSZ that kills llmserve', async (t) => {
  // Every data write to a file fails (the runtime file, probe files' times, the usage store); stdout is a pipe.
  // The probe directory keeps the runtime file of an llmserve that was SIGKILLed: its ports must not mislead check.
  const stale = (probeDir: string) => path.join(probeDir, 'llmserve.json');
  const svc = await startWith(t, {
    ulimitF: 0,
    before: (probeDir) => {
      mkdirSync(probeDir, { recursive: true });
      writeFileSync(stale(probeDir), JSON.stringify({ pid: 2 ** 22 + 1, startedAt: '2026-01-01T00:00:00.000Z', proxy: { host: '127.0.0.1', port: 1, tls: false }, backend: { host: '127.0.0.1', port: 2 } }));
    },
  });
  await svc.waitReady();
  assert.equal(await svc.models(), 200);
  assert.match(svc.output(), /warning: cannot write llmserve.json in .* \(EFBIG\): .*; the older llmserve.json there, from an llmserve that is gone, was removed/);
  assert.equal(existsSync(stale(svc.probeDir)), false, 'the stale runtime file is gone');
  svc.child.kill('SIGTERM');
  const { code, signal } = await svc.exited;
  assert.deepEqual({ code, signal }, { code: 0, signal: null }, svc.output());
  for (const name of ['not-ready', 'not-healthy']) assert.ok(existsSync(path.join(svc.probeDir, name)), name);
});
