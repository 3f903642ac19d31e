#!/usr/bin/env node
// `npm run interop`: llmserve's proxy in front of real uvicorn, the HTTP server of vLLM's API server, instead of the
// Node fakes of the tests: the same bytes both ways, large request bodies, a client's abort reaching the server, a
// stream cut mid-way reaching the client cut, and no 502 for requests sent right behind an exception's 500 or across
// uvicorn's keep-alive; streams through nginx, HAProxy and Caddy in front, where installed; then `llmserve start` with
// uvicorn as its vLLM (bin/vllm): ready, restarted after a SIGKILL, drained and stopped by SIGTERM with nothing left;
// and, with prometheus_client, the engine-stall watchdog telling a long prefill from a stuck engine. Needs a build
// (`npm run build`) and Python with uvicorn and fastapi (Debian: apt-get install python3-uvicorn python3-fastapi
// python3-httptools, and python3-prometheus-client); without them it says so and exits 0. Exits 1 when a check fails.
// Usage: node scripts/interop/uvicorn.mjs [--trials N] [--compare]
//   --trials N  requests in the keep-alive check (30)
//   --compare   also runs the keep-alive check with the pool's old fixed 4 s idle time, and reports its failures.
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { KEY, root, startLlmserve, stopChild, waitForPort, whichNginx, whichProgram } from '../../bench/targets.mjs';
import { freePort } from '../../test/helpers/free-port.mjs';
import { bin, makeModel, signal, sleep, waitUntil } from '../soak-lib.mjs';
import { launchStart } from './launch.mjs';
import { findPython } from './python.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const args = process.argv.slice(2);
const trialsAt = args.indexOf('--trials');
const trials = trialsAt < 0 ? 30 : Number(args[trialsAt + 1]);
if (!Number.isInteger(trials) || trials < 1) {
  console.error(`interop: --trials takes a whole number of requests, 1 or more, not ${args[trialsAt + 1] ?? 'nothing'}`);
  process.exit(2);
}
const compare = args.includes('--compare');
const idleModule = path.join(root, 'dist/proxy/upstream/idle.js');
if (!fs.existsSync(idleModule)) {
  console.error('interop: no build in dist/: run `npm run build` first');
  process.exit(2);
}
const { upstreamIdleMs } = await import(idleModule);
/** vLLM's keep-alive in these runs (VLLM_HTTP_TIMEOUT_KEEP_ALIVE=1): short, so that each check crosses it often. */
const KEEP_ALIVE_S = 1;

const monotonicS = () => Number(process.hrtime.bigint()) / 1e9;
let failed = 0;
const report = (ok, what, detail) => {
  if (!ok) failed++;
  console.log(`${ok ? 'PASS' : 'FAIL'}  ${what}: ${detail}`);
};

const python = findPython(['uvicorn', 'fastapi']);
if (python === null) {
  console.log('interop: skipped, no python3 with uvicorn and fastapi (Debian: apt-get install python3-uvicorn python3-fastapi python3-httptools)');
  process.exit(0);
}
const version = spawnSync(python, ['-c', 'import uvicorn; print(uvicorn.__version__)'], { encoding: 'utf8' }).stdout.trim();
const impls = ['httptools', 'h11'].filter((m) => spawnSync(python, ['-c', `import ${m}`], { stdio: 'ignore' }).status === 0);
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'llmserve-interop-'));

/** Starts the app on uvicorn and waits for its /health. */
async function startApp(impl, notesFile) {
  const port = await freePort();
  // Its log (the tracebacks of the exceptions raised on purpose) goes to a file, read only when it fails to start.
  const log = fs.openSync(path.join(work, `uvicorn-${impl}.log`), 'a');
  const child = spawn(python, [path.join(here, 'vllm_like_app.py'), String(port), String(KEEP_ALIVE_S), notesFile, impl], { stdio: ['ignore', log, log] });
  fs.closeSync(log);
  const deadline = Date.now() + 20_000;
  while (Date.now() < deadline) {
    if ((await get(port, '/health', false)).status === 200) return { port, stop: () => stopChild(child) };
    if (child.exitCode !== null) break;
    await sleep(50);
  }
  child.kill('SIGKILL');
  throw new Error(`uvicorn (${impl}) did not answer /health within 20 s:\n${fs.readFileSync(path.join(work, `uvicorn-${impl}.log`), 'utf8')}`);
}

/**
 * One request; `agent` false = a new connection. Resolves with status 0 on a connection error; `complete` false when
 * the response was cut before its end.
 */
function send(port, method, urlPath, body, { auth = true, agent = false, chunked = false } = {}) {
  return new Promise((resolve) => {
    const data = body === undefined ? undefined : JSON.stringify(body);
    const framing = chunked ? { 'transfer-encoding': 'chunked' } : { 'content-length': Buffer.byteLength(data ?? '') };
    const headers = { ...(auth ? { authorization: `Bearer ${KEY}` } : {}), ...(data ? { 'content-type': 'application/json', ...framing } : {}) };
    const req = http.request({ host: '127.0.0.1', port, method, path: urlPath, agent, headers }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode, text, headers: res.headers, complete: res.complete }));
      res.on('error', () => resolve({ status: res.statusCode, text, headers: res.headers, complete: false }));
    });
    req.on('error', (err) => resolve({ status: 0, text: String(err), headers: {} }));
    // A chunked body goes in 64 KiB writes, as a client streaming an upload sends it.
    if (chunked && data !== undefined) for (let i = 0; i < data.length; i += 65536) req.write(data.slice(i, i + 65536));
    req.end(chunked ? undefined : data);
  });
}
const get = (port, urlPath, auth = true, agent = false) => send(port, 'GET', urlPath, undefined, { auth, agent });

/** A raw streaming request on its own connection. */
function openStream(port, body) {
  const socket = net.connect(port, '127.0.0.1');
  const data = JSON.stringify({ model: 'm', stream: true, ...body });
  socket.on('error', () => {});
  socket.write(`POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\nauthorization: Bearer ${KEY}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(data)}\r\n\r\n${data}`);
  return socket;
}

function readNotes(file) {
  return fs.readFileSync(file, 'utf8').split('\n').filter(Boolean).map((line) => JSON.parse(line));
}

/**
 * Requests one at a time on one client connection, each after an idle gap of about vLLM's keep-alive (within 15 ms of
 * it), while 100 long streams keep the proxy busy (a busy proxy reads a closing connection's FIN late). Returns the
 * failures and how many upstream connections the requests used.
 */
async function keepAliveRun(appPort, notesFile, idleMs, label) {
  const proxy = await startLlmserve(appPort, path.join(work, 'proxy.log'), { servedModelName: 'm', upstreamIdleMs: idleMs });
  const load = Array.from({ length: 100 }, (_, i) => openStream(proxy.port, { n_events: 1_000_000, interval: 0.002, tag: `load-${label}-${i}` }));
  for (const s of load) s.on('data', () => {});
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const before = readNotes(notesFile).filter((n) => n.ev === 'models').length;
  const bad = [];
  try {
    for (let i = 0; i < trials; i++) {
      const gap = KEEP_ALIVE_S * 1000 + (Math.random() - 0.5) * 30;
      await sleep(gap);
      const r = await get(proxy.port, '/v1/models', true, agent);
      if (r.status !== 200) bad.push(`${r.status} after ${Math.round(gap)} ms`);
    }
  } finally {
    agent.destroy();
    for (const s of load) s.destroy();
    await proxy.stop();
  }
  const peers = new Set(readNotes(notesFile).filter((n) => n.ev === 'models').slice(before).map((n) => n.peer));
  return { bad, connections: peers.size };
}

/** `llmserve start` (launch.mjs) with one model, `Model-X`, on the app with `impl`'s parser; `extra`: more flags. */
async function startWith(impl, label, extra) {
  const dir = fs.mkdtempSync(path.join(work, `${label}-${impl}-`));
  const args = ['--model', makeModel(dir, 'Model-X'), '--backend-port', String(await freePort()), ...extra];
  return launchStart({ dir, python, marker: `llmserve-interop-${process.pid}-${label}-${impl}`, args, env: { INTEROP_HTTP: impl } });
}

/**
 * The whole product against uvicorn: ready, a request served, `llmserve check` passing; uvicorn SIGKILLed,
 * `not-healthy` created, and the service back with a new uvicorn; then SIGTERM with a stream in flight, which ends
 * whole: exit 0, both probe files, nothing left running.
 */
async function startRun(impl) {
  const run = await startWith(impl, 'start', ['--health-interval', '1']);
  const { port, probeDir, notReady, notHealthy, env, child, log, started } = run;
  const question = { model: 'Model-X', messages: [{ role: 'user', content: 'Hi' }] };
  try {
    const ready = await run.ready(60_000);
    const served = ready ? await send(port, 'POST', '/v1/chat/completions', question) : { status: 0 };
    const check = ready ? spawnSync(process.execPath, [bin, 'check', '--probe-dir', probeDir], { env, encoding: 'utf8' }) : { status: null, stdout: '' };
    report(ready && served.status === 200 && check.status === 0, `${impl}: llmserve start with uvicorn as vLLM`, `${ready ? 'ready' : 'not ready within 60 s'}, a completion ${served.status}, llmserve check exit ${check.status}`);

    // uvicorn dies (vLLM's API server SIGKILLed): not-healthy, then a new one and the service back.
    const first = started()[0];
    let restarted = false;
    let unhealthy = false;
    let again = { status: 0 };
    if (ready && first !== undefined) {
      signal(first, 'SIGKILL');
      unhealthy = await waitUntil(() => fs.existsSync(notHealthy), 10_000);
      restarted = await waitUntil(() => started().length >= 2 && !fs.existsSync(notHealthy) && !fs.existsSync(notReady), 60_000);
      again = restarted ? await send(port, 'POST', '/v1/chat/completions', question) : again;
    }
    report(unhealthy && restarted && again.status === 200, `${impl}: uvicorn SIGKILLed`, `not-healthy ${unhealthy ? 'created' : 'not created within 10 s'}, ${restarted ? `restarted (pid ${started()[1]})` : 'not back within 60 s'}, then a completion ${again.status}`);

    // SIGTERM with a 2 s stream in flight: the stream ends whole (the drain), then everything stops; both probe files
    // are left for the platform, and no uvicorn, proxy or llmserve is left running.
    const streaming = send(port, 'POST', '/v1/chat/completions', { ...question, stream: true, n_events: 100, interval: 0.02 });
    await waitUntil(() => fs.existsSync(path.join(run.dir, 'notes.jsonl')) && fs.readFileSync(path.join(run.dir, 'notes.jsonl'), 'utf8').includes('"stream": true'), 10_000);
    child.kill('SIGTERM');
    const stream = await streaming;
    const whole = stream.status === 200 && stream.complete === true && stream.text.endsWith('data: [DONE]\n\n');
    report(whole, `${impl}: a stream in flight at SIGTERM`, whole ? 'ended whole, with [DONE]' : `status ${stream.status}, ${stream.complete ? 'complete' : 'cut'}: ${stream.text.slice(-80)}`);
    const code = await Promise.race([run.exited, sleep(60_000).then(() => 'still running after 60 s')]);
    const left = (await waitUntil(() => run.left().length === 0, 5000)) ? [] : run.left();
    const files = fs.existsSync(notReady) && fs.existsSync(notHealthy);
    report(code === 0 && files && left.length === 0, `${impl}: SIGTERM`, `exit ${code}, ${files ? 'both probe files' : 'probe files missing'}, ${left.length === 0 ? 'nothing left running' : `left running: pids ${left.join(', ')}`}`);
    if (code !== 0 || left.length > 0) console.log(log());
  } finally {
    run.kill();
  }
}

/**
 * The engine-stall watchdog (`--engine-stall-timeout 3`; a 3 s stop timeout, since uvicorn waits for the held request
 * when it is told to stop) against uvicorn and a /metrics from prometheus_client: a request held 6 s without a byte
 * while the KV-cache gauge moves (a long prefill) is answered, and nothing is restarted; one held with nothing moving
 * (a stuck engine) is a stall: uvicorn is stopped and started again, and the held request ends with an error; so is a
 * stream that stops mid-way and never ends, which reaches its client cut. Skipped without prometheus_client (no
 * /metrics: the watchdog gives no verdict).
 */
async function stallRun(impl) {
  if (findPython(['uvicorn', 'fastapi', 'prometheus_client']) === null) return console.log('skip  engine-stall watchdog: no prometheus_client');
  const run = await startWith(impl, 'stall', ['--health-interval', '0.5', '--engine-stall-timeout', '3', '--stop-timeout', '3']);
  const question = { model: 'Model-X', messages: [{ role: 'user', content: 'Hi' }] };
  const stalls = () => (run.log().match(/engine made no progress/g) ?? []).length;
  try {
    const ready = await run.ready(60_000);
    const prefill = ready ? await send(run.port, 'POST', '/v1/chat/completions', { ...question, hang: 6, progress: true }) : { status: 0 };
    report(ready && prefill.status === 200 && stalls() === 0 && run.started().length === 1, `${impl}: a 6 s prefill (no byte, the KV cache moving)`, `${ready ? `answered ${prefill.status}` : 'not ready within 60 s'}, ${stalls()} stall verdicts, ${run.started().length} uvicorn started`);

    const stuck = ready ? send(run.port, 'POST', '/v1/chat/completions', { ...question, hang: 60 }) : Promise.resolve({ status: 0 });
    const said = ready && (await waitUntil(() => stalls() === 1, 20_000));
    const back = said && (await waitUntil(() => run.started().length === 2 && run.log().split('engine made no progress')[1]?.includes('ready after') === true, 60_000));
    const held = await Promise.race([stuck, sleep(10_000).then(() => ({ status: 'still waiting after 10 s' }))]);
    report(said && back && held.status !== 200, `${impl}: a request held with nothing moving (a stuck engine)`, `${said ? 'a stall said' : 'no stall said within 20 s'}, ${back ? 'uvicorn started again and the service ready' : 'not back within 60 s'}, the held request ${held.status}`);

    // The engine sticks mid-stream (the usual hang: during decoding): three events, then nothing, never an end.
    const cut = back ? send(run.port, 'POST', '/v1/chat/completions', { ...question, stream: true, n_events: 10, interval: 0.01, stall_after: 3 }) : Promise.resolve({ status: 0 });
    const again = back && (await waitUntil(() => stalls() === 2, 20_000));
    const stream = await Promise.race([cut, sleep(15_000).then(() => ({ status: 'still open after 15 s' }))]);
    const events = (stream.text?.match(/^data: /gm) ?? []).length;
    const restarted = again && (await waitUntil(() => run.started().length === 3, 30_000));
    report(again && restarted && stream.status === 200 && stream.complete === false && events === 3, `${impl}: a stream whose engine sticks after 3 events`, `${again ? 'a stall said' : 'no stall said within 20 s'}, ${restarted ? 'uvicorn started again' : 'not restarted'}, the stream ${stream.status}, ${stream.complete === false ? `cut after ${events} events` : 'not cut'}`);
    run.child.kill('SIGTERM');
    const code = await Promise.race([run.exited, sleep(60_000).then(() => 'still running after 60 s')]);
    const left = (await waitUntil(() => run.left().length === 0, 5000)) ? [] : run.left();
    if (code !== 0 || left.length > 0) report(false, `${impl}: SIGTERM after the stall`, `exit ${code}, left running: ${left.join(', ') || 'nothing'}`);
  } finally {
    run.kill();
  }
}

/**
 * A 10-event stream (one every 200 ms) through `port`: status, events, when the first and last arrived, and in how
 * many bursts (events read within 20 ms of the one before are one burst: held back and sent together).
 */
function streamArrivals(port) {
  return new Promise((resolve) => {
    const started = performance.now();
    const reads = [];
    const done = (status) => {
      const withEvents = reads.filter(([, k]) => k > 0);
      const bursts = withEvents.filter(([t], i) => i === 0 || t - withEvents[i - 1][0] > 20).length;
      resolve({ status, events: withEvents.reduce((n, [, k]) => n + k, 0), first: withEvents[0]?.[0] ?? Infinity, last: withEvents.at(-1)?.[0] ?? 0, bursts });
    };
    const data = JSON.stringify({ model: 'm', stream: true, n_events: 10, interval: 0.2 });
    const req = http.request({ host: '127.0.0.1', port, method: 'POST', path: '/v1/chat/completions', agent: false, headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json', 'content-length': Buffer.byteLength(data) } }, (res) => {
      res.on('data', (d) => reads.push([performance.now() - started, (String(d).match(/^data: /gm) ?? []).length]));
      res.on('end', () => done(res.statusCode));
      res.on('error', () => done(0));
    });
    req.on('error', () => done(0));
    req.end(data);
  });
}

const arrivalsText = (a) => `${a.status}, ${a.events} events in ${a.bursts} bursts, the first after ${Math.round(a.first)} ms, the last after ${Math.round(a.last)} ms`;

/**
 * nginx in front of the proxy with nginx's defaults for `proxy_pass` (HTTP/1.0 to the proxy, `proxy_buffering on`):
 * the events of a stream (one every 200 ms) must reach the client one by one, not all at its end. Skipped without
 * nginx.
 */
async function nginxFrontRun(appPort) {
  const nginx = whichNginx();
  if (nginx === null) return console.log('skip  nginx in front: no nginx on PATH');
  const proxy = await startLlmserve(appPort, path.join(work, 'proxy.log'), { servedModelName: 'm' });
  const dir = fs.mkdtempSync(path.join(work, 'nginx-'));
  const port = await freePort();
  fs.writeFileSync(path.join(dir, 'nginx.conf'), `daemon off; worker_processes 1; pid ${dir}/nginx.pid; error_log ${dir}/error.log;
events {}
http {
  access_log off; client_body_temp_path ${dir}; proxy_temp_path ${dir}; fastcgi_temp_path ${dir}; uwsgi_temp_path ${dir}; scgi_temp_path ${dir};
  server { listen 127.0.0.1:${port}; location / { proxy_pass http://127.0.0.1:${proxy.port}; } }
}
`);
  const child = spawn(nginx, ['-p', dir, '-c', path.join(dir, 'nginx.conf')], { stdio: ['ignore', 'ignore', 'inherit'] });
  try {
    await waitForPort(port, 5000);
    const a = await streamArrivals(port);
    // Buffered, the first event would come with the last, about 2 s after the request.
    report(a.status === 200 && a.events === 11 && a.first < 1000, 'nginx in front (its default proxy settings)', arrivalsText(a));
  } finally {
    await stopChild(child, 'SIGQUIT');
    await proxy.stop();
  }
}

/**
 * HAProxy in front of the proxy. With its defaults it asks the kernel to hold what it sends while more is expected
 * (MSG_MORE), so each event of a stream waits for the next one, up to about 200 ms: said as a note, since it is
 * HAProxy's setting (it does the same in front of uvicorn alone). With `option http-no-delay`, which the README
 * recommends, each event must arrive on its own, the first at once. Skipped without haproxy.
 */
async function haproxyFrontRun(appPort) {
  const haproxy = whichProgram('haproxy');
  if (haproxy === null) return console.log('skip  HAProxy in front: no haproxy on PATH');
  const proxy = await startLlmserve(appPort, path.join(work, 'proxy.log'), { servedModelName: 'm' });
  try {
    for (const option of ['', 'option http-no-delay']) {
      const dir = fs.mkdtempSync(path.join(work, 'haproxy-'));
      const port = await freePort();
      fs.writeFileSync(path.join(dir, 'haproxy.cfg'), `defaults
  mode http
  timeout connect 5s
  timeout client 60s
  timeout server 60s
  ${option}
frontend public
  bind 127.0.0.1:${port}
  default_backend llmserve
backend llmserve
  server proxy 127.0.0.1:${proxy.port}
`);
      const child = spawn(haproxy, ['-db', '-f', path.join(dir, 'haproxy.cfg')], { stdio: ['ignore', 'ignore', 'inherit'] });
      try {
        await waitForPort(port, 5000);
        const a = await streamArrivals(port);
        if (option === '') console.log(`note  HAProxy in front, its defaults: ${arrivalsText(a)}`);
        else report(a.status === 200 && a.events === 11 && a.bursts === 11 && a.first < 150, `HAProxy in front (${option})`, arrivalsText(a));
      } finally {
        await stopChild(child);
      }
    }
  } finally {
    await proxy.stop();
  }
}

/** Caddy in front of the proxy with its `reverse_proxy` defaults: each event of a stream at once. Skipped without caddy. */
async function caddyFrontRun(appPort) {
  const caddy = whichProgram('caddy', ['version']);
  if (caddy === null) return console.log('skip  Caddy in front: no caddy on PATH');
  const proxy = await startLlmserve(appPort, path.join(work, 'proxy.log'), { servedModelName: 'm' });
  const dir = fs.mkdtempSync(path.join(work, 'caddy-'));
  const port = await freePort();
  fs.writeFileSync(path.join(dir, 'Caddyfile'), `{\n  admin off\n  auto_https off\n}\n:${port} {\n  bind 127.0.0.1\n  reverse_proxy 127.0.0.1:${proxy.port}\n}\n`);
  // HOME: Caddy keeps its state there; here, in the run's own directory.
  const child = spawn(caddy, ['run', '--config', path.join(dir, 'Caddyfile'), '--adapter', 'caddyfile'], { stdio: 'ignore', env: { ...process.env, HOME: dir, XDG_DATA_HOME: dir, XDG_CONFIG_HOME: dir } });
  try {
    await waitForPort(port, 10_000);
    const a = await streamArrivals(port);
    report(a.status === 200 && a.events === 11 && a.bursts === 11 && a.first < 150, 'Caddy in front (its reverse_proxy defaults)', arrivalsText(a));
  } finally {
    await stopChild(child);
    await proxy.stop();
  }
}

try {
  console.log(`interop: llmserve's proxy in front of uvicorn ${version} (${python}), keep-alive ${KEEP_ALIVE_S} s, ${trials} keep-alive trials`);
  for (const impl of impls) {
    const notesFile = path.join(work, `notes-${impl}.jsonl`);
    const app = await startApp(impl, notesFile);
    try {
      const idle = upstreamIdleMs([String(KEEP_ALIVE_S)]);
      const proxy = await startLlmserve(app.port, path.join(work, 'proxy.log'), { servedModelName: 'm', upstreamIdleMs: idle });
      try {
        const question = { model: 'm', messages: [{ role: 'user', content: 'Hi' }] };
        const direct = await send(app.port, 'POST', '/v1/chat/completions', question, { auth: false });
        const proxied = await send(proxy.port, 'POST', '/v1/chat/completions', question);
        report(direct.status === 200 && proxied.status === 200 && direct.text === proxied.text, `${impl}: a completion`, `${direct.status} direct, ${proxied.status} through the proxy, ${direct.text === proxied.text ? 'the same body' : `bodies differ: ${proxied.text.slice(0, 200)}`}`);

        const streamed = { ...question, stream: true, n_events: 30, interval: 0.002 };
        const sd = await send(app.port, 'POST', '/v1/chat/completions', streamed, { auth: false });
        const sp = await send(proxy.port, 'POST', '/v1/chat/completions', streamed);
        const events = (sp.text.match(/^data: /gm) ?? []).length;
        report(sp.status === 200 && sd.text === sp.text && events === 31, `${impl}: an event stream`, `${events} events with [DONE], ${sd.text === sp.text ? 'the same bytes as direct' : 'bytes differ from direct'}, ${sp.headers['content-type']}, ${sp.headers['transfer-encoding'] ?? 'no transfer-encoding'}`);

        const waits = [];
        for (let i = 0; i < 5; i++) {
          const tag = `abort-${impl}-${i}`;
          const socket = openStream(proxy.port, { n_events: 100_000, interval: 0.02, tag });
          // Cut after the first event; a stream that never sends one is cut after 5 s, and counts as a failure.
          const firstEvent = new Promise((resolve) => socket.on('data', (c) => String(c).includes('data: ') && resolve(monotonicS())));
          const abortedAt = await Promise.race([firstEvent, sleep(5000).then(() => null)]);
          socket.destroy();
          // The figure is the note's own time, so the poll's period does not enter it.
          let seen = null;
          if (abortedAt !== null) await waitUntil(() => (seen = readNotes(notesFile).find((n) => n.tag === tag && n.ev !== 'chat') ?? null) !== null, 2000);
          waits.push(seen === null || abortedAt === null ? null : Math.round((seen.t - abortedAt) * 1000));
        }
        report(waits.every((w) => w !== null && w <= 1000), `${impl}: client aborts reach uvicorn`, `${waits.map((w) => (w === null ? 'never' : `${w} ms`)).join(', ')} after the client closed (at most 1,000 ms)`);

        // Large bodies (a base64 image is megabytes), with a length and chunked: uvicorn gets every byte.
        const sizes = [];
        for (const chunked of [false, true]) {
          const tag = `body-${impl}-${chunked ? 'chunked' : 'length'}`;
          const big = { ...question, messages: [{ role: 'user', content: 'x'.repeat(8 << 20) }], tag };
          const r = await send(proxy.port, 'POST', '/v1/chat/completions', big, { chunked });
          const got = readNotes(notesFile).find((n) => n.ev === 'chat' && n.tag === tag);
          sizes.push({ ok: r.status === 200 && got?.size === Buffer.byteLength(JSON.stringify(big)), text: `${chunked ? 'chunked' : 'with a length'} ${r.status}, ${got?.size ?? 'no'} bytes received` });
        }
        report(sizes.every((x) => x.ok), `${impl}: 8 MiB request bodies`, sizes.map((x) => x.text).join('; '));

        // The generator dies mid-stream (as when vLLM's engine dies): uvicorn cuts the connection, and the client must
        // see a cut response, not one that ends as if complete.
        const dying = { ...question, stream: true, n_events: 10, interval: 0.002, fail_after: 3 };
        const cd = await send(app.port, 'POST', '/v1/chat/completions', dying, { auth: false });
        const cp = await send(proxy.port, 'POST', '/v1/chat/completions', dying);
        const seen = (cp.text.match(/^data: /gm) ?? []).length;
        report(cd.complete === false && cp.complete === false && cp.text === cd.text, `${impl}: a stream that dies mid-way`, `cut before its end through the proxy (${seen} events, no [DONE]) as direct, ${cp.text === cd.text ? 'the same bytes' : 'other bytes'}`);

        // An exception in the app: Starlette sends a 500 and uvicorn closes the connection unannounced. Requests sent
        // through the proxy right behind it must not land on that connection.
        const agent = new http.Agent({ keepAlive: true, maxSockets: 4 });
        const statuses = {};
        for (let i = 0; i < 100; i++) {
          const raised = await send(proxy.port, 'POST', '/v1/chat/completions', { ...question, raise: true }, { agent });
          const behind = await Promise.all([0, 1].map(() => send(proxy.port, 'POST', '/v1/chat/completions', question, { agent })));
          for (const r of [raised, ...behind]) statuses[r.status] = (statuses[r.status] ?? 0) + 1;
        }
        agent.destroy();
        report(statuses[500] === 100 && statuses[200] === 200, `${impl}: requests right behind an exception's 500`, `${statuses[200] ?? 0} of 200 answered 200 (${Object.entries(statuses).map(([k, v]) => `${v} x ${k}`).join(', ')})`);
      } finally {
        await proxy.stop();
      }

      const run = await keepAliveRun(app.port, notesFile, idle, 'computed');
      report(run.bad.length === 0, `${impl}: requests across uvicorn's keep-alive (pool idle ${idle} ms)`, `${trials - run.bad.length} of ${trials} answered 200${run.bad.length ? ` (${run.bad.join(', ')})` : ''}, over ${run.connections} upstream connections`);
      if (compare) {
        const old = await keepAliveRun(app.port, notesFile, 4000, 'fixed');
        console.log(`note  ${impl}: the same with the pool's old fixed idle (4,000 ms): ${trials - old.bad.length} of ${trials} answered 200${old.bad.length ? ` (${old.bad.join(', ')})` : ''}, over ${old.connections} upstream connections`);
      }
      if (impl === impls[0]) {
        await nginxFrontRun(app.port);
        await haproxyFrontRun(app.port);
        await caddyFrontRun(app.port);
      }
    } finally {
      await app.stop();
    }
    await startRun(impl);
    if (impl === impls[0]) await stallRun(impl);
  }
} finally {
  fs.rmSync(work, { recursive: true, force: true });
}
process.exit(failed === 0 ? 0 : 1);
