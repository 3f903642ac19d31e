// Logs: with --log-format json every line on stdout and stderr is one JSON object; --log-file gets every line.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { freePort } from '../helpers/ports.js';
import { makeModelDir, runCli, tempDir } from '../helpers/fixtures.js';
import { binPath, runLlmserve } from '../helpers/llmserve.js';
import { waitFor } from '../helpers/wait.js';

const KEY = 'sk-logs-e2e-0123456789abcdef';

/** `llmserve start --log-format json` against the fake vLLM, on free ports and a temporary probe directory. */
async function startJson(extraArgs: readonly string[], env: NodeJS.ProcessEnv = {}) {
  const dir = await tempDir();
  return runLlmserve(
    ['start', '--model', await makeModelDir(), '--port', String(await freePort()), '--backend-port', String(await freePort()), '--probe-dir', path.join(dir, 'probe'), '--log-format', 'json', ...extraArgs],
    { LLMSERVE_MASTER_KEY: KEY, ...env },
  );
}

test('--log-format json: every line of start (llmserve, vllm, proxy, access log, a failure) is one JSON object', async (t) => {
  const dir = await tempDir();
  const probeDir = path.join(dir, 'probe');
  const logFile = path.join(dir, 'all.log');
  const port = await freePort();
  const model = await makeModelDir();
  const run = runLlmserve(
    ['start', '--model', model, '--port', String(port), '--backend-port', String(await freePort()), '--probe-dir', probeDir, '--log-format', 'json', '--log-file', logFile, '--health-interval', '0.3'],
    { LLMSERVE_MASTER_KEY: KEY },
  );
  t.after(async () => assert.equal(await run.cleanup(), 0));
  await run.waitForLine(/ready after .* serves/, 60_000);
  assert.equal(existsSync(path.join(probeDir, 'not-ready')), false);
  const ok = await fetch(`http://127.0.0.1:${port}/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' },
    body: JSON.stringify({ model: path.basename(model), messages: [{ role: 'user', content: 'hi' }] }),
  }).catch((err: Error & { cause?: unknown }) => {
    throw new Error(`fetch: ${String(err.cause)}\n${run.output()}`);
  });
  assert.equal(ok.status, 200, await ok.text());
  const denied = await fetch(`http://127.0.0.1:${port}/v1/models`, { headers: { authorization: 'Bearer wrong' } });
  assert.equal(denied.status, 401);
  await run.waitForLine(/"status":401/, 30_000);
  run.child.kill('SIGTERM');
  assert.equal((await run.exited).code, 0, run.output());

  const sources = new Set<string>();
  for (const line of run.lines.filter((l) => l.length > 0)) {
    let parsed: Record<string, unknown>;
    try {
      parsed = JSON.parse(line) as Record<string, unknown>;
    } catch {
      assert.fail(`not JSON: ${line}`);
    }
    for (const field of ['time', 'level', 'source', 'msg']) assert.ok(field in parsed, `${field} missing in ${line}`);
    assert.notEqual(parsed.level === 'debug' && parsed.source === 'llmserve', true, `a debug line without --verbose: ${line}`);
    sources.add(String(parsed.source));
  }
  assert.deepEqual([...sources].sort(), ['llmserve', 'proxy', 'vllm']);
  assert.ok(!run.output().includes(KEY), 'keys are redacted everywhere');

  assert.ok(existsSync(logFile));
  const file = readFileSync(logFile, 'utf8').trim().split('\n');
  assert.ok(file.length >= run.lines.filter((l) => l.length > 0 && !l.includes('"source":"proxy"')).length, 'the log file has every line of llmserve and vLLM');
  for (const line of file) JSON.parse(line);
  assert.ok(!file.join('\n').includes(KEY));
});

test('--log-format json: a vLLM that fails while loading prints its traceback as JSON lines too', async (t) => {
  const run = await startJson([], { FAKE_VLLM_MODE: 'fail-load' });
  t.after(async () => assert.equal(await run.cleanup(), 0));
  assert.equal((await run.exited).code, 3, run.output());
  const parsed = run.lines.filter((l) => l.length > 0).map((l) => JSON.parse(l) as { source: string; msg: string; level: string });
  assert.ok(parsed.some((p) => p.source === 'vllm' && p.msg.includes('CUDA out of memory')));
  assert.ok(parsed.some((p) => p.level === 'error' && /vLLM exited during start-up/.test(p.msg)));
  // Levels come from the line, not its stream: tqdm's frames (stderr) are info; the final error's details
  // (vLLM's last lines, the diagnosis) are error, like the error line they belong to.
  const frames = parsed.filter((p) => p.source === 'vllm' && /checkpoint shards/.test(p.msg));
  assert.ok(frames.length > 0 && frames.every((p) => p.level === 'info'), JSON.stringify(frames));
  const details = parsed.filter((p) => p.source === 'llmserve' && p.msg.startsWith('  ('));
  assert.ok(details.length > 0 && details.every((p) => p.level === 'error'), JSON.stringify(details));
});

test("--log-format json: vLLM's coloured lines (VLLM_LOGGING_COLOR=1) keep their level and lose the colour codes", async (t) => {
  // vLLM colours its level names when told to, pipe or not: the codes before `WARNING` hid the level (logged as info).
  const run = await startJson([], { VLLM_LOGGING_COLOR: '1', NO_COLOR: undefined });
  t.after(async () => assert.equal(await run.cleanup(), 0));
  const started = await run.waitForLine(/"msg":"vLLM started \(pid \d+/, 30_000);
  await run.waitForLine(/ready after .* serves/, 60_000);
  process.kill(Number(/pid (\d+)/.exec(started)![1]), 'SIGWINCH');
  await run.waitForLine(/SIGWINCH: the engine is stuck/, 10_000);
  const vllm = jsonLines(run.lines).filter((p) => p.source === 'vllm');
  assert.equal(vllm.find((p) => p.msg.includes('SIGWINCH'))?.level, 'warn', JSON.stringify(vllm));
  assert.ok(vllm.some((p) => /^\(APIServer pid=\d+\) INFO \d\d-\d\d /.test(p.msg)), JSON.stringify(vllm));
  assert.deepEqual(vllm.filter((p) => p.msg.includes('\x1b')), []);
  run.child.kill('SIGTERM');
  assert.equal((await run.exited).code, 0, run.output());
});

/** Every non-empty line parsed as JSON, each with the four fields of the format. */
function jsonLines(lines: readonly string[]): { level: string; source: string; msg: string; code?: string }[] {
  return lines
    .filter((l) => l.length > 0)
    .map((l) => {
      let parsed: Record<string, unknown>;
      try {
        parsed = JSON.parse(l) as Record<string, unknown>;
      } catch {
        assert.fail(`not JSON: ${l}\n--- all lines:\n${lines.join('\n')}`);
      }
      for (const field of ['time', 'level', 'source', 'msg']) assert.ok(field in parsed, `${field} missing in ${l}`);
      return parsed as { level: string; source: string; msg: string; code?: string };
    });
}

test('--log-file: a failed start-up leaves its final error, vLLM\'s last lines and the diagnosis in the file', async (t) => {
  const dir = await tempDir();
  const logFile = path.join(dir, 'start.log');
  // Tensor-parallel size 5 on the fake's 2 GPUs and 12 heads: the fake vLLM exits with the heads error (exit 3).
  const run = runLlmserve(
    ['start', '--model', await makeModelDir(), '--port', String(await freePort()), '--backend-port', String(await freePort()), '--probe-dir', path.join(dir, 'probe'), '--tensor-parallel-size', '5', '--log-file', logFile],
    { LLMSERVE_MASTER_KEY: KEY },
  );
  t.after(async () => assert.equal(await run.cleanup(), 0));
  assert.equal((await run.exited).code, 3, run.output());
  const file = readFileSync(logFile, 'utf8');
  assert.match(file, /^llmserve \| error: vLLM exited during start-up .*code=STARTUP_FAILED$/m, file);
  assert.match(file, /^llmserve \| last \d+ lines of vLLM:$/m, file);
  assert.match(file, /^llmserve \| diagnosis: the model's 12 attention heads are not divisible by tensor-parallel size 5/m, file);
  assert.ok(!file.includes(KEY));
});

test('--log-file: an error before anything starts (a missing model, a configuration error) is in the file too', async (t) => {
  const dir = await tempDir();
  const missingModel = path.join(dir, 'model.log');
  const run = runLlmserve(['start', '--model', path.join(dir, 'no-such-model'), '--probe-dir', path.join(dir, 'probe'), '--log-file', missingModel], { LLMSERVE_MASTER_KEY: KEY });
  t.after(async () => assert.equal(await run.cleanup(), 0));
  assert.equal((await run.exited).code, 2, run.output());
  assert.match(readFileSync(missingModel, 'utf8'), /^llmserve \| error: model directory .*no-such-model does not exist code=MODEL_PATH$/m);
  assert.match(readFileSync(missingModel, 'utf8'), /^llmserve \| Fix: /m);

  // No key: the configuration is refused before its logger exists; the file still gets the error.
  const noKey = path.join(dir, 'config.log');
  const again = runLlmserve(['start', '--model', await makeModelDir(), '--probe-dir', path.join(dir, 'probe'), '--log-file', noKey], { LLMSERVE_MASTER_KEY: undefined });
  t.after(async () => assert.equal(await again.cleanup(), 0));
  assert.equal((await again.exited).code, 2, again.output());
  assert.match(readFileSync(noKey, 'utf8'), /^llmserve \| error: no API key configured.* code=CONFIG$/m);
});

test('--log-file that cannot be opened: exit 2 with the reason and the fix, not a bare errno', async (t) => {
  const dir = await tempDir();
  const missing = path.join(dir, 'no-such-dir', 'llmserve.log');
  const run = runLlmserve(['start', '--model', await makeModelDir(), '--probe-dir', path.join(dir, 'probe'), '--log-file', missing], { LLMSERVE_MASTER_KEY: KEY });
  t.after(async () => assert.equal(await run.cleanup(), 0));
  assert.equal((await run.exited).code, 2, run.output());
  assert.match(run.output(), new RegExp(`--log-file: cannot open .*no-such-dir/llmserve\\.log: the directory .*no-such-dir does not exist \\(ENOENT\\); create it, or give another file with --log-file FILE`));
  const isDir = runLlmserve(['start', '--model', await makeModelDir(), '--probe-dir', path.join(dir, 'probe'), '--log-file', dir], { LLMSERVE_MASTER_KEY: KEY });
  t.after(async () => assert.equal(await isDir.cleanup(), 0));
  assert.equal((await isDir.exited).code, 2, isDir.output());
  assert.match(isDir.output(), /it is a directory \(EISDIR\); give a file name, such as .*\/llmserve\.log/);
  // Set by the variable: the error names the variable, not a flag the user never gave.
  const fromEnv = runLlmserve(['start', '--model', await makeModelDir(), '--probe-dir', path.join(dir, 'probe')], { LLMSERVE_MASTER_KEY: KEY, LLMSERVE_LOG_FILE: missing });
  t.after(async () => assert.equal(await fromEnv.cleanup(), 0));
  assert.equal((await fromEnv.exited).code, 2, fromEnv.output());
  assert.match(fromEnv.output(), /LLMSERVE_LOG_FILE: cannot open .*no-such-dir\/llmserve\.log/);
});

test('--log-file whose writes fail (a full disk): one warning, and the service runs and stops as usual', async (t) => {
  const dir = await tempDir();
  const probeDir = path.join(dir, 'probe');
  // /dev/full opens for appending, and every write fails with ENOSPC: a log volume that is full.
  const run = runLlmserve(['start', '--model', await makeModelDir(), '--port', String(await freePort()), '--backend-port', String(await freePort()), '--probe-dir', probeDir, '--log-file', '/dev/full'], { LLMSERVE_MASTER_KEY: KEY });
  t.after(async () => assert.equal(await run.cleanup(), 0));
  await run.waitForLine(/ready after .* serves/, 60_000);
  run.child.kill('SIGTERM');
  assert.equal((await run.exited).code, 0, run.output());
  const warnings = run.lines.filter((l) => l.includes('--log-file /dev/full: cannot write (ENOSPC)'));
  assert.equal(warnings.length, 1, run.output());
  assert.ok(!run.output().includes('internal error'), run.output());
});

test('log_format: json in the config file: every line is JSON, the final error and its details included', async (t) => {
  const dir = await tempDir();
  const config = path.join(dir, 'llmserve.yaml');
  writeFileSync(config, `model: ${path.join(dir, 'no-such-model')}\nlog_format: json\n`);
  const logFile = path.join(dir, 'all.log');
  const run = runLlmserve(['start', '--config', config, '--probe-dir', path.join(dir, 'probe'), '--log-file', logFile], { LLMSERVE_MASTER_KEY: KEY, LLMSERVE_LOG_FORMAT: undefined });
  t.after(async () => assert.equal(await run.cleanup(), 0));
  assert.equal((await run.exited).code, 2, run.output());
  const parsed = jsonLines(run.lines);
  assert.ok(parsed.some((p) => p.level === 'error' && p.code === 'MODEL_PATH' && /does not exist/.test(p.msg)), run.output());
  assert.ok(parsed.some((p) => p.msg.startsWith('Fix: ')), run.output());
  const file = jsonLines(readFileSync(logFile, 'utf8').split('\n'));
  assert.ok(file.some((p) => p.level === 'error' && p.code === 'MODEL_PATH'));
});

test('JSON mode: a usage error is JSON lines with exit 2; text mode prints commander\'s text, with start\'s line on vLLM\'s flags', async () => {
  for (const [args, env] of [
    [['start', '--bogus'], { LLMSERVE_LOG_FORMAT: 'json' }],
    [['start', '--log-format', 'json', '--bogus'], {}],
  ] as const) {
    const r = await runCli(binPath, [...args], env);
    assert.equal(r.code, 2, r.stderr);
    assert.equal(r.stdout, '');
    const parsed = jsonLines(r.stderr.split('\n'));
    assert.equal(parsed[0]?.level, 'error', r.stderr);
    assert.equal(parsed[0]?.msg, "unknown option '--bogus'");
    assert.equal(parsed[0]?.code, 'USAGE');
  }
  // No command at all: commander's help after the error, wrapped line by line.
  const bare = await runCli(binPath, [], { LLMSERVE_LOG_FORMAT: 'json' });
  assert.equal(bare.code, 2, bare.stderr);
  assert.ok(jsonLines(bare.stderr.split('\n')).some((p) => p.msg.startsWith('Usage: llmserve')), bare.stderr);

  const text = await runCli(binPath, ['start', '--bogus'], { LLMSERVE_LOG_FORMAT: 'text' });
  assert.equal(text.code, 2);
  // start's own line after commander's error: where vLLM's flags go (an unknown option is often one of vLLM's).
  assert.equal(text.stderr, "error: unknown option '--bogus'\nvLLM's own flags go after \"--\" (llmserve start --model M -- --bogus VALUE), or in the config's vllm.args\n(run with --help for usage)\n");
});

test("--log-format json: each of vLLM's tqdm frames is logged when vLLM draws it, not when the next one comes", async (t) => {
  // The fake draws the shard bar at 0, 3 and 6 s: 0% and 50% end with no line end (tqdm redraws with \r). Frames 3 s
  // apart, so that a timer late on a loaded machine cannot bring two within the 1.5 s asserted below.
  const run = await startJson([], { FAKE_VLLM_LOAD_MS: '6000' });
  t.after(async () => assert.equal(await run.cleanup(), 0));
  await run.waitForLine(/ready after .* serves/, 60_000);
  run.child.kill('SIGTERM');
  assert.equal((await run.exited).code, 0, run.output());
  const frames = jsonLines(run.lines)
    .filter((p) => p.source === 'vllm' && /checkpoint shards/.test(p.msg))
    .map((p) => Date.parse((p as unknown as { time: string }).time));
  assert.equal(frames.length, 3, run.output());
  // One frame behind, the 0% frame came out with the 50% one, and the 50% frame with the 100% one (same instant).
  assert.ok(frames[1]! - frames[0]! >= 1500 && frames[2]! - frames[1]! >= 1500, `frame times ${frames.join(', ')}`);
});

test('--verbose adds the debug lines it promises: one per vLLM health check', async (t) => {
  const run = await startJson(['--health-interval', '0.2', '--verbose']);
  t.after(async () => assert.equal(await run.cleanup(), 0));
  await run.waitForLine(/ready after .* serves/, 60_000);
  await run.waitForLine(/"level":"debug","source":"llmserve","msg":"vLLM health check: ok"/, 30_000);
  run.child.kill('SIGTERM');
  assert.equal((await run.exited).code, 0, run.output());
});

test('--log-file: SIGHUP reopens it, so that a file rotated by renaming (logrotate) is written anew', async (t) => {
  const dir = await tempDir();
  const logFile = path.join(dir, 'llmserve.log');
  const run = runLlmserve(
    ['start', '--model', await makeModelDir(), '--port', String(await freePort()), '--backend-port', String(await freePort()), '--probe-dir', path.join(dir, 'probe'), '--log-file', logFile],
    { LLMSERVE_MASTER_KEY: KEY },
  );
  t.after(async () => assert.equal(await run.cleanup(), 0));
  await run.waitForLine(/\| ready after/, 30_000);
  renameSync(logFile, `${logFile}.1`);
  run.child.kill('SIGHUP');
  await run.waitForLine(/SIGHUP received/, 30_000);
  await waitFor(() => existsSync(logFile) && /SIGHUP received/.test(readFileSync(logFile, 'utf8')), { timeoutMs: 30_000, message: 'the line after the SIGHUP in the new file' });
  assert.doesNotMatch(readFileSync(`${logFile}.1`, 'utf8'), /SIGHUP received/, 'nothing more in the rotated file');
  run.child.kill('SIGTERM');
  assert.equal((await run.exited).code, 0, run.output());
  assert.match(readFileSync(logFile, 'utf8'), /SIGTERM received: draining/, 'the new file goes on to the end');
});

test('--log-file: a SIGHUP during start-up (a GPU query that hangs) reopens it too', async (t) => {
  const dir = await tempDir();
  const logFile = path.join(dir, 'llmserve.log');
  // nvidia-smi hangs until its 15 s timeout; with an explicit size that is a warning and the start goes on.
  const run = runLlmserve(
    ['start', '--model', await makeModelDir(), '--tensor-parallel-size', '1', '--port', String(await freePort()), '--backend-port', String(await freePort()), '--probe-dir', path.join(dir, 'probe'), '--log-file', logFile],
    { LLMSERVE_MASTER_KEY: KEY, FAKE_NVIDIA_SMI_MODE: 'hang' },
  );
  t.after(async () => assert.equal(await run.cleanup(), 0));
  await run.waitForLine(/probe files in /, 30_000);
  renameSync(logFile, `${logFile}.1`);
  run.child.kill('SIGHUP');
  await run.waitForLine(/\| ready after/, 60_000);
  // Before, start-up ignored SIGHUP: every line of the start, and all after it, went on into the renamed file.
  assert.match(readFileSync(logFile, 'utf8'), /nvidia-smi .*did not answer within 15 s[^]*ready after/);
  assert.doesNotMatch(readFileSync(`${logFile}.1`, 'utf8'), /ready after/);
  run.child.kill('SIGTERM');
  assert.equal((await run.exited).code, 0, run.output());
});
