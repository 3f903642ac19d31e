// `proxy.workers: N`: the proxy child as a cluster primary: every worker gets the settings and the supervisor's
// messages (state, drain), and the workers stop with the primary, also when it is killed.
import { X509Certificate } from 'node:crypto';
import { connect as tlsConnect } from 'node:tls';
import { hasOpenssl, selfSignedCert, strayKey } from '../helpers/tls.js';
import { waitFor } from '../helpers/wait.js';
import assert from 'node:assert/strict';
import { fork } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import http from 'node:http';
import { fileURLToPath } from 'node:url';
import { it } from 'node:test';
import os from 'node:os';
import path from 'node:path';
import { othersServing, recordWorkerExit } from '../../src/proxy/cluster-primary.js';
import { proxySettings, type ChildMessage, type ProxySettings } from '../../src/proxy/settings.js';
import { KEY, bearer, request, sha256Hex, startUpstream, until } from '../helpers/upstream.js';

const fixture = fileURLToPath(new URL('../fixtures/run-proxy.mts', import.meta.url));

/** Live children of a process running the fixture (the workers; tsx may add an esbuild child). */
function childrenOf(pid: number): number[] {
  const out: number[] = [];
  for (const name of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${name}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(fields[1]) === pid && fields[0] !== 'Z' && fs.readFileSync(`/proc/${name}/cmdline`, 'utf8').includes('run-proxy')) out.push(Number(name));
    } catch {
      // gone
    }
  }
  return out;
}

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

function start(t: { after: (f: () => void) => void }, backendUrl: string, logFormat: 'text' | 'json' = 'text', over: Partial<ProxySettings> = {}) {
  const child = fork(fixture, [], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'pipe', 'pipe', 'ipc'], detached: true });
  let output = '';
  child.stdout?.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (output += d.toString()));
  const messages: ChildMessage[] = [];
  child.on('message', (m: ChildMessage) => messages.push(m));
  const next = async (type: ChildMessage['type']) => {
    await until(() => messages.some((m) => m.type === type), 20_000, `a ${type} message; output:\n${output}`);
    return messages.splice(messages.findIndex((m) => m.type === type), 1)[0]!;
  };
  t.after(() => {
    if (child.exitCode === null) child.kill('SIGKILL');
  });
  child.send({ type: 'start', settings: proxySettings({ backendUrl, keys: [{ name: 'alice', sha256Hex: sha256Hex(KEY) }], servedModelName: 'test-model', state: 'starting', workers: 2, logFormat, ...over }) });
  return { child, next, output: () => output };
}

/** A fake upstream and the proxy with two workers in front of it, listening. */
async function startListening(t: { after: (f: () => void) => void }) {
  const upstream = await startUpstream();
  t.after(() => upstream.close());
  const started = start(t, upstream.url);
  const { port } = (await started.next('listening')) as { port: number };
  const workers = childrenOf(started.child.pid!);
  assert.equal(workers.length, 2, started.output());
  return { upstream, port, workers, ...started };
}

it('workers: 2 serves from two processes, relays state and drain, exits with the primary', async (t) => {
  const { upstream, child, next, output, port, workers } = await startListening(t);

  // `activity` (a slow /health: busy or hung?): the backend has sent nothing to any worker yet.
  child.send({ type: 'activity', seq: 2 });
  assert.deepEqual(await next('activity'), { type: 'activity', seq: 2, sinceMs: { [upstream.url]: null }, waiting: { [upstream.url]: { count: 0, heardMs: null } } });
  assert.equal((await request(port, '/v1/models', { headers: bearer })).status, 503);
  const refused = 1;
  child.send({ type: 'state', state: 'ready', seq: 7 });
  // `state-applied` comes once every worker has the state (the supervisor then removes the probe files): from then
  // on no connection, whichever worker the kernel hands it to, is refused.
  assert.deepEqual(await next('state-applied'), { type: 'state-applied', seq: 7 });
  for (let i = 0; i < 20; i++) assert.equal((await request(port, '/v1/models', { headers: bearer })).status, 200, `request ${i} after state-applied`);

  // Whichever worker a scrape reaches, /metrics shows the whole proxy: every 503 counted once, state not doubled. A
  // scrape may leave out a worker that did not answer the primary within its timeout (a loaded machine): never more
  // than every 503 counted, and the whole count once each worker answers.
  for (let i = 0; i < 6; i++) {
    let page = '';
    const deadline = Date.now() + 30_000;
    for (;;) {
      page = (await request(port, '/metrics', { headers: bearer })).text;
      const counted503 = [...page.matchAll(/^llmserve_requests_total\{[^}]*status="503"\} (\d+)$/gm)].reduce((n, m) => n + Number(m[1]), 0);
      assert.ok(counted503 <= refused, page);
      if (counted503 === refused) break;
      assert.ok(Date.now() < deadline, `scrape ${i}: ${counted503} of ${refused} 503s counted for 30 s\n${page}`);
    }
    assert.match(page, /^llmserve_backend_state\{state="ready"\} 1$/m);
  }

  // Now it has, to one worker or both: the least of their figures, within the proxy's one-second resolution.
  child.send({ type: 'activity', seq: 3 });
  const activity = (await next('activity')) as Extract<ChildMessage, { type: 'activity' }>;
  assert.equal(activity.seq, 3);
  const since = activity.sinceMs[upstream.url];
  assert.ok(typeof since === 'number' && since >= 0 && since <= 10_000, JSON.stringify(activity));
  // Two questions at once (two models' health checks timing out together): each gets its answer.
  child.send({ type: 'activity', seq: 4 });
  child.send({ type: 'activity', seq: 5 });
  const answered = [await next('activity'), await next('activity')].map((m) => (m as Extract<ChildMessage, { type: 'activity' }>).seq);
  assert.deepEqual(answered.sort(), [4, 5]);

  // Streams that wait on the backend (head sent, no event yet), whichever worker carries each: summed.
  upstream.behaviour.firstEventDelayMs = 60_000;
  const held = [0, 1, 2].map(() => {
    const req = http.request({ port, method: 'POST', path: '/v1/chat/completions', headers: { ...bearer, 'content-type': 'application/json' } });
    req.on('error', () => {});
    req.end(JSON.stringify({ model: 'test-model', stream: true, messages: [] }));
    return req;
  });
  await until(() => upstream.requests.filter((r) => r.path === '/v1/chat/completions').length === 3, 10_000, 'the three streams at the upstream');
  // Counted once they have waited a sweep period (a second); each got its head (a byte, to within that), no event.
  let seq = 5;
  let waiting: { count: number; heardMs: number | null } | undefined;
  const deadline = Date.now() + 10_000;
  while (waiting?.count !== 3 && Date.now() < deadline) {
    child.send({ type: 'activity', seq: ++seq });
    waiting = ((await next('activity')) as Extract<ChildMessage, { type: 'activity' }>).waiting[upstream.url];
  }
  assert.equal(waiting?.count, 3, JSON.stringify(waiting));
  assert.ok(typeof waiting.heardMs === 'number' && waiting.heardMs <= 10_000, JSON.stringify(waiting));
  for (const req of held) req.destroy();
  await until(() => upstream.requests.filter((r) => r.path === '/v1/chat/completions' && r.clientClosedAt !== null).length === 3, 10_000, 'the upstream to see the streams closed');
  child.send({ type: 'activity', seq: ++seq });
  assert.deepEqual(((await next('activity')) as Extract<ChildMessage, { type: 'activity' }>).waiting[upstream.url], { count: 0, heardMs: null });

  child.send({ type: 'drain', timeoutMs: 1000 });
  assert.deepEqual(await next('drained'), { type: 'drained', remaining: 0 });
  assert.ok(!output().includes(KEY));

  child.disconnect();
  const [code] = (await once(child, 'exit')) as [number | null];
  assert.equal(code, 0);
  await until(() => workers.every((pid) => !alive(pid)), 5000, 'the workers to exit');
});

it('workers: 2, a worker that dies is replaced with the state in force, the other worker taking over its lines; the next state is confirmed by both', async (t) => {
  const { upstream, child, next, output, port, workers } = await startListening(t);
  t.after(() => childrenOf(child.pid!).forEach((pid) => process.kill(pid, 'SIGKILL')));
  child.send({ type: 'state', state: 'ready', seq: 1, restarts: 2 });
  assert.deepEqual(await next('state-applied'), { type: 'state-applied', seq: 1 });
  // The first worker speaks for both: it has said the state change, the second has not.
  await until(() => /backend state: starting -> ready/.test(output()), 5000, 'the state line');
  process.kill(workers[0]!, 'SIGKILL');
  await until(() => /proxy worker \d+ replaced/.test(output()), 20_000, `the replacement; output:\n${output()}`);
  const now = childrenOf(child.pid!);
  assert.equal(now.length, 2, output());
  assert.ok(now.includes(workers[1]!) && !now.includes(workers[0]!));
  // The new worker started with the state in force (not the start message's `starting`): no connection is refused,
  // whichever worker the kernel hands it to.
  for (let i = 0; i < 20; i++) assert.equal((await request(port, '/v1/models', { headers: bearer })).status, 200, `request ${i} after the replacement`);
  for (let i = 0; i < 4; i++) {
    const page = (await request(port, '/metrics', { headers: bearer })).text;
    assert.match(page, /^llmserve_backend_restarts_total 2$/m);
    assert.match(page, /^llmserve_proxy_worker_replacements_total 1$/m);
  }
  // A state sent now waits for both workers, the new one included, and the surviving worker says it.
  child.send({ type: 'state', state: 'restarting', seq: 2, restarts: 3 });
  assert.deepEqual(await next('state-applied'), { type: 'state-applied', seq: 2 });
  for (let i = 0; i < 10; i++) assert.equal((await request(port, '/v1/models', { headers: bearer })).status, 503);
  await until(() => /backend state: ready -> restarting/.test(output()), 5000, `the state line from the worker that took over; output:\n${output()}`);
  assert.equal(output().match(/backend state: ready -> restarting/g)?.length, 1, output());
  // The replacement repeated no start-up line: one "listening on" in all.
  assert.equal(output().match(/listening on http/g)?.length, 1, output());
  child.disconnect();
  await once(child, 'exit');
  await until(() => childrenOf(child.pid!).length === 0, 5000, 'the workers to exit');
});

it('workers: 2, several models: a replacement worker starts with each model\'s state as the supervisor last sent it', async (t) => {
  const alpha = await startUpstream({ served: 'alpha' });
  const beta = await startUpstream({ served: 'beta' });
  t.after(() => (alpha.close(), beta.close()));
  const backends = [{ name: 'alpha', url: alpha.url }, { name: 'beta', url: beta.url }];
  const { child, next, output } = start(t, alpha.url, 'text', { backends, backendStates: { alpha: 'starting', beta: 'starting' } });
  const { port } = (await next('listening')) as { port: number };
  const workers = childrenOf(child.pid!);
  assert.equal(workers.length, 2, output());
  t.after(() => childrenOf(child.pid!).forEach((pid) => process.kill(pid, 'SIGKILL')));
  child.send({ type: 'state', state: 'ready', model: 'alpha', seq: 1 });
  child.send({ type: 'state', state: 'ready', model: 'beta', seq: 2 });
  child.send({ type: 'state', state: 'restarting', model: 'beta', seq: 3 });
  // Confirmed one by one (or together, when both workers applied several at once): up to 3.
  while (((await next('state-applied')) as { seq: number }).seq < 3);
  process.kill(workers[1]!, 'SIGKILL');
  await until(() => /proxy worker \d+ replaced/.test(output()), 20_000, `the replacement; output:\n${output()}`);
  const chat = (model: string) => request(port, '/v1/chat/completions', { headers: bearer, body: { model, messages: [{ role: 'user', content: 'hi' }] } });
  // Fresh connections, spread by the kernel over the old worker and the new one: alpha serves, beta restarts.
  for (let i = 0; i < 10; i++) {
    const a = await chat('alpha');
    assert.equal(a.status, 200, `alpha, request ${i}: ${a.text}`);
    const b = await chat('beta');
    assert.equal(b.status, 503, `beta, request ${i}: ${b.text}`);
    assert.match(b.text, /restarting/);
  }
  child.disconnect();
  await once(child, 'exit');
  await until(() => childrenOf(child.pid!).length === 0, 5000, 'the workers to exit');
});

it('workers: 2, a saturated backend (/health late, a stream flowing through one worker): readiness says busy on both workers', async (t) => {
  const upstream = await startUpstream({ behaviour: { events: 1000, intervalMs: 20, healthDelayMs: 10_000 } });
  t.after(() => upstream.close());
  const { child, next, output } = start(t, upstream.url);
  const { port } = (await next('listening')) as { port: number };
  child.send({ type: 'state', state: 'ready', seq: 1 });
  await next('state-applied');
  // One stream, on whichever worker the kernel gives its connection to; the other worker relays nothing.
  const stream = http.request({ host: '127.0.0.1', port, path: '/v1/chat/completions', method: 'POST', agent: false, headers: { ...bearer, 'content-type': 'application/json' } });
  t.after(() => stream.destroy());
  stream.end(JSON.stringify({ model: 'test-model', stream: true, messages: [] }));
  const [res] = (await once(stream, 'response')) as [http.IncomingMessage];
  await once(res, 'data');
  // Readiness on fresh connections, spread by the kernel over both workers: each judges the late /health by what
  // every worker relays (through the primary), so none answers 503 for want of traffic of its own.
  const answers = await Promise.all(Array.from({ length: 8 }, () => request(port, '/health/readiness')));
  for (const a of answers) {
    assert.equal(a.status, 200, `${a.text}\n${output()}`);
    assert.match(String((a.json() as { backend: string }).backend), /^busy: \/health did not answer within 1000 ms/);
  }
  child.disconnect();
  await once(child, 'exit');
});

it('workers: 2, one worker that cannot answer (stopped): the activity question is answered with the others\' figures', async (t) => {
  const upstream = await startUpstream();
  t.after(() => upstream.close());
  const { child, next } = start(t, upstream.url);
  await next('listening');
  const [stopped] = childrenOf(child.pid!);
  process.kill(stopped!, 'SIGSTOP');
  t.after(() => void (alive(stopped!) && process.kill(stopped!, 'SIGCONT')));
  // Before, the question waited for the stopped worker for good: the supervisor's busy-or-hung judgement got no answer.
  child.send({ type: 'activity', seq: 11 });
  assert.deepEqual(await next('activity'), { type: 'activity', seq: 11, sinceMs: { [upstream.url]: null }, waiting: { [upstream.url]: { count: 0, heardMs: null } } });
  process.kill(stopped!, 'SIGCONT');
  child.disconnect();
  await once(child, 'exit');
});

it('workers: 2, a drain with requests in flight on both workers: one "draining:" line with their sum', async (t) => {
  const upstream = await startUpstream({ behaviour: { events: 1000, intervalMs: 20 } });
  t.after(() => upstream.close());
  const { child, next, output } = start(t, upstream.url);
  const { port } = (await next('listening')) as { port: number };
  child.send({ type: 'state', state: 'ready', seq: 1 });
  await next('state-applied');
  // Streams on fresh connections, which the kernel spreads over both workers.
  const n = 12;
  await Promise.all(
    Array.from({ length: n }, async () => {
      const stream = http.request({ host: '127.0.0.1', port, path: '/v1/chat/completions', method: 'POST', agent: false, headers: { ...bearer, 'content-type': 'application/json' } });
      t.after(() => stream.destroy());
      stream.on('error', () => {});
      stream.end(JSON.stringify({ model: 'test-model', stream: true, messages: [] }));
      const [res] = (await once(stream, 'response')) as [http.IncomingMessage];
      res.on('error', () => {});
      await once(res, 'data');
    }),
  );
  child.send({ type: 'drain', timeoutMs: 200 });
  assert.deepEqual(await next('drained'), { type: 'drained', remaining: n });
  // Each worker's own count, one line per worker, read as the whole: the primary says the sum, once.
  const lines = output().split('\n').filter((l) => l.includes('draining:'));
  assert.deepEqual(lines, [`proxy  | draining: ${n} requests in flight, waiting up to 200 ms`], output());
  child.disconnect();
  await once(child, 'exit');
});

/** The proxy with two workers in front of a fake upstream, its keys file (written with `text`) in a temporary folder. */
async function startWithKeysFile(t: { after: (f: () => void) => void }, text: string, over: Partial<ProxySettings> = {}) {
  const upstream = await startUpstream();
  t.after(() => upstream.close());
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'llmserve-keys-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const keysFile = path.join(dir, 'keys.yaml');
  fs.writeFileSync(keysFile, text);
  const started = start(t, upstream.url, 'text', { keysFile, ...over });
  const { port } = (await started.next('listening')) as { port: number };
  return { keysFile, port, ...started };
}

it('workers: 2, a keys file that does not load on reload: one error line, not one per worker', async (t) => {
  const { child, output, keysFile } = await startWithKeysFile(t, '- name: bob\n  key_sha256: ' + sha256Hex('sk-bob-0123456789abcdef0123') + '\n');
  fs.writeFileSync(keysFile, '- name: bob\n  key: [broken\n');
  const errors = () => output().split('\n').filter((l) => /error: .*keys\.yaml.*keeping the \d+ keys in use/.test(l));
  child.send({ type: 'reload-keys' });
  await until(() => errors().length > 0, 10_000, `an error line; output:\n${output()}`);
  // Both workers have read the file by now: give a second line the time to arrive, if one were coming (a fixed wait:
  // what is asserted is that nothing more comes).
  await new Promise((r) => setTimeout(r, 2000));
  assert.equal(errors().length, 1, output());
  // A second SIGHUP that finds the file as broken says it again, once.
  child.send({ type: 'reload-keys' });
  await until(() => errors().length > 1, 10_000, `a second error line; output:\n${output()}`);
  await new Promise((r) => setTimeout(r, 2000));
  assert.equal(errors().length, 2, output());
  child.disconnect();
  await once(child, 'exit');
});

it('workers: 2, a reload that revokes one key and gives another a limit: the revocation applies in every worker, the limit not', async (t) => {
  const [BOB, CAROL] = ['sk-bob-0123456789abcdef0123', 'sk-carol-0123456789abcdef012'];
  const { child, output, keysFile, port } = await startWithKeysFile(t, `- name: bob\n  key: ${BOB}\n- name: carol\n  key: ${CAROL}\n`, { state: 'ready' });
  const as = (key: string) => ({ authorization: `Bearer ${key}`, connection: 'close' });
  assert.equal((await request(port, '/v1/models', { headers: as(CAROL) })).status, 200);
  // One edit: carol revoked (a leaked key), bob given a limit that two workers cannot count as one.
  fs.writeFileSync(keysFile, `- name: bob\n  key: ${BOB}\n  rpm: 1\n- name: carol\n  key: ${CAROL}\n  disabled: true\n`);
  child.send({ type: 'reload-keys' });
  // Before, the whole file was refused for bob's limit, and carol's key went on working.
  await until(() => output().includes('those limits are not applied'), 10_000, `the error line; output:\n${output()}`);
  await waitFor(async () => {
    const statuses = await Promise.all(Array.from({ length: 6 }, () => request(port, '/v1/models', { headers: as(CAROL) }).then((r) => r.status)));
    return statuses.every((s) => s === 401);
  }, { timeoutMs: 10_000, message: 'carol refused by every worker' });
  // bob is served as before, without the limit (rpm: 1 would refuse the second of these).
  for (let i = 0; i < 4; i++) assert.equal((await request(port, '/v1/models', { headers: as(BOB) })).status, 200, `bob's request ${i}`);
  assert.match(output(), /error: .*keys\.yaml: it gives limits to bob, but the proxy runs 2 processes, each of which would allow the full limit: those limits are not applied \(the rest of the file is\)/);
  child.disconnect();
  await once(child, 'exit');
});

it('workers: 2 with TLS, SIGHUP (reload-tls): every worker serves the renewed certificate; one line says so', { skip: hasOpenssl() ? false : 'openssl not installed' }, async (t) => {
  const upstream = await startUpstream();
  t.after(() => upstream.close());
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'llmserve-tls-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const tlsFiles = selfSignedCert(dir);
  const { child, next, output } = start(t, upstream.url, 'text', { tls: tlsFiles });
  const { port } = (await next('listening')) as { port: number };
  const fingerprint = () =>
    new Promise<string>((resolve, reject) => {
      const socket = tlsConnect({ host: '127.0.0.1', port, rejectUnauthorized: false }, () => {
        resolve(socket.getPeerX509Certificate()!.fingerprint256);
        socket.end();
      });
      socket.on('error', reject);
    });
  const renewed = selfSignedCert(fs.mkdtempSync(path.join(dir, 'new-')));
  fs.renameSync(renewed.cert, tlsFiles.cert);
  fs.renameSync(renewed.key, tlsFiles.key);
  const expected = new X509Certificate(fs.readFileSync(tlsFiles.cert)).fingerprint256;
  child.send({ type: 'reload-tls' });
  const said = () => output().split('\n').filter((l) => l.includes('TLS certificate reloaded'));
  await until(() => said().length > 0, 10_000, `the reload line; output:\n${output()}`);
  // Connections go to both workers in turn: each of eight handshakes must show the renewed certificate.
  await waitFor(async () => (await Promise.all(Array.from({ length: 8 }, fingerprint))).every((f) => f === expected), { timeoutMs: 10_000, message: 'every worker to serve the renewed certificate' });
  assert.equal(said().length, 1, output());
  // Then a key of no certificate: each worker finds the same fault, one error line says it (it was one per worker).
  fs.copyFileSync(strayKey(dir), tlsFiles.key);
  child.send({ type: 'reload-tls' });
  const refused = () => output().split('\n').filter((l) => l.includes('TLS certificate not reloaded, the one in use stays'));
  await until(() => refused().length > 0, 10_000, `the error line; output:\n${output()}`);
  // Both workers have read the files by now: the time for a second line to arrive, if one were coming (a fixed wait:
  // what is asserted is that nothing more comes).
  await new Promise((r) => setTimeout(r, 2000));
  assert.equal(refused().length, 1, output());
  assert.ok((await Promise.all(Array.from({ length: 8 }, fingerprint))).every((f) => f === expected), 'the renewed certificate stays');
  child.disconnect();
  await once(child, 'exit');
});

it('workers: 4, a usage store that cannot be used: one warning, not one per worker', async (t) => {
  const upstream = await startUpstream();
  t.after(() => upstream.close());
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'llmserve-usage-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  // A file where the store's directory should be: every worker finds the same fault.
  fs.writeFileSync(path.join(dir, 'not-a-dir'), '');
  const { child, next, output } = start(t, upstream.url, 'text', { workers: 4, usage: { dir: path.join(dir, 'not-a-dir', 'usage'), track: 'limited', flushInterval: 5 } });
  await next('listening');
  // Every worker warned (through the primary) before it listened, and the primary said `listening` after all four.
  const warnings = () => output().split('\n').filter((l) => /usage store .* cannot be used/.test(l));
  await until(() => warnings().length > 0, 10_000, `the warning; output:\n${output()}`);
  assert.equal(warnings().length, 1, output());
  child.disconnect();
  await once(child, 'exit');
  await until(() => childrenOf(child.pid!).length === 0, 5000, 'the workers to exit');
});

it('workers exit when the primary is killed', async (t) => {
  const upstream = await startUpstream();
  t.after(() => upstream.close());
  const { child, next } = start(t, upstream.url);
  await next('listening');
  const workers = childrenOf(child.pid!);
  assert.equal(workers.length, 2);
  t.after(() => workers.filter(alive).forEach((pid) => process.kill(pid, 'SIGKILL')));
  child.kill('SIGKILL');
  await until(() => workers.every((pid) => !alive(pid)), 5000, 'the workers to exit');
});

it('the workers\' access-log lines reach stdout whole, written by the primary alone', async (t) => {
  const upstream = await startUpstream();
  t.after(() => upstream.close());
  const { child, next, output } = start(t, upstream.url, 'json');
  const { port } = (await next('listening')) as { port: number };
  child.send({ type: 'state', state: 'ready', seq: 1 });
  await next('state-applied');
  // A reader that falls behind (a busy supervisor): the pipe fills, and writes of big batches go out in pieces.
  child.stdout!.pause();
  const n = 3000;
  for (let i = 0; i < n; i += 50) await Promise.all(Array.from({ length: 50 }, () => request(port, '/v1/models', { headers: bearer })));
  child.stdout!.resume();
  const accessLines = () => output().split('\n').filter((l) => l.includes('"msg":"request"'));
  await until(() => accessLines().length >= n, 20_000, `${n} access-log lines`);
  const torn = output().split('\n').filter((l) => l.trim() !== '' && !isJson(l));
  assert.deepEqual(torn.slice(0, 3), [], `${torn.length} lines are not whole JSON objects`);
  assert.equal(accessLines().length, n);
  child.disconnect();
  await once(child, 'exit');
});

function isJson(line: string): boolean {
  try {
    JSON.parse(line);
    return true;
  } catch {
    return false;
  }
}

it('a crashed worker\'s replacement says who serves meanwhile, and that none does when its sibling is still starting', () => {
  assert.equal(othersServing(1), 'the other worker serves meanwhile');
  assert.equal(othersServing(3), 'the other 3 workers serve meanwhile');
  assert.equal(othersServing(0), 'no other worker serves until it listens');
});

it('worker exits are counted within 60 s on the monotonic clock: a wall clock stepped back an hour keeps no old exit in the window', (t) => {
  const wallClock = Date.now;
  t.after(() => {
    Date.now = wallClock;
  });
  // One exit 61 s ago and one 30 s ago, then the clock steps back an hour before the next.
  const exits = [performance.now() - 61_000, performance.now() - 30_000];
  Date.now = () => wallClock() - 3_600_000;
  assert.equal(recordWorkerExit(exits), 2, 'the one 61 s ago is out of the window');
  assert.equal(recordWorkerExit(exits), 3);
});
