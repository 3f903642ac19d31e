// The key ring at a proxy's (re)start: a keys file whose limits a reload was refused for is kept, and said loudly.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createKeyRing } from '../../src/proxy/keyring.js';
import { memoryLogger, sha256Hex } from '../helpers/upstream.js';

test('createKeyRing: limits this proxy cannot count as one are logged as an error at start, the keys kept', async () => {
  const { logger, lines } = memoryLogger();
  const fromFile = [{ name: 'bob', sha256Hex: sha256Hex('bob-key-0123456789abcdef'), policy: { rpm: 2 } }];
  const ring = await createKeyRing(
    [{ name: 'master', sha256Hex: sha256Hex('master-key-0123456789abcdef') }],
    '/etc/llmserve/keys.yaml',
    logger,
    async () => fromFile,
    () => 'it now gives limits to bob, but the proxy runs 2 processes',
  );
  assert.deepEqual(ring.entries().map((e) => e.name), ['master', 'bob']);
  assert.ok(lines.some((l) => /error: \/etc\/llmserve\/keys\.yaml: it now gives limits to bob, but the proxy runs 2 processes; until then each process counts these limits on its own/.test(l)), lines.join('\n'));
  // Nothing refused: nothing said.
  const quiet = memoryLogger();
  await createKeyRing([], '/k.yaml', quiet.logger, async () => fromFile, () => null);
  assert.deepEqual(quiet.lines, []);
});
