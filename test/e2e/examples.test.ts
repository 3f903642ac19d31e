// The built bin and the single-file build against the examples: init's output and every example config pass
// `probe`; dist/llmserve.mjs, copied alone into an empty directory, runs --version, probe, init and start.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';
import { envWithFakes, makeModelDir, tempDir } from '../helpers/fixtures.js';
import { binPath, runLlmserve } from '../helpers/llmserve.js';
import { freePort } from '../helpers/ports.js';
import { findByMarker, killByMarker } from '../helpers/procs.js';
import { waitFor, waitForFile } from '../helpers/wait.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const single = path.join(root, 'dist', 'llmserve.mjs');
const KEY = 'sk-e2e-examples-0123456789abcdefghijkl';
const pkgVersion = (JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')) as { version: string }).version;

/** Runs a script (the bin by default) to completion with the fakes first on PATH. */
function run(args: string[], opts: { script?: string; cwd?: string; env?: Record<string, string | undefined> } = {}) {
  const r = spawnSync(process.execPath, [opts.script ?? binPath, ...args], {
    cwd: opts.cwd ?? root,
    env: envWithFakes({ LLMSERVE_MASTER_KEY: undefined, LITELLM_MASTER_KEY: undefined, LLMSERVE_CONFIG: undefined, ...opts.env }),
    encoding: 'utf8',
    timeout: 30_000,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr, all: `${r.stdout}\n${r.stderr}` };
}

/**
 * Asserts that `probe --json` accepted the configuration: exit 0, or exit 1 only because a "free" port was
 * taken meanwhile by a test running beside this one (freePort can race); never exit 2.
 */
function assertAccepted(r: ReturnType<typeof run>, what: string): { ok: boolean; gpus: unknown[]; vllm: { commandLine: string } } {
  assert.notEqual(r.code, 2, `${what}: configuration error\n${r.all}`);
  const report = JSON.parse(r.stdout) as { ok: boolean; gpus: unknown[]; vllm: { commandLine: string }; problemDetails?: { code: string }[] };
  if (r.code !== 0) assert.deepEqual([...new Set((report.problemDetails ?? []).map((p) => p.code))], ['PORT_IN_USE'], `${what}\n${r.all}`);
  else assert.equal(report.ok, true, r.all);
  return report;
}

/** `probe` on a config with free ports and a temporary probe directory, the model overridden by a fake one. */
async function probe(config: string, extra: string[] = [], script?: string) {
  const dir = await tempDir();
  const model = await makeModelDir();
  const args = ['probe', '--config', config, '--model', model, '--port', String(await freePort()), '--backend-port', String(await freePort()), '--probe-dir', path.join(dir, 'probe'), '--json', ...extra];
  return run(args, { env: { LLMSERVE_MASTER_KEY: KEY }, ...(script ? { script, cwd: dir } : {}) });
}

test("init's output passes probe with the printed key exported; a second init refuses to overwrite (exit 2)", async () => {
  const dir = await tempDir();
  const model = await makeModelDir();
  const first = run(['init', '--model', model, '--name', 'chat'], { cwd: dir });
  assert.equal(first.code, 0, first.all);
  const key = /^ {2}export LLMSERVE_MASTER_KEY=(\S+)$/m.exec(first.stdout)?.[1];
  assert.ok(key, first.stdout);
  const file = path.join(dir, 'llmserve.yaml');
  assert.ok(!readFileSync(file, 'utf8').includes(key));

  const ports = ['--port', String(await freePort()), '--backend-port', String(await freePort()), '--probe-dir', path.join(dir, 'probe')];
  const ok = run(['probe', '--config', file, ...ports, '--json'], { cwd: dir, env: { LLMSERVE_MASTER_KEY: key } });
  assertAccepted(ok, "init's output");
  assert.ok(!ok.all.includes(key), 'probe must not print the key');
  // Without the key: a configuration error that says what to export.
  const noKey = run(['probe', '--config', file, ...ports], { cwd: dir });
  assert.equal(noKey.code, 2, noKey.all);
  assert.match(noKey.all, /LLMSERVE_MASTER_KEY/);

  const again = run(['init'], { cwd: dir });
  assert.equal(again.code, 2, again.all);
  assert.match(again.stderr, /llmserve\.yaml already exists; not overwriting it \(pass --force/);
  assert.equal(run(['init', '--force'], { cwd: dir }).code, 0);
});

test('keys generate prints a key and its SHA-256 (--json)', () => {
  const r = run(['keys', 'generate', '--name', 'alice', '--json']);
  assert.equal(r.code, 0, r.all);
  const doc = JSON.parse(r.stdout) as { name: string; key: string; key_sha256: string };
  assert.equal(doc.name, 'alice');
  assert.match(doc.key_sha256, /^[0-9a-f]{64}$/);
  assert.equal(run(['keys']).code, 2);
  // A name outside the allowed set is a usage error, exit 2, as the README's table says.
  const bad = run(['keys', 'generate', '--name', 'bad name!']);
  assert.equal(bad.code, 2, bad.all);
  assert.match(bad.stderr, /--name: expected letters, digits/);
  assert.match(readFileSync(path.join(root, 'README.md'), 'utf8'), /^\| `keys generate` \| [^\n]*\| 0 · 1 [^\n]*`OUTPUT`[^\n]* · 2 [^\n]*\|$/m);
});

test('--help shows the --log-format default that the README states (text)', () => {
  const readme = readFileSync(path.join(root, 'README.md'), 'utf8');
  assert.match(readme, /^\| `--log-format text\\\|json` \| `LLMSERVE_LOG_FORMAT` \| `log_format` \| `text` \|$/m);
  for (const command of ['start', 'probe', 'check']) {
    const help = run([command, '--help']);
    assert.equal(help.code, 0, help.all);
    assert.match(help.stdout, /--log-format <format>\s+log format \(default text\)/, `${command} --help`);
  }
});

test('start --help says where the key and vLLM\'s flags go, as the README does; a vLLM flag given to start or probe says where it goes', () => {
  const readme = readFileSync(path.join(root, 'README.md'), 'utf8');
  assert.match(readme, /`start --help` ends by saying where the key comes from instead \(`LLMSERVE_MASTER_KEY`/);
  const help = run(['start', '--help']);
  assert.equal(help.code, 0, help.all);
  assert.match(help.stdout, /^ {2}export LLMSERVE_MASTER_KEY=\$\(openssl rand -hex 32\)$/m);
  assert.match(help.stdout, /^vLLM's own flags go after "--" \(llmserve start --model M -- --gpu-memory-utilization 0\.9\) or in the config's vllm\.args\.$/m);
  for (const command of ['start', 'probe']) {
    const r = run([command, '--model', 'm', '--gpu-memory-utilization', '0.9']);
    assert.equal(r.code, 2, r.all);
    assert.equal(r.stderr, `error: unknown option '--gpu-memory-utilization'\nvLLM's own flags go after "--" (llmserve ${command} --model M -- --gpu-memory-utilization VALUE), or in the config's vllm.args\n(run with --help for usage)\n`);
  }
  // One that llmserve sets itself: its own setting is named.
  assert.match(run(['start', '-tp', '2']).stderr, /^as vLLM's flag -tp: llmserve sets it; use llmserve's --tensor-parallel-size \/ vllm\.tensor_parallel_size$/m);
  // check takes no vLLM flags: commander's error alone.
  assert.equal(run(['check', '--gpu-memory-utilization', '0.9']).stderr, "error: unknown option '--gpu-memory-utilization'\n(run with --help for usage)\n");
  // Another command's option, or a misspelt one of start's (commander suggests it), is no vLLM flag: no hint to put it after "--".
  assert.equal(run(['start', '--json']).stderr, "error: unknown option '--json'\n(run with --help for usage)\n");
  assert.equal(run(['start', '--probedir', 'x']).stderr, "error: unknown option '--probedir'\n(Did you mean --probe-dir?)\n(run with --help for usage)\n");
});

test('every example config passes probe with the fakes on PATH', async () => {
  const dir = await tempDir();
  const fromConfigMap = path.join(dir, 'llmserve.yaml');
  const docs = parseAllDocuments(readFileSync(path.join(root, 'examples', 'kubernetes', 'configmap.yaml'), 'utf8')).map((d) => d.toJS() as { kind: string; data?: Record<string, string> });
  writeFileSync(fromConfigMap, docs.find((d) => d.kind === 'ConfigMap')?.data?.['llmserve.yaml'] ?? '');
  const configs = [path.join(root, 'templates', 'llmserve.yaml'), path.join(root, 'examples', 'openbayes', 'litellm.config.yaml'), fromConfigMap];
  for (const config of configs) {
    const r = await probe(config);
    const { vllm } = assertAccepted(r, config);
    const expected = config.endsWith('litellm.config.yaml') ? '--served-model-name DeepSeek-R1-Distill-Qwen-1.5B' : '--max-model-len 16384 --gpu-memory-utilization 0.98 --enable-prefix-caching --enforce-eager --trust-remote-code';
    assert.ok(vllm.commandLine.includes(expected), vllm.commandLine);
  }
});

test('the single-file build runs alone in an empty directory: --version, probe --json, init', async () => {
  assert.ok(existsSync(single), 'dist/llmserve.mjs (npm run build)');
  const dir = await tempDir();
  const script = path.join(dir, 'llmserve.mjs');
  copyFileSync(single, script);
  assert.deepEqual(readdirSync(dir), ['llmserve.mjs']);

  const version = run(['--version'], { script, cwd: dir });
  assert.equal(version.code, 0, version.all);
  assert.equal(version.stdout.trim(), pkgVersion);

  const model = await makeModelDir();
  const p = run(['probe', '--json', '--model', model, '--port', String(await freePort()), '--backend-port', String(await freePort()), '--probe-dir', path.join(dir, 'probe')], { script, cwd: dir, env: { LLMSERVE_MASTER_KEY: KEY, FAKE_NVIDIA_SMI_GPUS: '2' } });
  assert.equal(assertAccepted(p, 'the single file').gpus.length, 2);

  // The template is built in: init works with no templates/ directory around.
  const init = run(['init', '--model', model], { script, cwd: dir });
  assert.equal(init.code, 0, init.all);
  assert.equal(readFileSync(path.join(dir, 'llmserve.yaml'), 'utf8'), readFileSync(path.join(root, 'templates', 'llmserve.yaml'), 'utf8').replace(/^model: .*$/m, `model: ${model}   # a local model directory or a hub id`));
  assertAccepted(await probe(path.join(dir, 'llmserve.yaml'), [], script), "the single file's init output");
});

test('the single-file build starts vLLM (fake) and its own proxy child, serves, and stops on SIGTERM', async (t) => {
  const dir = await tempDir();
  const script = path.join(dir, 'llmserve.mjs');
  copyFileSync(single, script);
  const model = await makeModelDir();
  const probeDir = path.join(dir, 'probe');
  const [port, backendPort] = [await freePort(), await freePort()];
  const marker = `llmserve-test-${randomUUID()}`;
  const child = spawn(process.execPath, [script, 'start', '--model', model, '--served-model-name', 'm', '--port', String(port), '--backend-port', String(backendPort), '--probe-dir', probeDir, '--health-interval', '0.5'], {
    cwd: dir,
    env: envWithFakes({ LLMSERVE_TEST_MARKER: marker, LLMSERVE_MASTER_KEY: KEY, FAKE_VLLM_LOAD_MS: '200', LLMSERVE_CONFIG: undefined }),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (c: Buffer) => (output += c.toString()));
  child.stderr.on('data', (c: Buffer) => (output += c.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  t.after(async () => {
    killByMarker(marker);
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await exited;
    await waitFor(() => findByMarker(marker).length === 0, { timeoutMs: 30_000, message: 'marked processes to be gone' });
  });

  // Ready = the proxy answers /health/readiness with 200 (vLLM answered) and the supervisor removed not-ready.
  const ready = async () => (await fetch(`http://127.0.0.1:${port}/health/readiness`).catch(() => null))?.status === 200;
  await waitFor(ready, { timeoutMs: 60_000, message: `readiness 200\n${output}` });
  await waitForFile(path.join(probeDir, 'not-ready'), false, 30_000);
  // The proxy child is this same file re-run (`node llmserve.mjs proxy`): no node_modules, no dist/ beside it.
  const procs = findByMarker(marker).map((p) => p.cmdline);
  assert.ok(procs.some((c) => c.includes(`${script} proxy`)), procs.join("\n"));
  const res = await fetch(`http://127.0.0.1:${port}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${KEY}` },
    body: JSON.stringify({ model: 'm', messages: [{ role: 'user', content: 'hi' }] }),
  });
  assert.equal(res.status, 200, await res.clone().text());
  assert.equal(((await res.json()) as { object: string }).object, 'chat.completion');

  child.kill('SIGTERM');
  assert.equal(await exited, 0, output);
  await waitFor(() => findByMarker(marker).length === 0, { timeoutMs: 30_000, message: `nothing left behind\n${output}` });
  assert.ok(!output.includes(KEY), 'the key must not be printed');
  // Alone, the file finds no better-sqlite3; a Node without node:sqlite then keeps usage in memory, and says what
  // would keep it (a driver), not a directory to change.
  if (!hasNodeSqlite) assert.match(output, /no SQLite driver .*to keep usage, run llmserve on Node >= 22\.13 .*npm rebuild better-sqlite3/, output);
});

/** Whether this Node loads node:sqlite without a flag (22.13 and later). */
const hasNodeSqlite = spawnSync(process.execPath, ['-e', "require('node:sqlite')"], { stdio: 'ignore' }).status === 0;

test('the single file on a Node without node:sqlite: usage names the missing driver and its fix, not file permissions', { skip: hasNodeSqlite ? 'this Node has node:sqlite' : false }, async () => {
  const dir = await tempDir();
  const script = path.join(dir, 'llmserve.mjs');
  copyFileSync(single, script);
  const usageDir = path.join(dir, 'usage');
  mkdirSync(usageDir);
  writeFileSync(path.join(usageDir, 'llmserve-usage.db'), '');
  const r = run(['usage'], { script, cwd: dir, env: { LLMSERVE_USAGE_DIR: usageDir } });
  assert.equal(r.code, 1, r.all);
  assert.match(r.all, /cannot read the usage store .*: no SQLite driver \(node:sqlite: .*; better-sqlite3: /, r.all);
  assert.match(r.all, /Fix: run llmserve on Node >= 22\.13 \(its built-in node:sqlite\), or install better-sqlite3@12/, r.all);
  assert.doesNotMatch(r.all, /read access/);
});

test('the demo: its banner names the line after which its curl is served, on the port given with --port', async (t) => {
  const [port, backendPort] = [await freePort(), await freePort()];
  // Its own backend port too: the default (3000) may be taken on this machine, or checked by another test meanwhile.
  const demo = runLlmserve(['--port', String(port), '--backend-port', String(backendPort)], { LLMSERVE_MASTER_KEY: KEY, DEMO_PORT: undefined, LLMSERVE_PORT: undefined }, path.join(root, 'scripts', 'demo.mjs'));
  t.after(async () => {
    await demo.cleanup();
    // The demo's model and probe files live in a temporary directory of its own.
    const probeDir = /Probe files: (\S+)/.exec(demo.output())?.[1];
    if (probeDir !== undefined) rmSync(path.dirname(probeDir), { recursive: true, force: true });
  });
  const curl = await demo.waitForLine(/curl -s /);
  assert.match(curl, new RegExp(`curl -s http://127\\.0\\.0\\.1:${port}/v1/chat/completions `));
  // The line to wait for is start's own "ready after", not "vLLM is ready" (printed before the proxy serves).
  assert.ok(demo.output().includes(`once llmserve prints "ready after N s: http://127.0.0.1:${port} serves ..."`), demo.output());
  await demo.waitForLine(new RegExp(`^llmserve \\| ready after [\\d.]+ s: http://127\\.0\\.0\\.1:${port} serves `), 60_000);
  const res = await fetch(`http://127.0.0.1:${port}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${KEY}` },
    body: JSON.stringify({ model: 'Demo-Model-1.5B', messages: [{ role: 'user', content: 'Hello' }] }),
  });
  assert.equal(res.status, 200, await res.text());
  demo.child.kill('SIGTERM');
  assert.equal((await demo.exited).code, 0, demo.output());
  await waitFor(() => findByMarker(demo.marker).length === 0, { timeoutMs: 30_000, message: `nothing left behind\n${demo.output()}` });
});

test('npm pack ships only what runs: bin, dist without maps, templates, examples, README', () => {
  // --ignore-scripts: no prepack build here (the suite has built already; rebuilding would race other tests).
  const r = spawnSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: root, encoding: 'utf8', timeout: 60_000 });
  assert.equal(r.status, 0, r.stderr);
  const [pack] = JSON.parse(r.stdout) as { files: { path: string }[] }[];
  const files = pack!.files.map((f) => f.path);
  for (const f of ['bin/llmserve.js', 'bin/early-signals.js', 'bin/package.json', 'dist/lean/check.cjs', 'dist/main.js', 'dist/cli.js', 'dist/commands/init.js', 'dist/commands/keys.js', 'templates/llmserve.yaml', 'examples/kubernetes/deployment.yaml', 'examples/docker/Dockerfile', 'README.md', 'package.json']) {
    assert.ok(files.includes(f), `${f} missing from the package`);
  }
  const unwanted = files.filter((f) => f.endsWith('.map') || f.endsWith('.ts') || /^(src|test|scripts|bench|docs)\//.test(f) || f === 'dist/llmserve.mjs' || (f.startsWith('bin/') && !['bin/llmserve.js', 'bin/early-signals.js', 'bin/package.json'].includes(f)));
  assert.deepEqual(unwanted, []);
});
