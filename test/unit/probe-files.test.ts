// Probe files: written atomically, and written again into a probe directory that was removed while llmserve ran.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { chmodSync, chownSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { LlmserveError } from '../../src/errors.js';
import { NOT_HEALTHY, NOT_READY, prepareProbeDir, probeFiles, writableProblem } from '../../src/probes/files.js';
import { linuxProc, readRuntimeFile, removeRuntimeFile, RUNTIME_FILE, runningOwner, selfIdentity, trustedRuntimeFile, trustedUid, writeRuntimeFile, type ProcReader } from '../../src/supervisor/runtime-file.js';
import { tempDir } from '../helpers/fixtures.js';
import { waitFor } from '../helpers/wait.js';

test('a probe directory removed at run time (a /tmp cleaner) is made again, not an uncaught error', async () => {
  const dir = path.join(await tempDir(), 'probe');
  const probes = probeFiles(dir);
  rmSync(path.dirname(dir), { recursive: true, force: true });
  probes.set(NOT_HEALTHY, true);
  assert.ok(existsSync(path.join(dir, NOT_HEALTHY)));
  probes.set(NOT_READY, false);
  probes.markDown();
  assert.ok(existsSync(path.join(dir, NOT_READY)) && existsSync(path.join(dir, NOT_HEALTHY)));
  rmSync(path.dirname(dir), { recursive: true, force: true });
});

test('no room for data (a full disk): probe files are written empty, said once; nothing half-written is left', async () => {
  // A real refusal in a child: `ulimit -f 0` fails every data write with EFBIG (Node ignores SIGXFSZ), as a full disk
  // fails it with ENOSPC, while files can still be created empty.
  const dir = await tempDir();
  const files = new URL('../../src/probes/files.ts', import.meta.url).href;
  const writeNew = new URL('../../src/util/write-new.ts', import.meta.url).href;
  const script = `
    const { probeFiles, NOT_READY, NOT_HEALTHY } = await import(${JSON.stringify(files)});
    const { writeNewFile } = await import(${JSON.stringify(writeNew)});
    const said = [];
    const probes = probeFiles(${JSON.stringify(dir)}, { warn: (m) => said.push('warn: ' + m), error: (m) => said.push('error: ' + m) });
    probes.set(NOT_READY, true);
    probes.set(NOT_HEALTHY, true);
    probes.set(NOT_HEALTHY, false);
    probes.markDown();
    let thrown = null;
    try { writeNewFile(${JSON.stringify(path.join(dir, 'data'))}, 'some data'); } catch (err) { thrown = err.code; }
    console.log(JSON.stringify({ said, thrown }));`;
  const r = spawnSync('/bin/sh', ['-c', 'ulimit -f 0 && exec "$0" --import tsx --input-type=module -e "$1"', process.execPath, script], { encoding: 'utf8', timeout: 20_000 });
  assert.equal(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout.trim()) as { said: string[]; thrown: string };
  assert.equal(out.said.length, 1, out.said.join('\n'));
  assert.match(out.said[0]!, /^warn: the disk that holds .* is full \(EFBIG\): probe files are written empty while it is/);
  for (const name of [NOT_READY, NOT_HEALTHY]) assert.equal(readFileSync(path.join(dir, name), 'utf8'), '', `${name} present, empty`);
  assert.equal(out.thrown, 'EFBIG', 'the failed write is still an error for its caller');
  assert.deepEqual(readdirSync(dir).sort(), [NOT_HEALTHY, NOT_READY], 'no temporary or half-written file is left');
});

test('a disk that has room again and fills up later: the full-disk warning is said again, once per spell', { skip: existsSync('/usr/bin/prlimit') || existsSync('/bin/prlimit') ? false : 'no prlimit' }, async () => {
  // The child's file-size limit is lowered and raised from outside (prlimit), as a disk fills and is cleared; the
  // soft limit only, which a process may raise again up to its hard one.
  const dir = await tempDir();
  const files = new URL('../../src/probes/files.ts', import.meta.url).href;
  const script = `
    const { probeFiles } = await import(${JSON.stringify(files)});
    const probes = probeFiles(${JSON.stringify(dir)}, { warn: (m) => console.log('warn: ' + m), error: (m) => console.log('error: ' + m) });
    process.stdin.setEncoding('utf8');
    for await (const line of process.stdin) for (const name of line.split('\\n').filter(Boolean)) { probes.set(name, true); console.log('done ' + name); }`;
  const child = spawn('/bin/sh', ['-c', 'ulimit -S -f 0 && exec "$0" --import tsx --input-type=module -e "$1"', process.execPath, script], { stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const set = async (name: string) => {
    child.stdin.write(`${name}\n`);
    await waitFor(() => out.includes(`done ${name}`), { timeoutMs: 20_000, message: () => out });
  };
  const limit = (fsize: string) => assert.equal(spawnSync('prlimit', ['--pid', String(child.pid), `--fsize=${fsize}:`]).status, 0);
  try {
    await set('a'); // full: written empty, said
    limit('unlimited');
    await set('b'); // room again: written with its time
    limit('0');
    await set('c'); // full again: said again
  } finally {
    child.stdin.end();
    await once(child, 'exit');
  }
  const said = out.split('\n').filter((l) => l.startsWith('warn: '));
  assert.equal(said.length, 2, out);
  assert.deepEqual(['a', 'b', 'c'].map((n) => readFileSync(path.join(dir, n), 'utf8') !== ''), [false, true, false]);
});

test('a probe file that cannot be written at all is said as an error, never thrown (a serving vLLM must not go down for it)', async () => {
  const root = await tempDir();
  // The probe directory's name is taken by a file: every write fails (ENOTDIR), as on a read-only remount.
  const dir = path.join(root, 'probe');
  writeFileSync(dir, 'not a directory\n');
  const said: string[] = [];
  const probes = probeFiles(dir, { warn: (m) => said.push(`warn: ${m}`), error: (m) => said.push(`error: ${m}`) });
  probes.set(NOT_HEALTHY, true);
  probes.markDown();
  assert.equal(said.length, 3, said.join('\n'));
  assert.match(said[0]!, /^error: cannot create the probe file .*probe\/not-healthy \(ENOTDIR\): the platform does not see this change; fix the probe directory .* or choose another with --probe-dir$/);
});

test('a probe directory under /proc is refused at once (Node\'s recursive mkdir loops forever there)', { skip: existsSync('/proc/self') ? false : 'no /proc' }, () => {
  // In a child process: the old code never returned, and a synchronous loop cannot be interrupted in this one.
  const src = new URL('../../src/probes/files.ts', import.meta.url).href;
  const script = `import(${JSON.stringify(src)}).then((m) => m.writableProblem('/proc/llmserve-probe-test')).then((r) => console.log(String(r)))`;
  const r = spawnSync(process.execPath, ['--import', 'tsx', '-e', script], { encoding: 'utf8', timeout: 20_000, killSignal: 'SIGKILL' });
  assert.equal(r.signal, null, 'writableProblem must return, not loop');
  assert.match(r.stdout.trim(), /^E[A-Z]+$/, r.stderr);
});

test('a symlink planted at a temporary file name in the probe directory is replaced, never written through', async () => {
  // A shared, world-writable probe directory: another user can guess `.<name>.<pid>.tmp` and point it at a file of
  // ours, which a write that follows links would truncate and overwrite (as root: any file on the machine).
  const dir = await tempDir();
  const victim = path.join(await tempDir(), 'victim');
  const plant = (name: string) => symlinkSync(victim, path.join(dir, name));
  writeFileSync(victim, 'precious\n');
  plant(`.${NOT_READY}.${process.pid}.tmp`);
  plant(`.llmserve-write-test.${process.pid}`);
  plant(`llmserve.json.${process.pid}.tmp`);
  const probes = probeFiles(dir);
  probes.set(NOT_READY, true);
  assert.equal(await writableProblem(dir), null);
  writeRuntimeFile(dir, { pid: process.pid, startedAt: 'now', proxy: { host: '0.0.0.0', port: 1, tls: false }, backend: { host: '127.0.0.1', port: 2 }, models: ['m'] });
  assert.equal(readFileSync(victim, 'utf8'), 'precious\n');
  assert.match(readFileSync(path.join(dir, NOT_READY), 'utf8'), /^\d{4}-/);
  assert.match(readFileSync(path.join(dir, 'llmserve.json'), 'utf8'), /"pid"/);
  rmSync(dir, { recursive: true, force: true });
  rmSync(path.dirname(victim), { recursive: true, force: true });
});

test('runningOwner: a live llmserve that started before its runtime file owns the directory; a stale file does not', async () => {
  const dir = await tempDir();
  const info = { pid: 4242, startedAt: '2026-11-27T12:00:00.000Z', proxy: { host: '0.0.0.0', port: 8080, tls: false }, backend: { host: '127.0.0.1', port: 3000 }, models: ['m'] };
  const write = (over: object) => writeRuntimeFile(dir, { ...info, ...over });
  const at = (iso: string) => Date.parse(iso);
  // A file without the writer's identity (older versions): judged by the clock. startTicks is what /proc would say.
  const proc = (startedAt: number | null, cmdline: string | null, startTicks: string | null = '1', bootId = 'boot-a'): ProcReader => ({
    uid: () => process.getuid!(),
    startedAtMs: () => startedAt,
    startTicks: () => startTicks,
    bootId: () => bootId,
    cmdline: () => cmdline,
  });
  const llmserve = 'node /usr/lib/node_modules/llmserve/bin/llmserve.js start ';
  write({});
  assert.equal(runningOwner(dir, 1, proc(at('2026-11-27T11:59:58Z'), llmserve))?.pid, 4242, 'started 2 s before it wrote the file');
  assert.equal(runningOwner(dir, 1, proc(at('2026-11-27T12:00:00.900Z'), llmserve))?.pid, 4242, 'within the second of slack');
  // The pid reused since (a restarted container kept the file on its volume; tini is PID 1 there now).
  assert.equal(runningOwner(dir, 1, proc(at('2026-11-27T12:05:00Z'), 'tini -- llmserve start ')), null);
  assert.equal(runningOwner(dir, 1, proc(null, null)), null, 'the pid is gone');
  assert.equal(runningOwner(dir, 1, proc(at('2026-11-27T11:00:00Z'), 'python3 -m http.server ')), null, 'not llmserve');
  assert.equal(runningOwner(dir, 4242, proc(at('2026-11-27T11:00:00Z'), llmserve)), null, 'this process\'s own file');
  write({ startedAt: 'yesterday' });
  assert.equal(runningOwner(dir, 1, proc(at('2026-11-27T11:00:00Z'), llmserve)), null, 'a file that cannot be judged is ignored');
  // The real /proc: this test process, named by a file written just now, owns it.
  writeRuntimeFile(dir, { ...info, pid: process.pid, startedAt: new Date().toISOString() });
  assert.equal(runningOwner(dir, 1, { ...linuxProc, cmdline: () => 'llmserve' })?.pid, process.pid);
  writeRuntimeFile(dir, { ...info, pid: process.pid, startedAt: new Date(Date.now() - 3_600_000).toISOString() });
  assert.equal(runningOwner(dir, 1, { ...linuxProc, cmdline: () => 'llmserve' }), null, 'this process started after that file');
});

test('runningOwner: a file that names its writer exactly (start tick and boot) is judged by those, not by the clock', async () => {
  const dir = await tempDir();
  const llmserve = 'node /usr/lib/node_modules/llmserve/bin/llmserve.js start ';
  const proc = (startTicks: string | null, bootId: string, startedAt: number): ProcReader => ({ uid: () => process.getuid!(), startedAtMs: () => startedAt, startTicks: () => startTicks, bootId: () => bootId, cmdline: () => llmserve });
  writeRuntimeFile(dir, {
    pid: 4242,
    startedAt: '2026-11-27T12:00:00.000Z',
    process: { startTicks: '123456', bootId: 'boot-a' },
    proxy: { host: '0.0.0.0', port: 8080, tls: false },
    backend: { host: '127.0.0.1', port: 3000 },
    models: ['m'],
  });
  const before = Date.parse('2026-11-27T11:59:00Z');
  const after = Date.parse('2026-11-27T12:05:00Z');
  assert.equal(runningOwner(dir, 1, proc('123456', 'boot-a', before))?.pid, 4242, 'the writer itself');
  // The writer, although the clock now puts its start after the file (the clock was stepped back since).
  assert.equal(runningOwner(dir, 1, proc('123456', 'boot-a', after))?.pid, 4242, 'the writer, whatever the clock says');
  // A restarted container whose clock was stepped forward: the new llmserve with the old pid looks older than the file.
  assert.equal(runningOwner(dir, 1, proc('999999', 'boot-a', before)), null, 'the pid reused by a later process');
  assert.equal(runningOwner(dir, 1, proc('123456', 'boot-b', before)), null, 'the same tick after a reboot');
  assert.equal(runningOwner(dir, 1, proc(null, 'boot-a', before)), null, 'a zombie, or gone');
  // The real /proc: the identity start writes for this process names this process.
  const self = selfIdentity();
  assert.ok(self !== null && /^\d+$/.test(self.startTicks) && self.bootId.length > 0, JSON.stringify(self));
  writeRuntimeFile(dir, { pid: process.pid, startedAt: new Date(Date.now() + 3_600_000).toISOString(), process: self, proxy: { host: '0.0.0.0', port: 1, tls: false }, backend: { host: '127.0.0.1', port: 2 }, models: ['m'] });
  assert.equal(runningOwner(dir, 1, { ...linuxProc, cmdline: () => 'llmserve' })?.pid, process.pid);
  writeRuntimeFile(dir, { pid: process.pid, startedAt: new Date(Date.now() - 3_600_000).toISOString(), process: { ...self, startTicks: String(Number(self.startTicks) + 1) }, proxy: { host: '0.0.0.0', port: 1, tls: false }, backend: { host: '127.0.0.1', port: 2 }, models: ['m'] });
  assert.equal(runningOwner(dir, 1, { ...linuxProc, cmdline: () => 'llmserve' }), null, 'another start tick: another process, although the clock says it is older');
});

test("runningOwner and readRuntimeFile: another user's file or process is never believed (a shared probe directory)", async () => {
  // Any local user can write in a directory of mode 1777: a planted file naming their own process, called
  // `llmserve`, would make check send the key to their port and start refuse the directory.
  const dir = await tempDir();
  const llmserve = 'node /usr/lib/node_modules/llmserve/bin/llmserve.js start ';
  writeRuntimeFile(dir, { pid: 4242, startedAt: '2026-11-27T12:00:00.000Z', process: { startTicks: '7', bootId: 'boot-a' }, proxy: { host: '0.0.0.0', port: 8080, tls: false }, backend: { host: '127.0.0.1', port: 3000 }, models: ['m'] });
  const asUser = (uid: number): ProcReader => ({ uid: () => uid, startedAtMs: () => 0, startTicks: () => '7', bootId: () => 'boot-a', cmdline: () => llmserve });
  const me = process.getuid!();
  assert.equal(runningOwner(dir, 1, asUser(me))?.pid, 4242, "this user's llmserve");
  assert.equal(runningOwner(dir, 1, asUser(0))?.pid, 4242, "root's llmserve (a check run as another user in the container)");
  const other = me === 0 ? 65534 : me + 1;
  assert.equal(runningOwner(dir, 1, asUser(other)), null, "another user's process named llmserve");
  assert.equal(readRuntimeFile(dir)?.pid, 4242, 'a file this user wrote');
  assert.equal(readRuntimeFile(dir, (uid) => uid !== me), null, 'a file owned by a user not trusted');
  assert.equal(trustedUid(other, me), false);
  if (me === 0) {
    // The file system's own answer: a file another user owns.
    chownSync(path.join(dir, 'llmserve.json'), 65534, 65534);
    assert.equal(readRuntimeFile(dir), null, "a file owned by nobody, read by root");
  }
});

test("runtime files of a start run as a service user: believed when that user owns the directory and no one else may write there", async () => {
  // An entrypoint drops root to run start; `kubectl exec` runs check, or a second start, as root.
  assert.equal(trustedRuntimeFile(1000, { uid: 1000, mode: 0o40755 }, 0), true, "the directory owner's file, in a directory only it writes");
  assert.equal(trustedRuntimeFile(1000, { uid: 1000, mode: 0o40775 }, 0), false, 'a directory its group may write');
  assert.equal(trustedRuntimeFile(1000, { uid: 1000, mode: 0o41777 }, 0), false, 'a directory anyone may write (sticky or not)');
  assert.equal(trustedRuntimeFile(1001, { uid: 1000, mode: 0o40755 }, 0), false, "another user's file there");
  assert.equal(trustedRuntimeFile(0, { uid: 1000, mode: 0o41777 }, 1000), true, "root's file");
  if (process.getuid!() !== 0) return;
  // With real owners: a service user's start, read by root.
  const dir = await tempDir();
  writeRuntimeFile(dir, { pid: 4242, startedAt: '2026-11-27T12:00:00.000Z', process: { startTicks: '7', bootId: 'boot-a' }, proxy: { host: '0.0.0.0', port: 8080, tls: false }, backend: { host: '127.0.0.1', port: 3000 }, models: ['m'] });
  chownSync(path.join(dir, 'llmserve.json'), 65534, 65534);
  chownSync(dir, 65534, 65534);
  const asService: ProcReader = { uid: () => 65534, startedAtMs: () => 0, startTicks: () => '7', bootId: () => 'boot-a', cmdline: () => 'node llmserve.js start' };
  assert.equal(runningOwner(dir, 1, asService)?.pid, 4242, "the service user's llmserve owns its directory");
  assert.equal(runningOwner(dir, 1, { ...asService, uid: () => 65533 }), null, 'a process of a third user');
  chmodSync(dir, 0o1777);
  assert.equal(runningOwner(dir, 1, asService), null, 'the same in a directory anyone may write');
});

test('the default probe directory is not writable: a temporary one, and the warning names the check command that finds it', async () => {
  const root = await tempDir();
  // A file where the directory should be: not writable, even for root.
  writeFileSync(path.join(root, 'etc'), '');
  const saved = process.env.TMPDIR;
  process.env.TMPDIR = root;
  try {
    const warnings: string[] = [];
    const dir = await prepareProbeDir(path.join(root, 'etc', 'probe'), false, (m) => warnings.push(m));
    assert.ok(dir.startsWith(path.join(root, 'llmserve-probe-')), dir);
    assert.equal(warnings.length, 1);
    assert.ok(warnings[0]!.includes(`using ${dir} instead (check this start with: llmserve check --probe-dir ${dir})`), warnings[0]);
  } finally {
    if (saved === undefined) delete process.env.TMPDIR;
    else process.env.TMPDIR = saved;
  }
});

test('the default probe directory is not writable and TMPDIR names a missing directory: a PROBE_DIR error (exit 2), not an internal error', async () => {
  const root = await tempDir();
  // A file where the directory should be: not writable, even for root.
  writeFileSync(path.join(root, 'etc'), '');
  const saved = process.env.TMPDIR;
  process.env.TMPDIR = path.join(root, 'missing');
  try {
    await assert.rejects(prepareProbeDir(path.join(root, 'etc', 'probe'), false, () => {}), (err: unknown) => {
      assert.ok(err instanceof LlmserveError, String(err));
      assert.equal(err.code, 'PROBE_DIR');
      assert.equal(err.exitCode, 2);
      assert.match(err.message, /default probe directory .*etc\/probe is not writable \(ENOTDIR\), and no temporary one can be made in .*missing \(ENOENT\)$/);
      assert.match(err.details[0]!, /--probe-dir DIR .* TMPDIR/);
      return true;
    });
  } finally {
    if (saved === undefined) delete process.env.TMPDIR;
    else process.env.TMPDIR = saved;
  }
});

test('removing the runtime file on the way out never throws (a probe directory remounted read-only): it says why', async () => {
  const dir = await tempDir();
  writeRuntimeFile(dir, { pid: process.pid, startedAt: new Date().toISOString(), proxy: { host: '0.0.0.0', port: 1, tls: false }, backend: { host: '127.0.0.1', port: 2 }, models: ['m'], backends: [], require: 'all' });
  assert.equal(removeRuntimeFile(dir), null);
  assert.equal(existsSync(path.join(dir, RUNTIME_FILE)), false);
  // A removal that fails (as on EROFS, which root cannot be made to meet here): a non-empty directory in its place.
  mkdirSync(path.join(dir, RUNTIME_FILE, 'x'), { recursive: true });
  assert.match(String(removeRuntimeFile(dir)), /EISDIR|ENOTEMPTY|EPERM/);
});
