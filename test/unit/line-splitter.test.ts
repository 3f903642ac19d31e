// Splitting a child's output into lines: line ends, carriage-return frames, and UTF-8 split across pipe reads.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { lineSplitter } from '../../src/log.js';

/** The lines `chunks` give, pushed one by one, then flushed. */
function split(chunks: (Buffer | string)[]): string[] {
  const lines: string[] = [];
  const s = lineSplitter((l) => lines.push(l));
  for (const c of chunks) s.push(c);
  s.flush();
  return lines;
}

test('lines end at \\n, \\r\\n and \\r (tqdm frames); empty ones are dropped; the rest comes with flush', () => {
  assert.deepEqual(split(['a\nb\r\n', '\rframe 1\rframe 2\nlast']), ['a', 'b', 'frame 1', 'frame 2', 'last']);
});

test('a multi-byte character split between two reads stays whole', () => {
  // vLLM's CUDA-graph bar is drawn with █ (3 bytes); a pipe read may end after any byte of it.
  const bytes = Buffer.from('(EngineCore pid=7) Capturing CUDA graphs: 100%|██| 67/67 模型\n', 'utf8');
  for (let cut = 1; cut < bytes.length; cut++) {
    assert.deepEqual(split([bytes.subarray(0, cut), bytes.subarray(cut)]), ['(EngineCore pid=7) Capturing CUDA graphs: 100%|██| 67/67 模型'], `cut at byte ${cut}`);
  }
  // A truncated character at the very end is still flushed (as U+FFFD), not lost.
  assert.deepEqual(split([Buffer.from([0x61, 0xe2, 0x96])]), ['a\ufffd']);
});
