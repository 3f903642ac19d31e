// The one logger: colours per stream (a stderr sent to a file gets no escape codes).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createLogger } from '../../src/log.js';

function sink(isTTY: boolean) {
  const out: string[] = [];
  return { out, stream: { isTTY, write: (s: string) => out.push(s) } };
}

test('stdout on a terminal, stderr to a file (2>err.log): colours on stdout only, none in the file', () => {
  const env = { ...process.env };
  delete process.env.NO_COLOR;
  delete process.env.FORCE_COLOR;
  try {
    const out = sink(true);
    const err = sink(false);
    const logger = createLogger({ stdout: out.stream, stderr: err.stream });
    logger.info('hello');
    logger.error('broken');
    logger.warn('careful');
    logger.passthrough('proxy', '\x1b[35mproxy  |\x1b[39m \x1b[31merror: from the proxy\x1b[39m', 'stderr');
    assert.match(out.out.join(''), /\x1b\[/, 'stdout is a terminal: coloured');
    assert.equal(err.out.length, 3);
    assert.doesNotMatch(err.out.join(''), /\x1b/, err.out.join(''));
    assert.match(err.out.join(''), /llmserve \| error: broken\n/);
    assert.match(err.out.join(''), /proxy {2}\| error: from the proxy\n/);
  } finally {
    process.env = env;
  }
});

test('NO_COLOR: no escape codes on either stream, terminals or not', () => {
  const env = { ...process.env };
  process.env.NO_COLOR = '1';
  try {
    const out = sink(true);
    const err = sink(true);
    const logger = createLogger({ stdout: out.stream, stderr: err.stream });
    logger.info('hello');
    logger.error('broken');
    assert.doesNotMatch(out.out.join('') + err.out.join(''), /\x1b/);
  } finally {
    process.env = env;
  }
});
