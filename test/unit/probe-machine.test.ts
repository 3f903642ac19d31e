// probe's machine facts: ports (why one cannot be bound), the probe directory (without creating it), TLS files, a running start.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, renameSync, symlinkSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { portFact, probeDirFact, runningFact, unreadableTlsFiles } from '../../src/probe/machine.js';
import { writeRuntimeFile } from '../../src/supervisor/runtime-file.js';
import { logFileOpenError, openLogFile } from '../../src/commands/log-file.js';
import { withTimeout } from '../helpers/wait.js';
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

test('probeDirFact: a symlink to nowhere (a volume not mounted), or under one, is not writable, as start finds', async () => {
  const dir = await tempDir();
  const link = path.join(dir, 'link');
  symlinkSync(path.join(dir, 'not-mounted', 'probe'), link);
  assert.deepEqual(await probeDirFact(link, true), { dir: link, explicit: true, exists: false, writable: false, error: 'ENOENT (a symlink whose target does not exist)' });
  const under = path.join(link, 'probe');
  assert.deepEqual(await probeDirFact(under, true), { dir: under, explicit: true, exists: false, writable: false, error: `ENOENT (${link} is a symlink whose target does not exist)` });
  // A link to a directory that exists is that directory.
  symlinkSync(dir, path.join(dir, 'good'));
  assert.equal((await probeDirFact(path.join(dir, 'good', 'probe'), true)).writable, true);
});

test('logFileOpenError: what start would meet opening its log file, without creating it', async () => {
  const dir = await tempDir();
  const missing = path.join(dir, 'llmserve.log');
  assert.equal(await logFileOpenError(missing), null);
  assert.equal(existsSync(missing), false, 'probe must not create the log file');
  writeFileSync(missing, 'old line\n');
  assert.equal(await logFileOpenError(missing), null);
  assert.equal((await logFileOpenError(path.join(dir, 'no-such-dir', 'x.log')))?.code, 'ENOENT');
  mkdirSync(path.join(dir, 'a-dir'));
  assert.equal((await logFileOpenError(path.join(dir, 'a-dir')))?.code, 'EISDIR');
  assert.equal((await logFileOpenError(path.join(missing, 'x.log')))?.code, 'ENOTDIR');
  // A dangling symlink: start's open creates its target, so only the target's directory counts.
  symlinkSync(path.join(dir, 'gone', 'x.log'), path.join(dir, 'to-gone.log'));
  assert.equal((await logFileOpenError(path.join(dir, 'to-gone.log')))?.code, 'ENOENT');
  symlinkSync(path.join(dir, 'made-later.log'), path.join(dir, 'to-new.log'));
  assert.equal(await logFileOpenError(path.join(dir, 'to-new.log')), null);
  // A trailing slash names a directory: start's open fails with EISDIR even where nothing is there.
  assert.equal((await logFileOpenError(path.join(dir, 'new.log') + '/'))?.code, 'EISDIR');
  // A FIFO without a reader is not opened (that would wait for a reader): only its permission is looked at.
  const fifo = path.join(dir, 'log.fifo');
  execFileSync('mkfifo', [fifo]);
  assert.equal(await withTimeout(logFileOpenError(fifo), 5000, 'a FIFO checked without opening it'), null);
});

test('openLogFile: SIGHUP\'s reopen leaves a FIFO alone (opening it again would wait for a reader) and follows a renamed file', async () => {
  const dir = await tempDir();
  const fifo = path.join(dir, 'log.fifo');
  execFileSync('mkfifo', [fifo]);
  // In a process of its own, with a deadline: a reopen that waited for a reader would hang the test runner otherwise.
  const script = `
    const { spawn } = require('node:child_process');
    const reader = spawn('cat', [${JSON.stringify(fifo)}], { stdio: ['ignore', 'ignore', 'ignore'] });
    import(${JSON.stringify(path.resolve('src/commands/log-file.ts'))}).then(({ openLogFile }) => {
      const log = openLogFile(${JSON.stringify(fifo)}, () => {});
      log('first');
      reader.kill('SIGKILL');
      reader.on('exit', () => { console.log('reopen:' + log.reopen()); process.exit(0); });
    });`;
  const r = spawnSync(process.execPath, ['--import', 'tsx', '-e', script], { timeout: 30_000, encoding: 'utf8' });
  assert.equal(r.status, 0, `${r.signal ?? ''} ${r.stderr}`);
  assert.match(r.stdout, /reopen:null/);
  // A regular file renamed away: the next lines go to a new file at the path.
  const file = path.join(dir, 'llmserve.log');
  const log = openLogFile(file, () => {});
  log('before');
  renameSync(file, `${file}.1`);
  assert.equal(log.reopen(), null);
  log('after');
  assert.equal(readFileSync(file, 'utf8'), 'after\n');
  assert.equal(readFileSync(`${file}.1`, 'utf8'), 'before\n');
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
