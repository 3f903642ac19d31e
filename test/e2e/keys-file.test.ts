// `proxy.keys_file` through `llmserve start`: `os.environ/NAME` entries work at start and after SIGHUP, and their
// values still never reach vLLM.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { tempDir } from '../helpers/fixtures.js';
import { findByMarker } from '../helpers/procs.js';
import { startService, TEST_KEY } from '../helpers/service.js';
import { waitFor, waitForFile } from '../helpers/wait.js';

const BOB = 'sk-bob-from-env-0123456789abcdef';
const CAROL = 'sk-carol-literal-0123456789abcdef';
const DAVE = 'sk-dave-from-env-0123456789abcdef';
const ERIN = 'sk-erin-literal-0123456789abcdef';

async function statusWith(port: number, key: string): Promise<number> {
  const res = await fetch(`http://127.0.0.1:${port}/v1/models`, { headers: { authorization: `Bearer ${key}` } });
  await res.arrayBuffer();
  return res.status;
}

test('keys_file with os.environ/NAME entries: served at start and after SIGHUP; the values stay out of vLLM, a restarted one too', async (t) => {
  const keysFile = path.join(await tempDir('llmserve-keys-'), 'keys.yaml');
  writeFileSync(keysFile, `- name: bob\n  key: os.environ/BOB_KEY\n- name: carol\n  key: ${CAROL}\n`);
  // DAVE_COPY and ERIN_COPY: inherited variables that hold keys a reload adds (by DAVE_KEY's name, and written in the
  // file itself), as OPENAI_API_KEY set to a key does; a vLLM started after the reload must not get them either.
  const svc = await startService({ config: `restart:\n  backoff_initial: 0.1\nproxy:\n  keys_file: ${keysFile}\n`, env: { BOB_KEY: BOB, DAVE_KEY: DAVE, DAVE_COPY: DAVE, ERIN_COPY: ERIN } });
  t.after(async () => assert.equal(await svc.run.cleanup(), 0, 'no process may be left behind'));
  await svc.waitReady();

  assert.equal(await statusWith(svc.port, TEST_KEY), 200);
  assert.equal(await statusWith(svc.port, BOB), 200, 'a keys-file entry from the environment is accepted at start');
  assert.equal(await statusWith(svc.port, CAROL), 200, 'a literal keys-file entry is accepted at start');
  assert.equal(await statusWith(svc.port, DAVE), 401);
  assert.doesNotMatch(svc.run.output(), /is not set/);

  // vLLM's environment has none of the key variables that the config and the keys file used at start (DAVE_KEY
  // is not a key yet: nothing refers to it).
  const started = JSON.parse(readFileSync(path.join(svc.dir, 'vllm-argv.jsonl'), 'utf8').trim().split('\n')[0]!) as { env: Record<string, string> };
  const env = JSON.stringify(started.env);
  for (const secret of [BOB, TEST_KEY]) assert.ok(!env.includes(secret), 'a key reached vLLM');

  // Carol removed, dave added from the environment; SIGHUP applies both.
  writeFileSync(keysFile, `- name: bob\n  key: os.environ/BOB_KEY\n- name: dave\n  key: os.environ/DAVE_KEY\n- name: erin\n  key: ${ERIN}\n`);
  const loadedBefore = svc.run.lines.filter((l) => /keys loaded: /.test(l)).length;
  svc.run.child.kill('SIGHUP');
  await waitFor(() => svc.run.lines.filter((l) => /keys loaded: /.test(l)).length > loadedBefore, { timeoutMs: 30_000, message: 'a `keys loaded` line after SIGHUP' });
  assert.ok(svc.run.lines.some((l) => l.includes(`SIGHUP received: reloading keys from ${keysFile}`)), svc.run.output());
  // With several proxy workers each reloads on its own: wait until the change is in force on every connection.
  await waitFor(async () => (await statusWith(svc.port, DAVE)) === 200 && (await statusWith(svc.port, CAROL)) === 401, {
    timeoutMs: 30_000,
    message: 'dave accepted and carol refused after SIGHUP',
  });
  assert.equal(await statusWith(svc.port, BOB), 200);
  assert.equal(await statusWith(svc.port, TEST_KEY), 200);
  assert.doesNotMatch(svc.run.output(), /is not set/);

  // DAVE_KEY (and the copies) became keys: the running vLLM has them (no keys at its start), one started from now on not.
  await svc.run.waitForLine(/keys that \S+ now lists are in DAVE_COPY, DAVE_KEY, ERIN_COPY: the running vLLM was started with those variables \(no keys then\); every vLLM started from now on is started without them/, 30_000);
  // A key the reload added is redacted from every line from now on, as the keys known at start are: here a path that
  // holds it, in the proxy's access log (vLLM's own access log of a URL would be another such line).
  const refused = await fetch(`http://127.0.0.1:${svc.port}/nowhere/${DAVE}`, { headers: { authorization: `Bearer ${TEST_KEY}` } });
  await refused.arrayBuffer();
  assert.equal(refused.status, 404);
  await svc.run.waitForLine(/GET \/nowhere\/\S+ model=- 404/, 30_000);
  assert.ok(!svc.run.output().includes(DAVE), 'a key added by SIGHUP was printed');
  const api = svc.vllmStarts()[0]!.pid;
  process.kill(api, 'SIGKILL');
  await waitFor(() => svc.vllmStarts().length === 2, { timeoutMs: 60_000, message: 'the restarted vLLM' });
  const restartedEnv = JSON.stringify((JSON.parse(readFileSync(path.join(svc.dir, 'vllm-argv.jsonl'), 'utf8').trim().split('\n')[1]!) as { env: Record<string, string> }).env);
  for (const secret of [BOB, DAVE, ERIN, TEST_KEY]) assert.ok(!restartedEnv.includes(secret), `a key reached the restarted vLLM: ${restartedEnv}`);
  await waitForFile(svc.notHealthy, false, 60_000);
  assert.equal(await statusWith(svc.port, DAVE), 200);

  svc.run.child.kill('SIGTERM');
  assert.equal((await svc.run.exited).code, 0, svc.run.output());
});

test('a proxy restarted while the keys file is broken serves the keys last loaded: none locked out, none brought back', async (t) => {
  const keysFile = path.join(await tempDir('llmserve-keys-'), 'keys.yaml');
  writeFileSync(keysFile, `- name: carol\n  key: ${CAROL}\n`);
  // Two proxy workers: the keys each loads reach the supervisor through the cluster primary.
  const svc = await startService({ config: `restart:\n  backoff_initial: 0.1\nproxy:\n  workers: 2\n  keys_file: ${keysFile}\n`, env: { DAVE_KEY: DAVE } });
  t.after(async () => assert.equal(await svc.run.cleanup(), 0, 'no process may be left behind'));
  await svc.waitReady();
  // Carol revoked and dave added by a reload; then someone's edit leaves the file broken (no SIGHUP needed).
  writeFileSync(keysFile, `- name: dave\n  key: os.environ/DAVE_KEY\n`);
  svc.run.child.kill('SIGHUP');
  await waitFor(async () => (await statusWith(svc.port, DAVE)) === 200 && (await statusWith(svc.port, CAROL)) === 401, { timeoutMs: 30_000, message: 'the reload in force' });
  writeFileSync(keysFile, `- name: dave\n   key: [unclosed\n`);
  // The proxy crashes and the supervisor restarts it: it finds the file broken.
  const proxyChild = (notPid = -1) => findByMarker(svc.run.marker).find((p) => / proxy$/.test(p.cmdline) && p.ppid === svc.run.child.pid && p.pid !== notPid);
  const proxy = await waitFor(() => proxyChild(), { timeoutMs: 30_000, message: 'the proxy child' });
  process.kill(proxy.pid, 'SIGKILL');
  await svc.run.waitForLine(/the proxy exited \(signal SIGKILL\): restarting only the proxy/, 30_000);
  await waitFor(() => proxyChild(proxy.pid), { timeoutMs: 60_000, message: 'a new proxy' });
  await svc.run.waitForLine(/keeping the 2 keys in use before \(1 as last loaded from /, 60_000);
  await waitFor(async () => (await statusWith(svc.port, TEST_KEY).catch(() => 0)) === 200, { timeoutMs: 60_000, message: 'the new proxy serving' });
  assert.equal(await statusWith(svc.port, DAVE), 200, 'a key added by the reload still works');
  assert.equal(await statusWith(svc.port, CAROL), 401, 'a key the reload removed stays out');
  svc.run.child.kill('SIGTERM');
  assert.equal((await svc.run.exited).code, 0, svc.run.output());
});
