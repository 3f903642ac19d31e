// Probe files: written atomically, and written again into a probe directory that was removed while llmserve ran.
import { test } from 'node:test';
import assert from 'node:assert/strict';
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
