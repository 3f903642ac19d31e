// The tests' free ports are claimed across processes: test files run in parallel, and a port drawn by two of them
// would be bound twice (the fake vLLM sets SO_REUSEPORT, as vLLM does, so on Node 22 and later both binds succeed).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { once } from 'node:events';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { claimPort } from '../helpers/free-port.mjs';
import { waitFor } from '../helpers/wait.js';

const helper = pathToFileURL(path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', 'helpers', 'free-port.mjs')).href;

test('a port another process drew is claimed until that process exits: no other process is handed it meanwhile', async (t) => {
  // The other process: draws a port, says it, and exits when its stdin closes.
  const child = spawn(process.execPath, ['--input-type=module', '-e', `const { freePort } = await import(${JSON.stringify(helper)}); console.log(await freePort()); process.stdin.resume(); process.stdin.on('end', () => process.exit(0));`], { stdio: ['pipe', 'pipe', 'inherit'] });
  t.after(() => child.kill('SIGKILL'));
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  await waitFor(() => out.includes('\n'), { timeoutMs: 10_000, message: 'the other process to draw a port' });
  const port = Number(out.trim());
  const claim = path.join(os.tmpdir(), 'llmserve-test-ports', String(port));
  assert.equal(readFileSync(claim, 'utf8'), String(child.pid), 'the claim names the process that drew the port');
  assert.equal(claimPort(port), false, 'not handed to this process while the other holds it');
  child.stdin.end();
  await once(child, 'exit');
  assert.equal(existsSync(claim), false, 'released when the process exits');
  assert.equal(claimPort(port), true, 'free to claim once released');
  assert.equal(readFileSync(claim, 'utf8'), String(process.pid));
});
