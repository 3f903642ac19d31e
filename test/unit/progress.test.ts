// vLLM start-up phases and the progress display (terminal status line, or one line per phase).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { phaseOf } from '../../src/engine/phases.js';
import { createProgress } from '../../src/progress.js';
import { createLogger } from '../../src/log.js';

const vllmLines = [
  '(EngineCore pid=12) Loading safetensors checkpoint shards:  50% Completed | 1/2 [00:01<00:01,  1.20it/s]',
  '(EngineCore pid=12) INFO 11-26 10:00:03 [default_loader.py:262] Loading weights took 2.41 seconds',
  '(EngineCore pid=12) INFO 11-26 10:00:03 [gpu_model_runner.py:2653] Model loading took 3.35 GiB memory and 3.1 seconds',
  '(EngineCore pid=12) INFO 11-26 10:00:05 [gpu_worker.py:298] Available KV cache memory: 60.52 GiB',
  '(EngineCore pid=12) Capturing CUDA graphs (mixed prefill-decode, PIECEWISE): 40%|████      | 27/67',
  '(EngineCore pid=12) INFO 11-26 10:00:09 [core.py:210] init engine (profile, create kv cache, warmup model) took 6.20 seconds',
  '(APIServer pid=10) INFO 11-26 10:00:10 [api_server.py:1971] Starting vLLM server on http://127.0.0.1:3000',
  '(APIServer pid=10) INFO:     Application startup complete.',
];

test('every start-up phase of VLLM.md is recognised, with fractions where vLLM prints them', () => {
  const phases = vllmLines.map(phaseOf);
  assert.deepEqual(phases.map((p) => p?.id), ['loading-weights', 'weights-loaded', 'model-loaded', 'kv-cache', 'cuda-graphs', 'engine-ready', 'server-starting', 'server-started']);
  assert.equal(phases[0]?.fraction, 0.5);
  assert.equal(phases[4]?.fraction, 0.4);
  assert.match(phases[3]?.label ?? '', /60.52 GiB/);
  assert.equal(phaseOf('(APIServer pid=10) INFO some other line'), null);
});

function sink() {
  const out: string[] = [];
  return { out, stream: { write: (s: string) => out.push(s) } };
}

test('off a terminal: raw lines stay visible and llmserve adds one line per phase change', () => {
  const logs = sink();
  const logger = createLogger({ stdout: logs.stream, stderr: logs.stream, color: false });
  let t = 0;
  const progress = createProgress({ logger, tty: false, verbose: false, now: () => t });
  t = 1500;
  assert.equal(progress.showsRawLines(), true);
  progress.line(vllmLines[0]!);
  progress.line(vllmLines[0]!);
  progress.line('plain line');
  progress.line(vllmLines[1]!);
  progress.stop();
  assert.equal(logs.out.length, 2, logs.out.join(''));
  assert.match(logs.out[0]!, /vLLM: loading weights \(shard 1\/2\) \(1.5 s\)/);
  assert.ok(!logs.out.join('').includes('\r'), 'no status line off a terminal');
});

test('with several models each phase line names its model (the label), as start-ups interleave', () => {
  const logs = sink();
  const logger = createLogger({ stdout: logs.stream, stderr: logs.stream, color: false });
  const progress = createProgress({ logger, tty: false, verbose: false, now: () => 0, label: 'vLLM "beta"' });
  progress.line(vllmLines[0]!);
  progress.stop();
  assert.match(logs.out.join(''), /vLLM "beta": loading weights \(shard 1\/2\)/);
});

test('on a terminal: a status line with phase, bar and elapsed time, kept below log lines; raw lines hidden unless verbose', () => {
  const screen = sink();
  const logger = createLogger({ stdout: screen.stream, stderr: screen.stream, color: false });
  let t = 0;
  const progress = createProgress({ logger, tty: true, verbose: false, now: () => t });
  t = 12_000;
  assert.equal(progress.showsRawLines(), false);
  progress.line(vllmLines[0]!);
  assert.equal(screen.out.at(-1), '\r\x1b[2Kllmserve | loading weights (shard 1/2) [##########..........] 50%  12 s');
  logger.info('a log line while loading');
  // The status line is cleared, the log line written above it, and the status line drawn again.
  assert.deepEqual(screen.out.slice(-3), ['\r\x1b[2K', 'llmserve | a log line while loading\n', 'llmserve | loading weights (shard 1/2) [##########..........] 50%  12 s']);
  progress.stop();
  assert.equal(screen.out.at(-1), '\r\x1b[2K');
  assert.equal(progress.showsRawLines(), true, 'once stopped, every line is shown');
  const verbose = createProgress({ logger, tty: true, verbose: true, now: () => t });
  assert.equal(verbose.showsRawLines(), true);
  verbose.stop();
});
