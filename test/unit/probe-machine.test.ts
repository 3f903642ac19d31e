// probe's machine facts: ports (why one cannot be bound), the probe directory (without creating it), TLS files, a running start.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { portFact, probeDirFact, runningFact, unreadableTlsFiles } from '../../src/probe/machine.js';
import { writeRuntimeFile } from '../../src/supervisor/runtime-file.js';
import { tempDir } from '../helpers/fixtures.js';

test('portFact: free, then EADDRINUSE while something listens', async (t) => {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise<void>((resolve) => server.close(() => resolve())));
  const port = (server.address() as net.AddressInfo).port;
  assert.deepEqual(await portFact(port, '127.0.0.1'), { host: '127.0.0.1', port, free: false, error: 'EADDRINUSE' });
  await new Promise<void>((resolve) => server.close(() => resolve()));
  assert.deepEqual(await portFact(port, '127.0.0.1'), { host: '127.0.0.1', port, free: true, error: null });
});

test('probeDirFact: existing and writable, missing but creatable (not created), under a regular file', async () => {
  const dir = await tempDir();
  assert.deepEqual(await probeDirFact(dir, true), { dir, explicit: true, exists: true, writable: true, error: null });
  const missing = path.join(dir, 'a', 'b');
  assert.deepEqual(await probeDirFact(missing, false), { dir: missing, explicit: false, exists: false, writable: true, error: null });
  assert.equal(existsSync(path.join(dir, 'a')), false, 'probe must not create the directory');
  const file = path.join(dir, 'plain-file');
  writeFileSync(file, '');
  assert.deepEqual(await probeDirFact(path.join(file, 'sub'), true), { dir: path.join(file, 'sub'), explicit: true, exists: false, writable: false, error: 'ENOTDIR' });
  assert.deepEqual(await probeDirFact(file, true), { dir: file, explicit: true, exists: true, writable: false, error: 'ENOTDIR' });
});

test('unreadableTlsFiles and runningFact', async () => {
  const dir = await tempDir();
  const cert = path.join(dir, 'cert.pem');
  writeFileSync(cert, 'x');
  assert.deepEqual(await unreadableTlsFiles(null), []);
  assert.deepEqual(await unreadableTlsFiles({ cert, key: path.join(dir, 'key.pem') }), [['proxy.tls.key', path.join(dir, 'key.pem'), 'ENOENT']]);
  assert.equal(runningFact(dir), null);
  const info = { startedAt: '', proxy: { host: '0.0.0.0', port: 1, tls: false }, backend: { host: '127.0.0.1', port: 2 }, models: ['m'] };
  writeRuntimeFile(dir, { pid: process.pid, ...info });
  assert.deepEqual(runningFact(dir), { pid: process.pid, alive: true, owner: null }, 'a file that cannot be judged (no start time) owns nothing');
  writeRuntimeFile(dir, { pid: 2 ** 22 + 1, ...info });
  assert.deepEqual(runningFact(dir), { pid: 2 ** 22 + 1, alive: false, owner: null });
});
