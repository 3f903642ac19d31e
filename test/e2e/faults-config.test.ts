// Bad input (issue 5 item 5): each is one error line, exit 2, nothing started (vLLM never ran), nothing left.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { errorLines, startService, type ServiceOptions } from '../helpers/service.js';
import { tempDir } from '../helpers/fixtures.js';
import { findByMarker } from '../helpers/procs.js';
import { hasOpenssl, selfSignedCert, strayKey } from '../helpers/tls.js';

/** Runs `start` with a bad input and checks the common contract; returns the single error line and the output. */
async function refusedRun(t: { after(fn: () => Promise<void>): void }, opts: ServiceOptions & { setup?: (dir: string) => void }): Promise<{ line: string; output: string }> {
  const svc = await startService(opts);
  t.after(async () => assert.equal(await svc.run.cleanup(), 0, 'no process may be left behind'));
  const { code } = await svc.run.exited;
  assert.equal(code, 2, svc.run.output());
  const errors = errorLines(svc.run);
  assert.equal(errors.length, 1, `exactly one error line:\n${svc.run.output()}`);
  assert.deepEqual(svc.vllmStarts(), [], 'vLLM must never have run');
  assert.ok(!svc.run.output().includes('listening on'), 'the proxy must never have started');
  assert.deepEqual(findByMarker(svc.run.marker), []);
  return { line: errors[0]!, output: svc.run.output() };
}

/** refusedRun's single error line. */
async function refused(t: { after(fn: () => Promise<void>): void }, opts: ServiceOptions & { setup?: (dir: string) => void }): Promise<string> {
  return (await refusedRun(t, opts)).line;
}

test('missing model directory', async (t) => {
  const line = await refused(t, { args: ['--model', '/nonexistent/models/Qwen-1.5B'] });
  assert.match(line, /model directory \/nonexistent\/models\/Qwen-1\.5B does not exist/);
});

test('unwritable explicit probe directory (below a regular file: fails even for root)', async (t) => {
  const blocker = path.join(await tempDir(), 'llmserve-blocker');
  writeFileSync(blocker, 'a regular file\n');
  const line = await refused(t, { args: ['--probe-dir', path.join(blocker, 'probe')] });
  assert.match(line, /probe directory .*llmserve-blocker\/probe is not writable: (ENOTDIR|EEXIST)/);
});

test('nvidia-smi failing', async (t) => {
  const line = await refused(t, { env: { FAKE_NVIDIA_SMI_MODE: 'fail' } });
  assert.match(line, /nvidia-smi/i);
});

test('no visible GPU: the error, and no vLLM command line before it (nothing is run)', async (t) => {
  const { line, output } = await refusedRun(t, { env: { CUDA_VISIBLE_DEVICES: '-1' } });
  assert.match(line, /no GPU found/);
  assert.match(output, /GPUs \(CUDA_VISIBLE_DEVICES=-1\): none \[from nvidia-smi\]/);
  assert.doesNotMatch(output, /vLLM command:/);
});

test('malformed YAML: FILE:LINE:COL', async (t) => {
  const line = await refused(t, { config: 'drain:\n  delay: 1\n  timeout: [30\n' });
  assert.match(line, /llmserve\.yaml:\d+:\d+: invalid YAML: /);
});

test('unknown key: did you mean', async (t) => {
  const line = await refused(t, { config: 'restart:\n  max_failure: 3\n' });
  assert.match(line, /llmserve\.yaml: restart\.max_failure: unknown key; did you mean "max_failures"\?/);
});

test('wrong type', async (t) => {
  const line = await refused(t, { config: 'drain: { timeout: soon }\n' });
  assert.match(line, /llmserve\.yaml: drain\.timeout: expected a number of seconds, 0 or more, got "soon"/);
});

/** Holds a TCP port in a child process (so /proc can name it) until the test ends. */
async function holdPort(t: { after(fn: () => void): void }, host: string): Promise<{ port: number; pid: number }> {
  const holder = spawn(process.execPath, ['-e', `const s=require('net').createServer().listen(0,'${host}',()=>console.log(s.address().port))`], { stdio: ['ignore', 'pipe', 'inherit'] });
  t.after(() => holder.kill('SIGKILL'));
  const [chunk] = (await once(holder.stdout!, 'data')) as [Buffer];
  return { port: Number(chunk.toString().trim()), pid: holder.pid! };
}

test('public port in use: the port and its holder are named', async (t) => {
  const held = await holdPort(t, '0.0.0.0');
  const line = await refused(t, { args: ['--port', String(held.port)] });
  assert.match(line, new RegExp(`public port 0\\.0\\.0\\.0:${held.port} is already in use by pid ${held.pid} \\(.*node -e`));
});

test('backend port in use: the port and its holder are named', async (t) => {
  const held = await holdPort(t, '127.0.0.1');
  const line = await refused(t, { args: ['--backend-port', String(held.port)] });
  assert.match(line, new RegExp(`backend port 127\\.0\\.0\\.1:${held.port} is already in use by pid ${held.pid} \\(.*node -e`));
});

test('metrics port in use: named as the metrics port with its holder and setting, before anything starts', async (t) => {
  const held = await holdPort(t, '127.0.0.1');
  const line = await refused(t, { config: `proxy:\n  metrics_port: ${held.port}\n` });
  assert.match(line, new RegExp(`metrics port 127\\.0\\.0\\.1:${held.port} is already in use by pid ${held.pid} \\(.*node -e.*; stop it, or choose another with proxy\\.metrics_port`));
});

test('vllm.command that is missing, not executable or a script of a moved virtualenv: exit 2 with the fix, before the proxy starts', async (t) => {
  const notExecutable = path.join(await tempDir(), 'llmserve-not-exec');
  writeFileSync(notExecutable, '#!/bin/sh\n', { mode: 0o644 });
  // pip's entry-point script of a virtualenv that is no longer where it was installed.
  const moved = path.join(await tempDir(), 'vllm');
  writeFileSync(moved, '#!/opt/gone-venv/bin/python3\nimport sys\n', { mode: 0o755 });
  const cases = [
    ['no-such-vllm-binary serve', /cannot run "no-such-vllm-binary": ENOENT: not found on PATH/],
    [notExecutable, /cannot run ".*llmserve-not-exec": EACCES: not executable by this user/],
    [moved, /cannot run ".*\/vllm": ENOENT: the interpreter its #! line names, \/opt\/gone-venv\/bin\/python3, does not exist[^\n]*\n.*Fix: the environment it was installed in has moved or is gone; install vLLM/],
  ] as const;
  for (const [command, why] of cases) {
    const svc = await startService({ config: `vllm:\n  command: ${command}\n` });
    t.after(async () => assert.equal(await svc.run.cleanup(), 0, 'no process may be left behind'));
    assert.equal((await svc.run.exited).code, 2, svc.run.output());
    assert.match(svc.run.output(), why);
    assert.match(svc.run.output(), /Fix: /);
    // It used to start the proxy (and make its usage store) before the spawn failed.
    assert.ok(!svc.run.output().includes('listening on'), `the proxy must never have started:\n${svc.run.output()}`);
  }
});

test('TLS key of another certificate: exit 2 naming both files, before anything starts (was exit 3 from the proxy)', async (t) => {
  if (!hasOpenssl()) return void t.skip('openssl not installed');
  const dir = await tempDir('llmserve-tls-');
  const { cert } = selfSignedCert(dir);
  const otherKey = strayKey(dir);
  const line = await refused(t, { config: `proxy:\n  tls: { cert: ${cert}, key: ${otherKey} }\n` });
  assert.match(line, /TLS key file .*other-key\.pem is not the private key of the certificate in .*cert\.pem/);
});

test('public host that is not an address of this machine: named as such, not as a port in use', async (t) => {
  // 192.0.2.0/24 is TEST-NET-1 (RFC 5737): never assigned to a local interface, so listen() fails with EADDRNOTAVAIL.
  const line = await refused(t, { args: ['--host', '192.0.2.7'] });
  assert.doesNotMatch(line, /already in use/);
  assert.match(line, /public address "192\.0\.2\.7" is not an address of this machine \(EADDRNOTAVAIL\); use --host 0\.0\.0\.0/);
});

test('public host that does not resolve: named as such, not as a port in use', async (t) => {
  const line = await refused(t, { args: ['--host', 'no-such-host.invalid'] });
  assert.doesNotMatch(line, /already in use/);
  assert.match(line, /public host "no-such-host\.invalid" does not resolve to an address \((ENOTFOUND|EAI_AGAIN)\); use --host 0\.0\.0\.0/);
});

test('probe files are not created when the configuration is refused before the probe directory', async (t) => {
  const svc = await startService({ config: 'stall_timeout: -1\n' });
  t.after(async () => assert.equal(await svc.run.cleanup(), 0));
  assert.equal((await svc.run.exited).code, 2);
  assert.equal(existsSync(svc.probeDir), false);
});

test('a working directory that was deleted (a shell left in a removed checkout): exit 2 with the fix, not an internal error', async () => {
  const gone = path.join(await tempDir(), 'gone');
  const bin = new URL('../../bin/llmserve.js', import.meta.url).pathname;
  // The shell enters the directory, removes it, then runs llmserve there; check takes its lean entry, the rest the full CLI.
  for (const args of [['start', '--model', '/nonexistent/model'], ['probe', '--model', '/nonexistent/model'], ['check', '--timeout', '1'], ['usage'], ['init']]) {
    const child = spawn('/bin/sh', ['-c', 'mkdir "$1" && cd "$1" && rmdir "$1" && shift && exec "$@"', 'sh', gone, process.execPath, bin, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout!.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr!.on('data', (c: Buffer) => (out += c.toString()));
    const [code] = (await once(child, 'close')) as [number | null];
    assert.equal(code, 2, `${args[0]}: ${out}`);
    assert.match(out, /error: the current directory cannot be read \(ENOENT: it was deleted, or this user may not enter it\); cd to an existing directory/, args[0]);
    assert.doesNotMatch(out, /internal error|\n\s+at /, args[0]);
  }
});
