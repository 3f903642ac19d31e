// The proxy child's batched stdout: one write per batch, stderr lines keep their order, nothing lost on flush.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { batchedOutput } from '../../src/proxy/batched-output.js';
import { until } from '../helpers/upstream.js';

function sink(): { writes: string[]; write(chunk: string): boolean } {
  const writes: string[] = [];
  return { writes, write: (chunk: string) => (writes.push(chunk), true) };
}

describe('batched proxy output', () => {
  it('writes the lines of one batch at once, after the delay', async () => {
    const [out, err] = [sink(), sink()];
    const b = batchedOutput(out, err, 5);
    b.stdout.write('a\n');
    b.stdout.write('b\n');
    assert.deepEqual(out.writes, []);
    await until(() => out.writes.length > 0, 2000, 'the batch to be written');
    assert.deepEqual(out.writes, ['a\nb\n']);
  });

  it('flushes stdout before an stderr line, past maxBytes, and on flush()', () => {
    const [out, err] = [sink(), sink()];
    const b = batchedOutput(out, err, 10_000, 8);
    b.stdout.write('one\n');
    b.stderr.write('warning\n');
    assert.deepEqual(out.writes, ['one\n']);
    assert.deepEqual(err.writes, ['warning\n']);
    b.stdout.write('0123456789\n');
    assert.deepEqual(out.writes, ['one\n', '0123456789\n']);
    b.stdout.write('last\n');
    b.flush();
    assert.deepEqual(out.writes, ['one\n', '0123456789\n', 'last\n']);
  });
});
