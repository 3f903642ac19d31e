// The Node flags the supervisor gives the proxy: ours by default, the user's own when they set the same one.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PROXY_NODE_FLAGS, proxyNodeFlags } from '../../src/proxy/node-flags.js';

test('by default the proxy gets the fixed young generation', () => {
  assert.deepEqual(PROXY_NODE_FLAGS, ['--max-semi-space-size=16']);
  assert.deepEqual(proxyNodeFlags([], undefined), ['--max-semi-space-size=16']);
  assert.deepEqual(proxyNodeFlags(['--enable-source-maps'], '--max-old-space-size=2048'), ['--max-semi-space-size=16']);
});

test("the user's own semi-space size wins, in NODE_OPTIONS or as a flag of llmserve's Node, with dashes or underscores", () => {
  assert.deepEqual(proxyNodeFlags([], '--max-semi-space-size=64'), []);
  assert.deepEqual(proxyNodeFlags([], '  --trace-warnings   --max_semi_space_size=32 '), []);
  assert.deepEqual(proxyNodeFlags(['--max-semi-space-size=8'], undefined), []);
  assert.deepEqual(proxyNodeFlags(['--max-semi-space-size', '8'], undefined), []);
});

test('the flag is one this Node accepts', async () => {
  const { execFile } = await import('node:child_process');
  const { promisify } = await import('node:util');
  const { stdout } = await promisify(execFile)(process.execPath, [...PROXY_NODE_FLAGS, '-e', 'console.log("ok")']);
  assert.equal(stdout.trim(), 'ok');
});
