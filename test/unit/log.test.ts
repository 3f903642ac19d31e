// The one logger: colours per stream (a stderr sent to a file gets no escape codes) and the levels of vLLM's lines.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createLogger, MAX_BACKLOG_BYTES } from '../../src/log.js';
import { vllmLineLevel } from '../../src/engine/line-level.js';

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

test("vLLM's lines get vLLM's own level in JSON, not their stream's: progress bars on stderr are info, ERROR on stdout is error", () => {
  const out = sink(false);
  const logger = createLogger({ format: 'json', stdout: out.stream, stderr: out.stream });
  const lines: [string, 'stdout' | 'stderr', string][] = [
    ['(APIServer pid=10) INFO 11-26 10:00:10 [api_server.py:1971] Starting vLLM server on http://127.0.0.1:3000', 'stdout', 'info'],
    ['(APIServer pid=10) INFO:     Application startup complete.', 'stdout', 'info'],
    ['(APIServer pid=10) WARNING 11-26 10:00:01 [api_server.py:1800] something odd', 'stdout', 'warn'],
    ['(EngineCore_DP0 pid=12) ERROR 11-26 10:00:05 [core.py:708] EngineCore failed to start.', 'stdout', 'error'],
    ['(APIServer pid=10) CRITICAL 11-26 10:00:05 [launcher.py:116] Engine failed', 'stdout', 'error'],
    ['(APIServer pid=10) DEBUG 11-26 10:00:05 [utils.py:1] detail', 'stdout', 'debug'],
    // Multi-node: a Ray worker's lines reach vLLM's output with a prefix each for the engine and the worker.
    ['(EngineCore_DP0 pid=479) (RayWorkerWrapper pid=571) ERROR 11-26 10:00:05 [worker.py:1] CUDA error', 'stdout', 'error'],
    ['(EngineCore_DP0 pid=479) (RayWorkerWrapper pid=571, ip=10.0.0.2) WARNING 11-26 10:00:05 [x.py:1] slow', 'stdout', 'warn'],
    ['(EngineCore pid=12) Loading safetensors checkpoint shards:  50% Completed | 1/2 [00:01<00:01,  1.20it/s]', 'stderr', 'info'],
    ['(EngineCore pid=12) Capturing CUDA graphs (mixed prefill-decode, PIECEWISE): 40%|████      | 27/67', 'stderr', 'info'],
    ['(EngineCore pid=12) Traceback (most recent call last):', 'stderr', 'warn'],
    ['a line without a level', 'stdout', 'info'],
  ];
  for (const [line, stream] of lines) logger.child('vllm', line, stream, vllmLineLevel(line, stream));
  const levels = out.out.map((l) => (JSON.parse(l) as { level: string }).level);
  assert.deepEqual(levels, lines.map((l) => l[2]));
});

test('the terminal status line is cut to the terminal width: a wrapped one would leave a row behind at each redraw', () => {
  const out: string[] = [];
  const stdout = { isTTY: true, columns: 40, write: (s: string) => out.push(s) };
  const logger = createLogger({ stdout, stderr: stdout, color: false });
  const long = 'llmserve | loading weights (shard 1/2) [##########..........] 50%  0.5 s';
  logger.status(long);
  logger.info('a line above it');
  const drawn = out.map((w) => w.replace('\r\x1b[2K', '')).filter((w) => w.startsWith('llmserve | loading'));
  assert.equal(drawn.length, 2, JSON.stringify(out));
  for (const d of drawn) {
    assert.ok(d.length < 40, `${d.length} columns: ${d}`);
    assert.ok(long.startsWith(d.slice(0, -1)) && d.endsWith('…'), d);
  }
  out.length = 0;
  logger.status('llmserve | short  1 s');
  assert.deepEqual(out, ['\r\x1b[2K', '\r\x1b[2Kllmserve | short  1 s']);
});

test('a pipe whose reader stops reading: lines past the backlog cap are left out (memory stays bounded), counted, and the log file gets them all', () => {
  // A stdout whose reader took nothing for a while: Node keeps what was written in memory (writableLength).
  const out: string[] = [];
  const stdout = { isTTY: false, writableLength: MAX_BACKLOG_BYTES + 1, write: (s: string) => out.push(s) };
  const file: string[] = [];
  const logger = createLogger({ stdout, stderr: sink(false).stream, tee: (line) => file.push(line) });
  for (let i = 0; i < 1000; i++) logger.info(`request ${i}`);
  assert.deepEqual(out, [], 'nothing more is queued while the reader is behind');
  assert.equal(file.length, 1000, 'the log file gets every line');
  // The reader catches up: the next line goes out after a note that says how many were left out.
  stdout.writableLength = 0;
  logger.info('request 1000');
  assert.equal(out.length, 2, out.join(''));
  assert.match(out[0]!, /^llmserve \| warning: 1000 lines left out here: the stdout reader stopped taking them \(over 4 MiB waited\); --log-file has every line\n$/);
  assert.equal(out[1], 'llmserve | request 1000\n');
});
