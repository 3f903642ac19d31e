// Probe files: written atomically, and written again into a probe directory that was removed while llmserve ran.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import path from 'node:path';
import { NOT_HEALTHY, NOT_READY, probeFiles } from '../../src/probes/files.js';
import { tempDir } from '../helpers/fixtures.js';

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

test('a probe directory under /proc is refused at once (Node\'s recursive mkdir loops forever there)', { skip: existsSync('/proc/self') ? false : 'no /proc' }, () => {
  // In a child process: the old code never returned, and a synchronous loop cannot be interrupted in this one.
  const src = new URL('../../src/probes/files.ts', import.meta.url).href;
  const script = `import(${JSON.stringify(src)}).then((m) => m.writableProblem('/proc/llmserve-probe-test')).then((r) => console.log(String(r)))`;
  const r = spawnSync(process.execPath, ['--import', 'tsx', '-e', script], { encoding: 'utf8', timeout: 20_000, killSignal: 'SIGKILL' });
  assert.equal(r.signal, null, 'writableProblem must return, not loop');
  assert.match(r.stdout.trim(), /^E[A-Z]+$/, r.stderr);
});
