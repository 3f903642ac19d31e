// wholeLineWriter: a disk that fills mid-line costs lines, never their framing (each line written stays one line).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { wholeLineWriter } from '../../src/util/output.js';

/** A file of `room` bytes: a write takes what fits (a short write), then fails with ENOSPC, as a full disk does. */
function smallDisk(room: number) {
  let written = '';
  const write = (_fd: number, data: Buffer, offset: number): number => {
    const left = room - written.length;
    if (left <= 0) throw Object.assign(new Error('no space'), { code: 'ENOSPC' });
    const part = data.subarray(offset, offset + left).toString('latin1');
    written += part;
    return part.length;
  };
  return { write, text: () => written, grow: (bytes: number) => (room += bytes) };
}

test('a line cut by a full disk is ended before the next line once there is room: no line glued to another', () => {
  const disk = smallDisk(30);
  const writeLine = wholeLineWriter(3, disk.write);
  writeLine('{"msg":"first"}\n');
  assert.throws(() => writeLine('{"msg":"cut in the middle"}\n'), { code: 'ENOSPC' });
  assert.throws(() => writeLine('{"msg":"lost while full"}\n'), { code: 'ENOSPC' });
  disk.grow(100);
  writeLine('{"msg":"after"}\n');
  const lines = disk.text().split('\n');
  // Before, the line after the cut was written right behind it: `{"msg":"cu{"msg":"after"}`, no JSON.
  assert.deepEqual(lines, ['{"msg":"first"}', '{"msg":"cut in', '{"msg":"after"}', '']);
  assert.deepEqual(lines.filter((l) => l.startsWith('{"msg":"after')).map((l) => JSON.parse(l)), [{ msg: 'after' }]);
  // Whole lines: nothing added between them.
  const whole = smallDisk(1000);
  const w = wholeLineWriter(3, whole.write);
  w('a\n');
  w('b\n');
  assert.equal(whole.text(), 'a\nb\n');
});
