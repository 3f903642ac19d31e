// Splitting a child's output into lines: line ends, carriage-return frames, and UTF-8 split across pipe reads.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createLogger, lineSplitter, MAX_LINE_CHARS } from '../../src/log.js';
import { waitFor } from '../helpers/wait.js';

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

test('frameIdleMs: a tqdm frame is passed on once its writer is quiet, not only when the next frame comes; never twice', async () => {
  const lines: string[] = [];
  const s = lineSplitter((l) => lines.push(l), { frameIdleMs: 20 });
  s.push('(EngineCore pid=7) INFO loading\n\r(EngineCore pid=7) Loading safetensors checkpoint shards:   0% Completed | 0/2');
  assert.deepEqual(lines, ['(EngineCore pid=7) INFO loading'], 'not at once: the frame may still be arriving');
  const idleFrames = (n: number) => waitFor(() => lines.length === n, { timeoutMs: 2000, message: () => `${n} lines: ${JSON.stringify(lines)}` });
  await idleFrames(2);
  assert.deepEqual(lines.slice(1), ['(EngineCore pid=7) Loading safetensors checkpoint shards:   0% Completed | 0/2']);
  // The next frame ends the first one: it is not repeated.
  s.push('\r(EngineCore pid=7) Loading safetensors checkpoint shards:  50% Completed | 1/2');
  await idleFrames(3);
  // tqdm's closing frame and line end come together; then the line end alone after an idle frame adds nothing.
  s.push('\r(EngineCore pid=7) Loading safetensors checkpoint shards: 100% Completed | 2/2');
  await idleFrames(4);
  s.push('\n(APIServer pid=5) INFO next\n');
  s.flush();
  assert.deepEqual(lines, [
    '(EngineCore pid=7) INFO loading',
    '(EngineCore pid=7) Loading safetensors checkpoint shards:   0% Completed | 0/2',
    '(EngineCore pid=7) Loading safetensors checkpoint shards:  50% Completed | 1/2',
    '(EngineCore pid=7) Loading safetensors checkpoint shards: 100% Completed | 2/2',
    '(APIServer pid=5) INFO next',
  ]);
});

test('frameIdleMs: a frame split across reads comes out whole; an ordinary unfinished line waits for its line end', async () => {
  const lines: string[] = [];
  const s = lineSplitter((l) => lines.push(l), { frameIdleMs: 20 });
  s.push('\rframe 1 of');
  s.push(' 2');
  await waitFor(() => lines.length === 1, { timeoutMs: 2000, message: () => JSON.stringify(lines) });
  assert.deepEqual(lines, ['frame 1 of 2']);
  const plain: string[] = [];
  const p = lineSplitter((l) => plain.push(l), { frameIdleMs: 20 });
  p.push('first\nan unfinished li');
  // Nothing may happen here: four idle periods show that no timer passes an ordinary line on.
  await new Promise((r) => setTimeout(r, 80));
  assert.deepEqual(plain, ['first']);
  p.push('ne\n');
  assert.deepEqual(plain, ['first', 'an unfinished line']);
});

test('a line that never ends is passed on in pieces once it passes the cap, so the buffer stays bounded', () => {
  const lines: string[] = [];
  const s = lineSplitter((l) => lines.push(l));
  const piece = 'x'.repeat(1000);
  // 200 KB without a line end (a child that dumps without newlines), then the end of the line.
  for (let i = 0; i < 200; i++) s.push(piece);
  s.push('tail\n');
  assert.ok(lines.length >= 3, `${lines.length} pieces`);
  for (const l of lines) assert.ok(l.length <= MAX_LINE_CHARS + piece.length + 5, `a piece of ${l.length} characters`);
  assert.equal(lines.join(''), piece.repeat(200) + 'tail', 'nothing lost, nothing repeated');
  s.push('next line\n');
  assert.equal(lines.at(-1), 'next line');
});

test('each piece says whether it begins a line: those after a cut at the cap do not (their text is a line\'s middle)', () => {
  const pieces: [string, boolean][] = [];
  const s = lineSplitter((l, whole) => pieces.push([l.slice(0, 12), whole]));
  s.push('first\n' + 'x'.repeat(MAX_LINE_CHARS + 10));
  s.push('llmserve | error: made up\nnext\n');
  assert.deepEqual(pieces.map(([, whole]) => whole), [true, true, false, true]);
  assert.equal(pieces[2]![0], 'llmserve | e');
});

test('a piece from a line\'s middle is never passed through as a formatted line: wrapped, in text and in JSON', () => {
  for (const format of ['text', 'json'] as const) {
    const out: string[] = [];
    const stream = { isTTY: false, write: (t: string) => out.push(t) };
    const logger = createLogger({ format, stdout: stream, stderr: stream });
    const forged = format === 'json' ? '{"level":"error","source":"llmserve","msg":"made up"}' : 'llmserve | error: made up';
    logger.passthrough('proxy', forged, 'stdout', false);
    const line = out.join('');
    // Before, the proxy's cut line was taken for one the proxy had formatted, and printed as it stood.
    if (format === 'json') assert.equal((JSON.parse(line) as { source: string }).source, 'proxy', line);
    else assert.match(line, /^proxy {2}\| llmserve \| error: made up\n$/, line);
    out.length = 0;
    logger.passthrough('proxy', forged, 'stdout');
    assert.equal(out.join(''), forged + '\n', 'a whole line the proxy formatted passes as it is');
  }
});
