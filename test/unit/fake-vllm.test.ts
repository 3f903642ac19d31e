// Tests of the fakes themselves: they must behave like shared/reference/VLLM.md and the real sources say vLLM, nvidia-smi and ray do.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { startFakeVllm, type FakeVllm } from '../helpers/engine.js';
import { fixturePath, makeModelDir, runCli, tempDir } from '../helpers/fixtures.js';
import { isPortOpen } from '../helpers/ports.js';
import { hasOpenssl, selfSignedCert } from '../helpers/tls.js';
import { findByMarker, isAlive } from '../helpers/procs.js';
import { waitFor, withTimeout } from '../helpers/wait.js';

const vllmBin = fixturePath('bin', 'vllm');
const smiBin = fixturePath('bin', 'nvidia-smi');
const FAST = { FAKE_VLLM_LOAD_MS: '150' };

/** Starts a fake vLLM, runs `fn`, then kills everything it started and asserts nothing with its marker is left. */
async function withFake(opts: Parameters<typeof startFakeVllm>[0], fn: (f: FakeVllm) => Promise<void>): Promise<void> {
  const fake = await startFakeVllm(opts);
  try {
    await fn(fake);
  } finally {
    await fake.stop();
    assert.deepEqual(findByMarker(fake.marker), [], 'no process of this test may be left');
  }
}

const url = (f: FakeVllm, p: string) => `http://127.0.0.1:${f.port}${p}`;
const post = (f: FakeVllm, p: string, body: unknown) =>
  fetch(url(f, p), { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
const readLog = (file: string) =>
  fs.existsSync(file) ? fs.readFileSync(file, 'utf8').trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>) : [];

describe('fake vllm: command line', { concurrency: true }, () => {
  it('prints its version', async () => {
    assert.equal((await runCli(vllmBin, ['--version'])).stdout.trim(), '0.22.0');
    assert.equal((await runCli(vllmBin, ['--version'], { FAKE_VLLM_VERSION: '0.11.0' })).stdout.trim(), '0.11.0');
  });

  it('rejects an unknown flag like argparse: usage line, error line, exit 2', async () => {
    const r = await runCli(vllmBin, ['serve', 'Qwen/Qwen2.5-1.5B', '--bogus-flag', '3']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /^usage: vllm serve \[model_tag\] \[options\]\nvllm serve: error: unrecognized arguments: --bogus-flag 3\n$/);
  });

  it('rejects --disable-log-requests (deleted upstream, #35723) and it is absent from the flag table', async () => {
    assert.doesNotMatch(fs.readFileSync(fixturePath('vllm-flags.tsv'), 'utf8'), /^--disable-log-requests\t/m);
    const r = await runCli(vllmBin, ['serve', 'm', '--disable-log-requests']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /unrecognized arguments: --disable-log-requests/);
  });

  it('names an unknown underscore flag in its dash form, as FlexibleArgumentParser rewrites it before argparse', async () => {
    // vllm/utils/argparse_utils.py: `_` -> `-` in every `--` name (not in the value) before argparse sees it.
    const r = await runCli(vllmBin, ['serve', 'm', '--disable_log_requests', '--bogus_flag=a_b']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /unrecognized arguments: --disable-log-requests --bogus-flag=a_b\n$/);
  });

  it('takes a unique prefix for its flag and refuses an ambiguous one, as argparse (allow_abbrev) does', async () => {
    // vllm/entrypoints/cli/main.py builds its parsers without allow_abbrev=False.
    const r = await runCli(vllmBin, ['serve', 'm', '--po', '9']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /vllm serve: error: ambiguous option: --po could match --pooler-config, --port/);
    const ok = await runCli(vllmBin, ['serve', '/nonexistent/model', '--served-model', 'x', '--enforce-eag'], FAST);
    assert.equal(ok.code, 1, 'parsed (then failed on the missing model path)');
    assert.match(ok.stdout, /'served_model_name': \['x'\], 'enforce_eager': True/);
  });

  it('refuses a separate value that starts with "-" as argparse does, and takes it after "=" (negative numbers stay values)', async () => {
    const r = await runCli(vllmBin, ['serve', 'm', '--served-model-name', '-my-model']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /vllm serve: error: argument --served-model-name: expected at least one argument\n$/);
    const mixed = await runCli(vllmBin, ['serve', 'm', '--served-model-name', '-1abc']);
    assert.equal(mixed.code, 2, 'not a negative number: argparse reads it as a flag');
    const ok = await runCli(vllmBin, ['serve', '/nonexistent/model', '--served-model-name=-my-model', '--max-model-len', '-1'], FAST);
    assert.equal(ok.code, 1, 'parsed (then failed on the missing model path)');
    assert.match(ok.stdout, /'served_model_name': \['-my-model'\]/);
  });

  it('fails with the attention-heads ValueError when heads % TP != 0', async () => {
    const model = await makeModelDir({ heads: 12 });
    const r = await runCli(vllmBin, ['serve', model, '--tensor_parallel_size=5'], FAST);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /Traceback \(most recent call last\):/);
    assert.match(r.stderr, /ValueError: Total number of attention heads \(12\) must be divisible by tensor parallel size \(5\)\./);
  });

  it('fails in EngineCore when the key-value heads do not split over TP (40 and 10 heads on 4 GPUs), as vLLM does', async () => {
    const model = await makeModelDir({ heads: 40, kvHeads: 10 });
    const r = await runCli(vllmBin, ['serve', model, '--tensor-parallel-size', '4'], FAST);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /AssertionError: 10 is not divisible by 4/);
    assert.match(r.stderr, /RuntimeError: Engine core initialization failed/);
    // Replicated key-value heads are fine: 2 over 4 GPUs.
    await withFake({ args: [await makeModelDir({ heads: 40, kvHeads: 2 }), '--tensor-parallel-size', '4'], env: FAST }, async (f) => {
      await f.waitReady();
      assert.doesNotMatch(f.output(), /is not divisible by/);
    });
  });

  it('fails with exit 1 on a missing local model path, and on a Kubernetes-style VLLM_PORT', async () => {
    const missing = await runCli(vllmBin, ['serve', '/nonexistent/model'], FAST);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /OSError: .*does not exist/);
    const k8s = await runCli(vllmBin, ['serve', 'm'], { ...FAST, VLLM_PORT: 'tcp://10.0.0.1:8000' });
    assert.equal(k8s.code, 1);
    assert.match(k8s.stderr, /VLLM_PORT 'tcp:\/\/10\.0\.0\.1:8000' appears to be a URI/);
  });

  it('fail-load mode prints the OOM traceback and the engine-core RuntimeError, exit 1', async () => {
    const r = await runCli(vllmBin, ['serve', 'm', '--port', '1'], { ...FAST, FAKE_VLLM_MODE: 'fail-load' });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /torch\.OutOfMemoryError: CUDA out of memory\. Tried to allocate/);
    assert.match(r.stderr, /RuntimeError: Engine core initialization failed\. See root cause above\./);
  });
});

describe('fake vllm: serving', { concurrency: true }, () => {
  it('serves HTTPS with --ssl-keyfile and --ssl-certfile, so plain HTTP gets no answer', { skip: hasOpenssl() ? false : 'openssl not installed' }, async () => {
    const dir = await tempDir();
    const { key, cert } = selfSignedCert(dir);
    await withFake({ args: ['m', '--ssl-keyfile', key, '--ssl-certfile', cert], env: FAST }, async (f) => {
      await f.waitForOutput(new RegExp(`Starting vLLM server on https://127\\.0\\.0\\.1:${f.port}`));
      await waitFor(() => isPortOpen(f.port), { timeoutMs: 5000, message: 'the port to open' });
      await assert.rejects(fetch(url(f, '/health'), { signal: AbortSignal.timeout(2000) }));
    });
  });

  it("prints uvicorn's access line per request (query included), unless --disable-uvicorn-access-log", async () => {
    await withFake({ args: ['m'], env: FAST }, async (f) => {
      await f.waitReady();
      await fetch(url(f, '/v1/models?x=1'));
      await f.waitForOutput(new RegExp(`^\\(APIServer pid=\\d+\\) INFO: {5}127\\.0\\.0\\.1:\\d+ - "GET /v1/models\\?x=1 HTTP/1\\.1" 200 OK$`, 'm'));
      assert.match(f.output(), /INFO: {5}127\.0\.0\.1:\d+ - "GET \/health HTTP\/1\.1" 200 OK/);
    });
    await withFake({ args: ['m', '--disable-uvicorn-access-log'], env: FAST }, async (f) => {
      await f.waitReady();
      assert.equal((await post(f, '/v1/chat/completions', { model: 'm', messages: [{ role: 'user', content: 'hi' }] })).status, 200);
      assert.doesNotMatch(f.output(), /HTTP\/1\.1" \d{3}/);
    });
  });

  it('keeps the port closed while loading, then answers /health and /v1/models', async () => {
    const model = await makeModelDir({ maxPositionEmbeddings: 4096 });
    const dir = await tempDir();
    const argvFile = path.join(dir, 'argv.jsonl');
    await withFake({ args: [model, '--served-model-name', 'a', 'b'], env: { FAKE_VLLM_LOAD_MS: '3000', FAKE_VLLM_ARGV_FILE: argvFile, SOME_SECRET: 's3' } }, async (f) => {
      // A load long enough that a loaded machine cannot let it end before the port is looked at.
      await f.enginePid();
      assert.equal(await isPortOpen(f.port), false, 'port must be closed while the engine loads');
      await f.waitReady();
      const out = f.output();
      for (const line of ['Loading weights took', 'Model loading took', 'Available KV cache memory', 'Capturing CUDA graphs', 'init engine (profile, create kv cache, warmup model) took', `Starting vLLM server on http://127.0.0.1:${f.port}`, 'Started server process', 'Application startup complete.']) {
        assert.ok(out.includes(line), `missing log line: ${line}`);
      }
      assert.match(out, /\rLoading safetensors checkpoint shards:|\(EngineCore pid=\d+\) Loading safetensors checkpoint shards: 100% Completed \| 2\/2/);
      assert.ok(!out.includes('Uvicorn running on'));
      const health = await fetch(url(f, '/health'));
      assert.equal(health.status, 200);
      assert.equal(await health.text(), '');
      const models = (await (await fetch(url(f, '/v1/models'))).json()) as { object: string; data: Record<string, unknown>[] };
      assert.equal(models.object, 'list');
      assert.deepEqual(models.data.map((m) => m.id), ['a', 'b']);
      const m0 = models.data[0]!;
      assert.deepEqual(Object.keys(m0).sort(), ['created', 'id', 'max_model_len', 'object', 'owned_by', 'parent', 'permission', 'root']);
      assert.equal(m0.object, 'model');
      assert.equal(m0.owned_by, 'vllm');
      assert.equal(m0.root, model);
      assert.equal(m0.parent, null);
      assert.equal(m0.max_model_len, 4096);
      assert.ok(Array.isArray(m0.permission));
      const rec = readLog(argvFile)[0] as { argv: string[]; pid: number; env: Record<string, string> };
      assert.deepEqual(rec.argv.slice(0, 5), ['serve', model, '--served-model-name', 'a', 'b']);
      assert.equal(rec.pid, f.child.pid);
      assert.equal(rec.env.SOME_SECRET, 's3');
    });
  });

  it('answers completions, errors and the other routes with vLLM shapes', async () => {
    await withFake({ args: ['Qwen/Qwen2.5-1.5B'], env: FAST }, async (f) => {
      await f.waitReady();
      const chat = await post(f, '/v1/chat/completions', { model: 'Qwen/Qwen2.5-1.5B', messages: [{ role: 'user', content: 'hi' }] });
      assert.equal(chat.status, 200);
      const body = (await chat.json()) as { object: string; choices: { message: { content: string } }[]; usage: { total_tokens: number } };
      assert.equal(body.object, 'chat.completion');
      assert.match(body.choices[0]!.message.content, /Hello from fake vLLM/);
      assert.ok(body.usage.total_tokens > 0);
      const cmpl = (await (await post(f, '/v1/completions', { model: 'Qwen/Qwen2.5-1.5B', prompt: 'x' })).json()) as { object: string };
      assert.equal(cmpl.object, 'text_completion');
      const missing = await post(f, '/v1/chat/completions', { model: 'gpt-4', messages: [] });
      assert.equal(missing.status, 404);
      assert.deepEqual(await missing.json(), { error: { message: 'The model `gpt-4` does not exist.', type: 'NotFoundError', param: 'model', code: 404 } });
      const nowhere = await fetch(url(f, '/nowhere'));
      assert.equal(nowhere.status, 404);
      assert.deepEqual(await nowhere.json(), { detail: 'Not Found' });
      assert.deepEqual(await (await fetch(url(f, '/version'))).json(), { version: '0.22.0' });
      assert.match(await (await fetch(url(f, '/metrics'))).text(), /^vllm:num_requests_running\{/m);
      assert.equal((await post(f, '/tokenize', { prompt: 'a b' })).status, 200);
      // Embeddings: one per input; base64 (OpenAI's JS SDK's default) is the float32 array, little-endian.
      type Embeddings = { data: { index: number; embedding: number[] | string }[] };
      const floats = (await (await post(f, '/v1/embeddings', { model: 'Qwen/Qwen2.5-1.5B', input: ['a', 'b'] })).json()) as Embeddings;
      assert.deepEqual(floats.data.map((d) => d.index), [0, 1]);
      const b64 = (await (await post(f, '/v1/embeddings', { model: 'Qwen/Qwen2.5-1.5B', input: 'a', encoding_format: 'base64' })).json()) as Embeddings;
      const decoded = Array.from(new Float32Array(new Uint8Array(Buffer.from(b64.data[0]!.embedding as string, 'base64')).buffer));
      assert.deepEqual(decoded, Array.from(new Float32Array(floats.data[0]!.embedding as number[])));
      for (const p of ['/scale_elastic_ep', '/collective_rpc', '/server_info', '/sleep']) assert.equal((await post(f, p, {})).status, 200, p);
    });
  });

  it('streams SSE chunks ending in [DONE], with a usage chunk when include_usage is set', async () => {
    await withFake({ args: ['m'], env: { ...FAST, FAKE_VLLM_STREAM_CHUNKS: '3', FAKE_VLLM_STREAM_INTERVAL_MS: '5' } }, async (f) => {
      await f.waitReady();
      const events = async (body: unknown) => {
        const res = await post(f, '/v1/chat/completions', body);
        assert.match(res.headers.get('content-type') ?? '', /^text\/event-stream/);
        const text = await res.text();
        assert.ok(text.endsWith('data: [DONE]\n\n'));
        return text.split('\n\n').filter(Boolean).map((e) => e.replace(/^data: /, ''));
      };
      const plain = await events({ model: 'm', stream: true, messages: [] });
      assert.equal(plain.length, 4);
      const first = JSON.parse(plain[0]!) as { object: string; choices: { delta: { role: string } }[] };
      assert.equal(first.object, 'chat.completion.chunk');
      assert.equal(first.choices[0]!.delta.role, 'assistant');
      const withUsage = await events({ model: 'm', stream: true, stream_options: { include_usage: true }, messages: [] });
      assert.equal(withUsage.length, 5);
      const last = JSON.parse(withUsage[3]!) as { choices: unknown[]; usage: { completion_tokens: number } };
      assert.deepEqual(last.choices, []);
      assert.equal(last.usage.completion_tokens, 3);
      // continuous_usage_stats: usage in every chunk, only together with include_usage, which stream_options given
      // without it defaults to true (as vLLM's StreamOptions does); false turns both off.
      const alone = await events({ model: 'm', stream: true, stream_options: { continuous_usage_stats: true }, messages: [] });
      assert.equal((JSON.parse(alone[1]!) as { usage: { completion_tokens: number } }).usage.completion_tokens, 2);
      const off = await events({ model: 'm', stream: true, stream_options: { include_usage: false, continuous_usage_stats: true }, messages: [] });
      assert.ok(!off.join('').includes('usage'));
      const empty = await events({ model: 'm', stream: true, stream_options: {}, messages: [] });
      assert.equal(empty.length, 5);
      const both = await events({ model: 'm', stream: true, stream_options: { include_usage: true, continuous_usage_stats: true }, messages: [] });
      assert.equal(both.length, 5);
      assert.equal((JSON.parse(both[1]!) as { usage: { completion_tokens: number } }).usage.completion_tokens, 2);
    });
  });

  it('records a client disconnect mid-stream as client-closed and stops generating', async () => {
    const log = path.join(await tempDir(), 'requests.jsonl');
    await withFake({ args: ['m'], env: { ...FAST, FAKE_VLLM_REQUEST_LOG: log, FAKE_VLLM_STREAM_CHUNKS: '2000', FAKE_VLLM_STREAM_INTERVAL_MS: '10' } }, async (f) => {
      await f.waitReady();
      const closedAt = await new Promise<number>((resolve, reject) => {
        const req = http.request(url(f, '/v1/chat/completions'), { method: 'POST', headers: { 'content-type': 'application/json' } }, (res) => {
          res.once('data', () => {
            const t = Date.now();
            req.destroy();
            resolve(t);
          });
        });
        req.on('error', (e) => (e.message.includes('aborted') || (e as NodeJS.ErrnoException).code === 'ECONNRESET' ? undefined : reject(e)));
        req.end(JSON.stringify({ model: 'm', stream: true, messages: [] }));
      });
      const closed = await waitFor(() => readLog(log).find((e) => e.event === 'client-closed'), { timeoutMs: 10_000, message: 'client-closed event' });
      assert.equal(closed.path, '/v1/chat/completions');
      // Two processes' clocks and a loaded machine: seconds of slack, against a stream that would end only 20 s later.
      assert.ok(Math.abs((closed.t as number) - closedAt) < 5000, 'close recorded promptly');
      const metrics = await (await fetch(url(f, '/metrics'))).text();
      assert.match(metrics, /^vllm:num_requests_running\{[^}]*\} 0$/m, 'generation stopped');
      assert.equal(readLog(log).filter((e) => e.event === 'finished' && e.path === '/v1/chat/completions').length, 0);
    });
  });
});

describe('fake vllm: processes and stopping', { concurrency: true }, () => {
  it('names EngineCore and TP workers with VLLM:: titles in the same process group', async () => {
    const model = await makeModelDir({ heads: 12 });
    await withFake({ args: [model, '-tp', '2'], env: FAST }, async (f) => {
      await f.waitReady();
      // Read until all four are titled: under load, /proc once showed a worker's old command line just after it
      // had reported itself up (CI flake), so this waits for the state instead of reading it once.
      let titles: string[] = [];
      const procs = await waitFor(() => {
        const found = findByMarker(f.marker);
        titles = found.map((p) => p.cmdline).sort();
        return ['VLLM::EngineCore', 'VLLM::Worker_TP0', 'VLLM::Worker_TP1'].every((t) => titles.includes(t)) ? found : undefined;
      }, { timeoutMs: 10_000, message: 'EngineCore and both TP workers titled VLLM::' }).catch((err: Error) => assert.fail(`${err.message}: ${titles.join('|')}`));
      const api = procs.find((p) => p.pid === f.child.pid)!;
      assert.ok(procs.every((p) => p.pgid === api.pgid), 'vLLM never makes its own process group');
    });
  });

  it('turns /health 503 and exits 0 when the engine dies (#48966)', async () => {
    // The API server's exit comes 2 s after the engine's death here (300 ms by default): on a loaded CI machine the
    // checks below once took longer than 300 ms, and /version was asked of a server that had already exited.
    await withFake({ args: ['m'], env: { ...FAST, FAKE_VLLM_ENGINE_DEATH_EXIT_MS: '2000' } }, async (f) => {
      await f.waitReady();
      process.kill(await f.enginePid(), 'SIGKILL');
      await waitFor(async () => (await fetch(url(f, '/health'))).status === 503, { timeoutMs: 10_000, message: '/health 503' });
      assert.equal((await fetch(url(f, '/version'))).status, 200, '/version keeps answering (#39863)');
      assert.equal(await withTimeout(f.exited, 5000, 'API server exit'), 0);
    });
  });

  it('leaves EngineCore alive when the API server is SIGKILLed (#55510)', async () => {
    await withFake({ args: ['m'], env: FAST }, async (f) => {
      await f.waitReady();
      const engine = await f.enginePid();
      f.child.kill('SIGKILL');
      assert.equal(await withTimeout(f.exited, 3000, 'API server exit'), 'SIGKILL');
      assert.ok(isAlive(engine), 'engine must survive');
      assert.ok(findByMarker(f.marker).some((p) => p.pid === engine));
    });
  });

  it('exits 0 on SIGTERM and takes the engine and workers with it', async () => {
    const model = await makeModelDir({ heads: 12 });
    await withFake({ args: [model, '--tensor-parallel-size', '2'], env: FAST }, async (f) => {
      await f.waitReady();
      await waitFor(() => findByMarker(f.marker).length === 4, { timeoutMs: 10_000, message: 'api + engine + 2 workers' });
      f.child.kill('SIGTERM');
      assert.equal(await withTimeout(f.exited, 3000, 'API server exit'), 0);
      assert.deepEqual(findByMarker(f.marker), []);
      // 'exit' can come before the last stdout bytes are read from the pipe: wait for the line, don't read once.
      await f.waitForOutput(/Shutting down FastAPI HTTP server\./, 2000);
    });
  });

  it('with --shutdown-timeout lets an in-flight stream finish on SIGTERM', async () => {
    await withFake({ args: ['m', '--shutdown-timeout', '5'], env: { ...FAST, FAKE_VLLM_STREAM_CHUNKS: '10', FAKE_VLLM_STREAM_INTERVAL_MS: '20' } }, async (f) => {
      await f.waitReady();
      const res = await post(f, '/v1/chat/completions', { model: 'm', stream: true, messages: [] });
      const text = res.text();
      f.child.kill('SIGTERM');
      assert.ok((await text).endsWith('data: [DONE]\n\n'));
      assert.equal(await withTimeout(f.exited, 3000, 'API server exit'), 0);
    });
  });

  it('ignore-sigterm mode logs and ignores SIGTERM', async () => {
    await withFake({ args: ['m'], env: { ...FAST, FAKE_VLLM_MODE: 'ignore-sigterm' } }, async (f) => {
      await f.waitReady();
      f.child.kill('SIGTERM');
      await f.waitForOutput(/Received SIGTERM; ignoring it/);
      assert.equal((await fetch(url(f, '/health'))).status, 200);
    });
  });
});

describe('fake vllm: failure modes', { concurrency: true }, () => {
  it('hang mode accepts connections but never answers, /health included', async () => {
    await withFake({ args: ['m'], env: { ...FAST, FAKE_VLLM_MODE: 'hang' } }, async (f) => {
      await f.waitForOutput(/Application startup complete\./);
      const status = await fetch(url(f, '/health'), { signal: AbortSignal.timeout(300) }).then((r) => r.status, (e: Error) => e.name);
      assert.equal(status, 'TimeoutError');
    });
  });

  it('a hang (SIGUSR1) also swallows the late answers a busy server had queued: a hung server sends nothing', async () => {
    const log = path.join(await tempDir(), 'requests.jsonl');
    await withFake({ args: ['m'], env: { ...FAST, FAKE_VLLM_MODE: 'busy', FAKE_VLLM_BUSY_HEALTH_MS: '5000', FAKE_VLLM_REQUEST_LOG: log } }, async (f) => {
      await f.waitForOutput(/Application startup complete\./);
      // Busy: /health answers, late.
      assert.equal((await fetch(url(f, '/health'), { signal: AbortSignal.timeout(15_000) })).status, 200);
      // Queued while busy, then the server hangs before the answer is due (5 s): no answer. The client's 7 s is past the
      // busy answer, so a 200 comes without the hang; the wait below stays short of the 5 s, so the hang comes first.
      const late = fetch(url(f, '/health'), { signal: AbortSignal.timeout(7000) }).then((r) => r.status, (e: Error) => e.name);
      await waitFor(() => readLog(log).filter((e) => e.event === 'request' && e.path === '/health').length === 2, { timeoutMs: 4000, message: 'the second /health received' });
      f.child.kill('SIGUSR1');
      assert.equal(await late, 'TimeoutError');
    });
  });

  it('a hang that ends (SIGUSR1, then SIGUSR2) answers what came in meanwhile, as a stalled server that resumes does', async () => {
    const log = path.join(await tempDir(), 'requests.jsonl');
    await withFake({ args: ['m'], env: { ...FAST, FAKE_VLLM_BUSY_HEALTH_MS: '100', FAKE_VLLM_REQUEST_LOG: log } }, async (f) => {
      await f.waitForOutput(/Application startup complete\./);
      f.child.kill('SIGUSR1');
      await f.waitForOutput(/SIGUSR1: hanging from now on/);
      const body = JSON.stringify({ model: 'm', messages: [{ role: 'user', content: 'hi' }] });
      const chat = fetch(url(f, '/v1/chat/completions'), { method: 'POST', headers: { 'content-type': 'application/json' }, body, signal: AbortSignal.timeout(10_000) });
      const models = fetch(url(f, '/v1/models'), { signal: AbortSignal.timeout(10_000) });
      await waitFor(() => readLog(log).filter((e) => e.event === 'request').length === 2, { timeoutMs: 10_000, message: 'both requests received' });
      // (That nothing is sent while it hangs is the test above's.)
      f.child.kill('SIGUSR2');
      assert.equal((await chat).status, 200);
      assert.equal((await models).status, 200);
    });
  });

  it('a stuck engine (SIGWINCH) keeps /health and /v1/models answering, freezes /metrics, and answers no generation', async () => {
    const log = path.join(await tempDir(), 'requests.jsonl');
    await withFake({ args: ['m'], env: { ...FAST, FAKE_VLLM_REQUEST_LOG: log, FAKE_VLLM_STREAM_CHUNKS: '500', FAKE_VLLM_STREAM_INTERVAL_MS: '10' } }, async (f) => {
      await f.waitReady();
      // A stream under way when the engine sticks: its first events came, then none.
      const events: string[] = [];
      const running = http.request(url(f, '/v1/chat/completions'), { method: 'POST', headers: { 'content-type': 'application/json' } }, (res) => res.on('data', (d: Buffer) => events.push(d.toString())));
      running.on('error', () => {});
      running.end(JSON.stringify({ model: 'm', stream: true, messages: [] }));
      await waitFor(() => events.length >= 3, { timeoutMs: 10_000, message: 'the first events' });
      f.child.kill('SIGWINCH');
      await f.waitForOutput(/SIGWINCH: the engine is stuck/);
      const page = await (await fetch(url(f, '/metrics'))).text();
      assert.match(page, /^vllm:num_requests_running\{[^}]*\} 1$/m);
      const seen = events.length;

      // A new stream gets its head and nothing more; a plain completion gets nothing.
      const stream = await post(f, '/v1/chat/completions', { model: 'm', stream: true, messages: [] });
      assert.equal(stream.status, 200);
      const reader = stream.body!.getReader();
      assert.equal(await withTimeout(reader.read(), 400, 'no event').then(() => 'data', (e: Error) => e.message), 'timed out after 400 ms: no event');
      const plain = await fetch(url(f, '/v1/chat/completions'), { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: 'm', messages: [] }), signal: AbortSignal.timeout(400) }).then((r) => r.status, (e: Error) => e.name);
      assert.equal(plain, 'TimeoutError');

      // The API server still answers; the engine's figures stand still, a client that gave up included.
      assert.equal((await fetch(url(f, '/health'))).status, 200);
      assert.equal((await fetch(url(f, '/v1/models'))).status, 200);
      assert.equal((await post(f, '/tokenize', { model: 'm', prompt: 'a b' })).status, 200);
      running.destroy();
      await reader.cancel();
      await waitFor(() => readLog(log).filter((e) => e.event === 'client-closed').length >= 3, { timeoutMs: 10_000, message: 'the clients to be gone' });
      assert.equal(await (await fetch(url(f, '/metrics'))).text(), page);
      assert.equal(events.length, seen, 'no event after the engine stuck');
    });
  });

  it('SIGTERM during start-up exits non-zero and orphans the TP workers (#32116)', async () => {
    const model = await makeModelDir({ heads: 12 });
    // A load far longer than any wait here, so that the SIGTERM always lands during start-up: on a loaded CI machine
    // the API server, EngineCore and both workers once took more than 3 s to come up (Node 24).
    await withFake({ args: [model, '-tp', '2'], env: { FAKE_VLLM_LOAD_MS: '60000' } }, async (f) => {
      await waitFor(() => findByMarker(f.marker).filter((p) => p.cmdline.startsWith('VLLM::Worker_TP')).length === 2, { timeoutMs: 15_000, message: 'workers up' });
      f.child.kill('SIGTERM');
      assert.equal(await withTimeout(f.exited, 5000, 'API server exit'), 1);
      await waitFor(() => !findByMarker(f.marker).some((p) => p.cmdline === 'VLLM::EngineCore'), { timeoutMs: 5000, message: 'engine gone' });
      assert.equal(findByMarker(f.marker).filter((p) => p.cmdline.startsWith('VLLM::Worker_TP')).length, 2, 'workers leaked');
    });
  });

  it('exit-after-ready mode exits 0 on its own once its readiness was checked (GET /v1/models), taking the engine with it', async () => {
    await withFake({ args: ['m'], env: { ...FAST, FAKE_VLLM_MODE: 'exit-after-ready', FAKE_VLLM_EXIT_AFTER_MS: '50' } }, async (f) => {
      await f.waitReady();
      // /health answered, /v1/models not asked yet: still up (the exit is timed from the first /v1/models).
      assert.equal((await fetch(`http://127.0.0.1:${f.port}/health`)).status, 200);
      assert.equal(f.child.exitCode, null);
      assert.equal((await fetch(`http://127.0.0.1:${f.port}/v1/models`)).status, 200);
      assert.equal(await withTimeout(f.exited, 3000, 'API server exit'), 0);
      await waitFor(() => findByMarker(f.marker).length === 0, { timeoutMs: 10_000, message: 'engine gone' });
    });
  });
});

describe('fake nvidia-smi', { concurrency: true }, () => {
  const query = ['--query-gpu=index,uuid,name,memory.total', '--format=csv,noheader,nounits'];

  it('lists GPUs in the real CSV format with stable, distinct UUIDs', async () => {
    const r = await runCli(smiBin, query, { FAKE_NVIDIA_SMI_GPUS: '4' });
    assert.equal(r.code, 0);
    const lines = r.stdout.trim().split('\n');
    assert.equal(lines.length, 4);
    assert.equal(lines[0], '0, GPU-3b3a6c3e-0000-0000-0000-000000000000, NVIDIA H100 80GB HBM3, 81559');
    assert.equal(new Set(lines.map((l) => l.split(', ')[1])).size, 4);
    assert.equal((await runCli(smiBin, query)).stdout.trim().split('\n').length, 2);
  });

  it('prints compute apps from a file, and nothing by default', async () => {
    const apps = ['--query-compute-apps=pid,used_memory', '--format=csv,noheader,nounits'];
    assert.equal((await runCli(smiBin, apps)).stdout, '');
    const file = path.join(await tempDir(), 'apps.csv');
    fs.writeFileSync(file, '4242, 70000\n');
    assert.equal((await runCli(smiBin, apps, { FAKE_NVIDIA_SMI_APPS_FILE: file })).stdout, '4242, 70000\n');
  });

  it('fails like a missing driver (exit 9) and can print garbage', async () => {
    const fail = await runCli(smiBin, query, { FAKE_NVIDIA_SMI_MODE: 'fail' });
    assert.equal(fail.code, 9);
    assert.match(fail.stdout, /NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver/);
    const junk = await runCli(smiBin, query, { FAKE_NVIDIA_SMI_MODE: 'garbage' });
    assert.equal(junk.code, 0);
    assert.doesNotMatch(junk.stdout, /GPU-/);
  });
});

describe('fake ray: addresses as Ray reads them', { concurrency: true }, () => {
  const rayBin = fixturePath('bin', 'ray');
  it('refuses an address without a port (exit 1), for start and status alike', async () => {
    const state = { FAKE_RAY_STATE_DIR: path.join(await tempDir(), 'ray') };
    for (const args of [['start', '--address=10.0.0.1', '--block'], ['status', '--address=10.0.0.1']]) {
      const r = await runCli(rayBin, args, state);
      assert.equal(r.code, 1, args.join(' '));
      assert.match(r.stderr, /Malformed address 10\.0\.0\.1\. Expected '<host>:<port>'/);
    }
  });

  it('finds a head only on its own port', async () => {
    const state = { FAKE_RAY_STATE_DIR: path.join(await tempDir(), 'ray'), FAKE_RAY_JOIN_TIMEOUT_MS: '200' };
    const head = spawn(process.execPath, [rayBin, 'start', '--head', '--port=6379', '--block'], { env: { ...process.env, ...state, FAKE_RAY_NODE_ID: 'head' }, stdio: 'ignore' });
    try {
      await waitFor(async () => (await runCli(rayBin, ['status'], state)).code === 0, { timeoutMs: 30_000, message: 'the fake head to be up' });
      assert.equal((await runCli(rayBin, ['status', '--address=127.0.0.1:6379'], state)).code, 0);
      assert.equal((await runCli(rayBin, ['status', '--address=127.0.0.1:6380'], state)).code, 1);
      const wrong = await runCli(rayBin, ['start', '--address=127.0.0.1:6380'], { ...state, FAKE_RAY_NODE_ID: 'w' });
      assert.equal(wrong.code, 1);
      assert.match(wrong.stderr, /Could not find any running Ray instance at 127\.0\.0\.1:6380/);
    } finally {
      head.kill('SIGTERM');
    }
  });
});
