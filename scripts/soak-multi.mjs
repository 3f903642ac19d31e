#!/usr/bin/env node
// Randomized fault soak of the multi-model and multi-node set-ups (run by hand, not part of `npm test`), the sibling of
// soak.mjs (one model). `--scenario two-models` (default): `models:` with two vLLMs behind one proxy, rounds alternating
// `probes.require: all` and `any` (or `--require all|any`), faults hitting one model's vLLM or the other's or both
// (API server or EngineCore SIGKILLed, a hang), under a client load on both models. `--scenario multi-node`: a
// `--role head --nodes 2` and a `--role worker` on this machine (fake `ray`, own probe dirs and ports), faults: the
// worker's `ray start` SIGKILLed, the worker llmserve SIGKILLed (then started again), and to end the round SIGTERM to
// the head while the worker runs or the head's Ray SIGKILLed. Each round checks the README's invariants.
// `node scripts/soak-multi.mjs --scenario two-models --minutes 3 --seed 42`; `--round N` replays one round.
// Needs `npm run build` first. Exit 0: no invariant broke; 1: some did (each such round's files are kept and named).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { freePort } from '../test/helpers/free-port.mjs';
import {
  CLIENT_DEADLINE_MS, DRAIN_TIMEOUT, EXIT_MARGIN_MS, HEALTH_INTERVAL, MASTER, SAMPLE_MS, STARTUP_TIMEOUT, STOP_TIMEOUT, alive, baseEnv,
  between, chatRequest, checkLoop, checkRestarts, clientLoops, endRound, exitWithin, launch, makeModel, marked, mulberry32,
  parseOptions, persistence, pick, playFaults, probeFilesAfterExit, probeState, proxyWorkers, readStarts, reapLeft, requireBuild, runRounds, signal, sleep,
  startsPoller, stopRun, tally, usageOf, violationLog, waitUntil, workerReplaced,
} from './soak-lib.mjs';

// ---- options -------------------------------------------------------------------------------------------------
const usage = usageOf('soak-multi', 'usage: node scripts/soak-multi.mjs [--scenario two-models|multi-node] [--require all|any] [--minutes M] [--seed S] [--round N] [--round-seconds S] [--clients N] [--keep] [--verbose]');
const opts = parseOptions(process.argv.slice(2), { scenario: 'two-models', require: null, minutes: 3, seed: Date.now() % 100000, round: null, roundSeconds: 30, clients: 3, keep: false, verbose: false },
  usage, { '--scenario': 'scenario', '--require': 'require' });
if (!['two-models', 'multi-node'].includes(opts.scenario)) usage(`--scenario must be two-models or multi-node, not ${opts.scenario}`);
if (opts.require !== null && !['all', 'any'].includes(opts.require)) usage(`--require must be all or any, not ${opts.require}`);
requireBuild(usage);

// The rest of the settings (MASTER, timeouts) are soak-lib.mjs's, shared with soak.mjs.
const MODELS = ['alpha', 'beta'];

// ==== scenario two-models ===========================================================================================
function scheduleTwo(seed) {
  const rng = mulberry32(seed);
  const faults = [];
  let at = between(rng, 1000, 3000);
  // At most two proxy workers killed a round: both are replaced (a third within 60 s restarts the proxy, soak.mjs's).
  let workerKills = 0;
  while (at < opts.roundSeconds * 1000) {
    const kind = workerKills < 2 && rng() < 0.15 ? 'kill-proxy-worker' : pick(rng, ['kill-api', 'kill-engine', 'hang']);
    const r = rng();
    if (kind === 'kill-proxy-worker') {
      workerKills++;
      faults.push({ at: Math.round(at), kind, target: 'proxy' });
    } else faults.push({ at: Math.round(at), kind, target: r < 0.4 ? 'alpha' : r < 0.8 ? 'beta' : 'both' });
    at += rng() < 0.25 ? between(rng, 50, 600) : between(rng, 2000, 7000);
  }
  const last = faults.at(-1)?.at ?? 0;
  const sigtermAt = Math.round(rng() < 0.4 ? last + between(rng, 50, 1500) : Math.max(opts.roundSeconds * 1000, last + 500) + between(rng, 0, 2500));
  return { faults, sigtermAt, clientSeed: Math.floor(rng() * 2 ** 31) };
}

async function twoModelsRound(index, seed, require) {
  const plan = scheduleTwo(seed);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'llmserve-soak2-'));
  const [port, portA, portB] = [await freePort(), await freePort(), await freePort()];
  const probeDir = path.join(dir, 'probe');
  const argvFile = path.join(dir, 'vllm-argv.jsonl');
  const config = path.join(dir, 'llmserve.yaml');
  fs.writeFileSync(config, [
    'models:',
    `  - model: ${makeModel(dir, 'Alpha-Model')}`,
    '    served_model_name: alpha',
    '    gpus: [0, 1]',
    `    port: ${portA}`,
    `  - model: ${makeModel(dir, 'Beta-Model')}`,
    '    served_model_name: beta',
    '    gpus: [2, 3]',
    `    port: ${portB}`,
    `probes: { require: ${require} }`,
    'restart: { policy: on-failure, max_failures: 1000, window: 600, backoff_initial: 0.2, backoff_max: 0.5 }',
    `drain: { timeout: ${DRAIN_TIMEOUT} }`,
    '',
  ].join('\n'));
  const marker = `llmserve-soak2-${process.pid}-${index}-${Date.now()}`;
  const env = { ...baseEnv(marker, dir, opts.roundSeconds), FAKE_VLLM_ARGV_FILE: argvFile, FAKE_NVIDIA_SMI_GPUS: '4', FAKE_VLLM_BUSY_HEALTH_MS: '3000' };
  const t0 = Date.now();
  const now = () => Date.now() - t0;
  const { violations, violate } = violationLog(now, opts.verbose);
  const run = launch(['start', '--config', config, '--port', String(port), '--probe-dir', probeDir, '--health-interval', String(HEALTH_INTERVAL),
    '--stop-timeout', String(STOP_TIMEOUT), '--startup-timeout', String(STARTUP_TIMEOUT)], env, t0, path.join(dir, 'llmserve.log'), 'llmserve');
  const startsOf = (list, m) => list.filter((s) => s.argv.includes(m));
  // API server pids made to hang -> when: not healthy from then on, though not-healthy comes only with the first
  // failed check (up to the interval plus the check's deadline later).
  const hung = new Map();

  // Sampler: probe files and each model's state.
  const samples = [];
  let sigtermAt = null;
  let firstReadyAt = null;
  let startList = [];
  const firstSeen = new Map(); // API server pid -> when the sampler first saw its start
  const pollStarts = startsPoller(argvFile, (list, t) => {
    for (const s of list) if (!firstSeen.has(s.pid)) firstSeen.set(s.pid, t);
  });
  const persist = persistence(violate);
  const modelUp = (m, hangGraceMs = 0) => {
    const latest = startsOf(startList, m).at(-1);
    const hungAt = hung.get(latest?.pid);
    return latest !== undefined && alive(latest.pid) && run.readyPids.has(latest.pid) && (hungAt === undefined || now() - hungAt < hangGraceMs);
  };
  const sampler = setInterval(() => {
    const t = now();
    const { nr, nh } = probeState(probeDir);
    startList = pollStarts(t);
    const up = Object.fromEntries(MODELS.map((m) => [m, modelUp(m)]));
    samples.push({ t, nr, nh, up });
    const readySaid = run.said(/\| ready after .* serves /);
    if (firstReadyAt === null && readySaid && !nr) firstReadyAt = t;
    if (firstReadyAt === null || sigtermAt !== null || run.exitInfo !== null) return;
    persist('nr', nr, t, 0, 'not-ready came back while serving, without SIGTERM');
    // Up to ~5 s: a check that times out within the busy window after the last response bytes is "busy", not failed.
    const late = Object.fromEntries(MODELS.map((m) => [m, modelUp(m, 5000)]));
    const want = require === 'all' ? !(late.alpha && late.beta) : !(late.alpha || late.beta);
    const wantNot = require === 'all' ? !(up.alpha && up.beta) : !(up.alpha || up.beta);
    const state = MODELS.map((m) => `${m} ${up[m] ? 'up' : 'down'}`).join(', ');
    persist('nh-missing', want && !nh, t, 400, `not-healthy absent (probes.require: ${require}; ${state})`);
    persist('nh-extra', !wantNot && nh, t, 3000, `not-healthy present (probes.require: ${require}; ${state})`);
  }, SAMPLE_MS);
  /** Whether `m` was up at every sample in [a, b]. */
  const upThroughout = (m, a, b) => samples.every((s) => s.t < a - SAMPLE_MS || s.t > b + SAMPLE_MS || s.up[m]);
  const downThroughout = (m, a, b) => samples.every((s) => s.t < a - SAMPLE_MS || s.t > b + SAMPLE_MS || !s.up[m]);

  // Client load on both models, and /v1/models now and then.
  const requests = [];
  const listings = [];
  const clientRng = mulberry32(plan.clientSeed);
  let stopClients = false;
  const clients = clientLoops(opts.clients, clientRng, 100, () => stopClients, async () => {
    requests.push(await chatRequest(port, pick(clientRng, MODELS), clientRng() < 0.5, now));
  });
  const lister = (async () => {
    while (!stopClients) {
      await sleep(1500);
      if (firstReadyAt === null || sigtermAt !== null) continue;
      const t = now();
      try {
        const res = await fetch(`http://127.0.0.1:${port}/v1/models`, { headers: { authorization: `Bearer ${MASTER}` } });
        const text = await res.text();
        let ids = null;
        try { ids = JSON.parse(text).data.map((d) => d.id); } catch { /* not JSON */ }
        listings.push({ t, to: now(), status: res.status, ids, text: text.slice(0, 200) });
      } catch (err) {
        listings.push({ t, to: now(), status: null, ids: null, text: String(err?.cause?.code ?? err) });
      }
    }
  })();

  const becameReady = await waitUntil(() => firstReadyAt !== null || run.exitInfo !== null, 30_000);
  const injected = [];
  const checkRuns = [];
  let checker = Promise.resolve();
  if (!becameReady || firstReadyAt === null) violate(`not ready within 30 s (exit: ${JSON.stringify(run.exitInfo)})`);
  else {
    // Both models up before the first fault (under `any`, llmserve is ready with the first one).
    await waitUntil(() => MODELS.every(modelUp), 15_000);
    checker = checkLoop(() => sigtermAt !== null || run.exitInfo !== null, now, env, probeDir, config, checkRuns);
    const inject = (f) => {
      const at = now();
      if (f.kind === 'kill-proxy-worker') {
        // One of the proxy's two workers: the primary replaces it, each model's state carried over (no model restarts).
        const { workers } = proxyWorkers(marker, run.child.pid);
        const w = workers[Math.floor(f.at % Math.max(1, workers.length))];
        const rec = { kind: f.kind, model: 'proxy', t: at, gen: null, target: null, expect: 'none', effectMs: 3000 };
        if (w && signal(w.pid, 'SIGKILL')) rec.target = w.pid;
        injected.push(rec);
        if (opts.verbose) process.stdout.write(`  ${(at / 1000).toFixed(2)} s ${f.kind}${rec.target ? ` -> ${rec.target}` : ' (no target)'}\n`);
        return;
      }
      const list = readStarts(argvFile);
      for (const m of f.target === 'both' ? MODELS : [f.target]) {
        const gens = startsOf(list, m);
        const gen = gens.length - 1;
        const g = gens[gen];
        const rec = { kind: f.kind, model: m, t: at, gen, target: null, expect: 'none', effectMs: 0 };
        if (g && alive(g.pid)) {
          const up = run.readyPids.has(g.pid);
          if (f.kind === 'kill-api' && signal(g.pid, 'SIGKILL')) Object.assign(rec, { target: g.pid, expect: 'required', effectMs: 500 });
          if (f.kind === 'kill-engine') {
            const engine = marked(marker).find((p) => p.cmdline.startsWith('VLLM::EngineCore') && p.ppid === g.pid);
            if (engine && signal(engine.pid, 'SIGKILL')) Object.assign(rec, { target: engine.pid, expect: 'required', effectMs: 1500 });
          }
          if (f.kind === 'hang' && signal(g.pid, 'SIGUSR1')) {
            hung.set(g.pid, now());
            Object.assign(rec, { target: g.pid, expect: 'required', effectMs: up ? 9000 : (STARTUP_TIMEOUT + 4) * 1000 });
          }
        }
        injected.push(rec);
        if (opts.verbose) process.stdout.write(`  ${(at / 1000).toFixed(2)} s ${f.kind} ${m}${rec.target ? ` -> ${rec.target} gen ${gen}` : ' (no target)'}\n`);
      }
    };
    await playFaults(plan.faults, plan.sigtermAt, () => run.exitInfo !== null, inject);
  }

  // SIGTERM and the exit.
  sigtermAt = now();
  const final = await stopRun(run, violate);
  await checker;
  stopClients = true;
  await Promise.all([...clients, lister]);
  clearInterval(sampler);
  await sleep(300);
  reapLeft(marker, violate);
  probeFilesAfterExit(probeDir, violate);

  // Restarts: each model's vLLM restarted once per fault that hit it, never otherwise, never two on the same GPUs.
  const list = readStarts(argvFile);
  for (const s of list) {
    const same = (s.otherVllm ?? []).filter((o) => o.cuda === s.env.CUDA_VISIBLE_DEVICES).map((o) => o.pid);
    if (same.length) violate(`vLLM ${s.argv.includes('alpha') ? 'alpha' : 'beta'} (pid ${s.pid}) began while processes of an earlier vLLM on its GPUs lived: ${same.join(', ')}`);
    if (firstSeen.get(s.pid) > sigtermAt + 2 * SAMPLE_MS) violate(`vLLM started again (pid ${s.pid}) after SIGTERM`, firstSeen.get(s.pid));
  }
  for (const m of MODELS) {
    checkRestarts(startsOf(list, m), injected.filter((f) => f.model === m), sigtermAt, violate, `vLLM ${m}`, 'no fault hit it');
  }
  for (const l of run.lines) {
    if (/internal error|uncaught|unhandled/i.test(l.line)) violate(`llmserve said: ${l.line}`, l.t);
    if (l.t > sigtermAt && /restarting vLLM/.test(l.line)) violate(`a restart after SIGTERM: ${l.line}`, l.t);
    if (/restarting only the proxy/.test(l.line)) violate(`the proxy restarted as a whole (at most two workers are killed a round: each must be replaced): ${l.line}`, l.t);
  }
  for (const f of injected) {
    if (f.kind !== 'kill-proxy-worker' || !f.target || f.t >= sigtermAt - 1000) continue;
    if (!workerReplaced(run.lines, f)) violate(`proxy worker ${f.target} killed and not replaced`, f.t);
  }

  // The clients' view, per model: a fault's window runs from its injection until that model is up again.
  const windows = injected.map((f) => {
    // A killed proxy worker cuts the requests it held, for every model; its replacement is up within the effect time.
    if (f.model === 'proxy') return { f, start: f.t, end: f.t + f.effectMs };
    const back = samples.find((s) => s.t >= f.t + f.effectMs && s.up[f.model]);
    return { f, start: f.t, end: back && back.t < sigtermAt ? back.t + 500 : Infinity };
  });
  const faultOn = (m, a, b) => windows.some((w) => (w.f.model === m || w.f.model === 'proxy') && w.start <= b && w.end >= a);
  const counts = {};
  let servedBesideDown = 0; // requests served while the other model was down: the scenario's point, counted
  for (const r of requests) {
    const phase = r.t0 < (firstReadyAt ?? Infinity) ? 'starting' : r.t1 >= sigtermAt ? 'stopping' : 'serving';
    if (phase === 'serving' && r.outcome === 'ok' && !upThroughout(MODELS.find((m) => m !== r.model), r.t0, r.t1)) servedBesideDown++;
    tally(counts, phase, r.outcome);
    if (r.outcome === 'ok' || phase !== 'serving') continue;
    const other = MODELS.find((m) => m !== r.model);
    const what = `${r.stream ? 'stream' : 'chat'} for ${r.model} ${(r.t0 / 1000).toFixed(2)}-${(r.t1 / 1000).toFixed(2)} s (${other} ${upThroughout(other, r.t0, r.t1) ? 'up' : 'down at some point'})`;
    if (r.outcome === 'timeout') {
      violate(`${what}: no answer within ${CLIENT_DEADLINE_MS} ms`, r.t0);
      continue;
    }
    if (r.outcome === 'status' && r.status === 503 && !r.retryAfter) violate(`${what}: 503 without Retry-After: ${r.detail}`, r.t0);
    const clean = r.outcome === 'status' && ([502, 503, 504].includes(r.status) || (r.status === 500 && /EngineCore encountered an issue/.test(r.detail)));
    if (r.outcome === 'status' && !clean) violate(`${what}: unclean status ${r.status}: ${r.detail}`, r.t0);
    // Its own model up all along, no fault on it in flight: the request must be served, whatever the other model does.
    if (upThroughout(r.model, r.t0 - 500, r.t1) && !faultOn(r.model, r.t0 - 500, r.t1)) {
      violate(`${what}: ${r.outcome} ${r.status ?? ''} ${r.detail} while ${r.model} was up`, r.t0);
    }
  }
  // /v1/models lists both public names whenever llmserve serves (the proxy answers it from the configuration).
  for (const l of listings) {
    if (l.status === null && windows.some((w) => w.f.model === 'proxy' && w.start <= l.to && w.end >= l.t)) continue; // on the killed worker
    if (l.status !== 200 || JSON.stringify(l.ids) !== JSON.stringify(MODELS)) violate(`/v1/models answered ${l.status}: ${l.text}`, l.t);
  }
  // check agrees with the rule: at a moment when both models are steadily up, exit 0; both steadily down, 1; one
  // steadily down and the other up: 1 under `all`, 0 under `any`.
  let judgedChecks = 0;
  for (const c of checkRuns) {
    if (c.to >= sigtermAt) continue;
    const a = c.from - 1000;
    const state = {};
    for (const m of MODELS) state[m] = upThroughout(m, a, c.to) && !faultOn(m, a, c.to) ? 'up' : downThroughout(m, a, c.to) ? 'down' : 'moving';
    if (MODELS.some((m) => state[m] === 'moving')) continue;
    const ups = MODELS.filter((m) => state[m] === 'up').length;
    const want = ups === 2 ? 0 : ups === 0 ? 1 : require === 'any' ? 0 : 1;
    judgedChecks++;
    if (c.code !== want) violate(`llmserve check exited ${c.code} (want ${want}: ${JSON.stringify(state)}, probes.require: ${require}): ${c.out}`, c.from);
  }

  const summary = {
    round: index, seed, require,
    faults: injected.map((f) => `${f.kind}:${f.model}${f.target ? '' : '(-)'}`).join(' '),
    vllmStarts: Object.fromEntries(MODELS.map((m) => [m, startsOf(list, m).length])),
    requests: requests.length, servedBesideDown, counts, listings: listings.length, checks: `${judgedChecks}/${checkRuns.length}`,
    exit: final.code ?? final.signal, secs: ((Date.now() - t0) / 1000).toFixed(1),
  };
  return endRound(dir, { summary, plan, injected, violations, requests, checkRuns, listings }, opts.keep);
}

// ==== scenario multi-node ===========================================================================================
function scheduleNodes(seed) {
  const rng = mulberry32(seed);
  const faults = [];
  let at = between(rng, 1000, 3000);
  while (at < opts.roundSeconds * 1000) {
    const kind = rng() < 0.6 ? 'kill-worker-ray' : 'sigkill-worker';
    faults.push({ at: Math.round(at), kind, restartAfter: Math.round(between(rng, 300, 3000)) });
    at += rng() < 0.2 ? between(rng, 50, 600) : between(rng, 3000, 7000);
  }
  const end = rng() < 0.6 ? 'sigterm-head' : 'kill-head-ray';
  return { workerFirst: rng() < 0.3, workerDelay: Math.round(between(rng, 0, 3000)), faults, endAt: Math.max(opts.roundSeconds * 1000, (faults.at(-1)?.at ?? 0) + 4000), end, clientSeed: Math.floor(rng() * 2 ** 31) };
}

async function multiNodeRound(index, seed) {
  const plan = scheduleNodes(seed);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'llmserve-soakn-'));
  const [port, backendPort] = [await freePort(), await freePort()];
  const headProbes = path.join(dir, 'head-probe');
  const workerProbes = path.join(dir, 'worker-probe');
  const argvFile = path.join(dir, 'vllm-argv.jsonl');
  const stamp = `${process.pid}-${index}-${Date.now()}`;
  const headMarker = `llmserve-soakn-head-${stamp}`;
  const shared = { FAKE_RAY_STATE_DIR: path.join(dir, 'ray'), FAKE_NVIDIA_SMI_GPUS: '2' };
  const headEnv = { ...baseEnv(headMarker, dir, opts.roundSeconds), ...shared, FAKE_RAY_NODE_ID: 'head', FAKE_VLLM_ARGV_FILE: argvFile };
  const t0 = Date.now();
  const now = () => Date.now() - t0;
  const { violations, violate } = violationLog(now, opts.verbose);
  // A large restart budget (the worker's `ray start` is SIGKILLed many times) and a fast backoff, for both roles.
  const config = path.join(dir, 'llmserve.yaml');
  fs.writeFileSync(config, 'restart: { policy: on-failure, max_failures: 1000, window: 600, backoff_initial: 0.2, backoff_max: 0.5 }\n');
  const common = ['--config', config, '--health-interval', String(HEALTH_INTERVAL), '--stop-timeout', String(STOP_TIMEOUT)];
  const startHead = () => launch(['start', '--role', 'head', '--nodes', '2', '--model', makeModel(dir, 'Big-Model'), '--port', String(port), '--backend-port', String(backendPort),
    '--probe-dir', headProbes, '--drain-timeout', String(DRAIN_TIMEOUT), '--startup-timeout', '30', ...common], headEnv, t0, path.join(dir, 'head.log'), 'head');
  const workers = [];
  const startWorker = () => {
    const marker = `llmserve-soakn-worker${workers.length}-${stamp}`;
    const w = launch(['start', '--role', 'worker', '--head', '127.0.0.1:6379', '--probe-dir', workerProbes, '--startup-timeout', '60', ...common],
      { ...baseEnv(marker, dir, opts.roundSeconds), ...shared, FAKE_RAY_NODE_ID: 'worker-1' }, t0, path.join(dir, `worker${workers.length}.log`), `worker${workers.length}`);
    w.marker = marker;
    w.startedAt = now();
    workers.push(w);
    return w;
  };
  let head;
  if (plan.workerFirst) {
    startWorker();
    await sleep(plan.workerDelay);
    head = startHead();
  } else {
    head = startHead();
    await sleep(plan.workerDelay);
    startWorker();
  }
  const worker = () => workers.at(-1);
  const exists = (d, f) => fs.existsSync(path.join(d, f));

  // Sampler: both roles' probe files.
  const samples = [];
  let headReadyAt = null;
  let workerReadyAt = null;
  let phase = 'starting'; // starting | serving | ending
  let workerDownSince = null; // the worker llmserve is being restarted (SIGKILLed): its files are the guard's
  const persist = persistence(violate);
  const workerRayPid = () => {
    const w = worker();
    return w && marked(w.marker).find((p) => / start --address=/.test(p.cmdline) && p.ppid === w.child.pid)?.pid;
  };
  const rayFaults = []; // { t, pid } of the worker's ray start SIGKILLed
  const sampler = setInterval(() => {
    const t = now();
    const s = { t, hnr: exists(headProbes, 'not-ready'), hnh: exists(headProbes, 'not-healthy'), wnr: exists(workerProbes, 'not-ready'), wnh: exists(workerProbes, 'not-healthy') };
    samples.push(s);
    if (headReadyAt === null && head.said(/\| ready after .* serves /) && !s.hnr && !s.hnh) headReadyAt = t;
    if (workerReadyAt === null && worker().said(/ready: joined the Ray cluster/) && !s.wnr) workerReadyAt = t;
    if (phase !== 'serving') return;
    persist('hnr', s.hnr || s.hnh, t, 0, 'head probe files appeared while it served (no fault on the head)');
    if (workerDownSince === null) {
      persist('wnr', s.wnr, t, 0, 'worker not-ready came back while it served');
      const lastKill = rayFaults.at(-1);
      const rayUp = lastKill === undefined || worker().lines.some((l) => l.t > lastKill.t && /joined .* again: not-healthy removed/.test(l.line));
      persist('wnh-extra', s.wnh && rayUp, t, 1500, 'worker not-healthy present while its ray start ran and the head answered');
    }
  }, SAMPLE_MS);
  const samplesBetween = (a, b) => samples.filter((s) => s.t >= a && s.t <= b);

  // Client load on the head.
  const requests = [];
  const clientRng = mulberry32(plan.clientSeed);
  let stopClients = false;
  const clients = clientLoops(opts.clients, clientRng, 150, () => stopClients, async () => {
    if (headReadyAt === null) {
      await sleep(100);
      return false; // not sent: no pause
    }
    requests.push(await chatRequest(port, 'Big-Model', clientRng() < 0.5, now));
  });

  const ready = await waitUntil(() => (headReadyAt !== null && workerReadyAt !== null) || head.exitInfo !== null || worker().exitInfo !== null, 40_000);
  const injected = [];
  if (!ready || headReadyAt === null || workerReadyAt === null) {
    violate(`not ready within 40 s (head ${headReadyAt ?? 'not ready'} ${JSON.stringify(head.exitInfo)}, worker ${workerReadyAt ?? 'not ready'} ${JSON.stringify(worker().exitInfo)})`);
  } else {
    phase = 'serving';
    const base = Date.now();
    for (const f of plan.faults) {
      while (Date.now() - base < f.at) await sleep(20);
        if (head.exitInfo !== null) break;
      const at = now();
      const w = worker();
      if (w.exitInfo !== null) {
        violate(`the worker exited by itself: ${JSON.stringify(w.exitInfo)}: ${w.lines.slice(-2).map((l) => l.line).join(' | ')}`, w.exitInfo.at);
        break;
      }
      if (f.kind === 'kill-worker-ray') {
        const pid = workerRayPid();
        const rejoined = () => w.lines.some((l) => l.t > at && /joined .* again: not-healthy removed/.test(l.line));
        if (pid && signal(pid, 'SIGKILL')) {
          rayFaults.push({ t: at, pid });
          injected.push({ kind: f.kind, t: at, target: pid });
          // not-healthy at once, then removed once ray start joined again (backoff 1 s by default).
          if (!(await waitUntil(() => exists(workerProbes, 'not-healthy'), 1000))) violate(`worker's ray start (pid ${pid}) SIGKILLed: not-healthy not created within 1 s`, at);
          if (!(await waitUntil(rejoined, 10_000))) violate(`worker's ray start (pid ${pid}) SIGKILLed: no rejoin within 10 s`, at);
          else if (!(await waitUntil(() => !exists(workerProbes, 'not-healthy'), 1000))) violate('worker rejoined but not-healthy stayed', at);
        } else injected.push({ kind: f.kind, t: at, target: null });
      } else {
        const procs = marked(w.marker);
        if (!signal(w.child.pid, 'SIGKILL')) continue;
        workerDownSince = at;
        injected.push({ kind: f.kind, t: at, target: w.child.pid });
        // The orphan guard: both probe files, and nothing of that worker left, within stop_timeout (+ margin).
        const cleaned = await waitUntil(() => exists(workerProbes, 'not-ready') && exists(workerProbes, 'not-healthy') && marked(w.marker).length === 0, STOP_TIMEOUT * 1000 + 3000);
        if (!cleaned) {
          const left = marked(w.marker);
          violate(`worker llmserve SIGKILLed: within ${STOP_TIMEOUT + 3} s: not-ready ${exists(workerProbes, 'not-ready')}, not-healthy ${exists(workerProbes, 'not-healthy')}, left: ${left.map((p) => `${p.pid} ${p.cmdline}`).join('; ')} (had: ${procs.map((p) => `${p.pid} ${p.cmdline}`).join('; ')})`, at);
          for (const p of left) signal(p.pid, 'SIGKILL');
        }
        await sleep(f.restartAfter);
        const w2 = startWorker();
        if (!(await waitUntil(() => w2.said(/ready: joined the Ray cluster/) || w2.exitInfo !== null, 20_000))) violate('the restarted worker did not join within 20 s', w2.startedAt);
        else if (w2.exitInfo !== null) violate(`the restarted worker exited ${JSON.stringify(w2.exitInfo)}: ${w2.lines.slice(-3).map((l) => l.line).join(' | ')}`, w2.startedAt);
        if (!(await waitUntil(() => !exists(workerProbes, 'not-ready') && !exists(workerProbes, 'not-healthy'), 2000))) violate('the restarted worker joined but its probe files stayed', now());
        workerDownSince = null;
      }
    }
    while (Date.now() - base < plan.endAt && head.exitInfo === null) await sleep(20);
  }

  // The end: SIGTERM to the head while the worker runs, or the head's Ray killed (the head exits 1).
  phase = 'ending';
  const endAt = now();
  const w = worker();
  let wantHead = 0;
  if (head.exitInfo !== null) violate(`the head exited by itself before the end: ${JSON.stringify(head.exitInfo)}`);
  else if (plan.end === 'sigterm-head' || headReadyAt === null) signal(head.child.pid, 'SIGTERM');
  else {
    const ray = marked(headMarker).find((p) => / start --head/.test(p.cmdline));
    if (ray) signal(ray.pid, 'SIGKILL');
    wantHead = 1;
  }
  const headLimit = (DRAIN_TIMEOUT + 3 * STOP_TIMEOUT) * 1000 + EXIT_MARGIN_MS;
  const hexit = await exitWithin(head, headLimit);
  if (hexit === null) {
    violate(`the head did not exit within ${headLimit} ms of ${plan.end}`);
    signal(head.child.pid, 'SIGKILL');
  } else if (hexit.code !== wantHead) violate(`the head exited ${hexit.code ?? hexit.signal} after ${plan.end} (want ${wantHead}): ${head.lines.slice(-3).map((l) => l.line).join(' | ')}`);
  await sleep(300);
  reapLeft(headMarker, violate, 'left behind by the head');
  probeFilesAfterExit(headProbes, violate, (f) => `head ${f} missing after its exit`);
  // The head is gone: the worker's `ray status --address` fails, so not-healthy (a few health intervals).
  if (w.exitInfo === null && workerReadyAt !== null) {
    if (!(await waitUntil(() => exists(workerProbes, 'not-healthy'), 5000))) violate('worker: no not-healthy within 5 s of the head going away');
    if (exists(workerProbes, 'not-ready')) violate('worker: not-ready while it runs, after the head went away');
  }
  const wStop = now();
  signal(w.child.pid, 'SIGTERM');
  const wLimit = 2 * STOP_TIMEOUT * 1000 + EXIT_MARGIN_MS;
  const wexit = await exitWithin(w, wLimit);
  if (wexit === null) {
    violate(`the worker did not exit within ${wLimit} ms of SIGTERM`, wStop);
    signal(w.child.pid, 'SIGKILL');
  } else if (wexit.code !== 0) violate(`the worker exited ${wexit.code ?? wexit.signal} after SIGTERM (want 0): ${w.lines.slice(-3).map((l) => l.line).join(' | ')}`, wStop);
  stopClients = true;
  await Promise.all(clients);
  clearInterval(sampler);
  await sleep(300);
  for (const x of workers) reapLeft(x.marker, violate, `left behind by ${x.label}`);
  probeFilesAfterExit(workerProbes, violate, (f) => `worker ${f} missing after its exit`);
  try {
    const nodes = fs.readdirSync(path.join(dir, 'ray', 'nodes'));
    if (nodes.length) violate(`Ray nodes left registered: ${nodes.join(', ')}`);
  } catch { /* none */ }

  // Restarts: the worker's ray start once per SIGKILL, the head's vLLM never (no fault hit it).
  const rayKills = injected.filter((f) => f.kind === 'kill-worker-ray' && f.target);
  const rejoins = workers.reduce((n, x) => n + x.lines.filter((l) => /joined .* again: not-healthy removed/.test(l.line)).length, 0);
  if (rejoins !== rayKills.length) violate(`${rejoins} rejoins for ${rayKills.length} ray start SIGKILLs`);
  const vllmStarts = readStarts(argvFile);
  if (vllmStarts.length !== 1) violate(`${vllmStarts.length} vLLM starts on the head (want 1: no fault hit it)`);
  for (const x of [head, ...workers]) for (const l of x.lines) if (/internal error|uncaught|unhandled/i.test(l.line)) violate(`${x.label} said: ${l.line}`, l.t);
  // Requests to the head while it served (no fault on the head before the end) must all be served.
  const counts = {};
  for (const r of requests) {
    const p = r.t1 < endAt ? 'serving' : 'ending';
    tally(counts, p, r.outcome);
    if (p === 'serving' && r.outcome !== 'ok') violate(`${r.stream ? 'stream' : 'chat'} ${(r.t0 / 1000).toFixed(2)}-${(r.t1 / 1000).toFixed(2)} s: ${r.outcome} ${r.status ?? ''} ${r.detail}`, r.t0);
  }
  void samplesBetween;

  const summary = {
    round: index, seed, end: plan.end, workerFirst: plan.workerFirst,
    faults: injected.map((f) => `${f.kind}${f.target ? '' : '(-)'}`).join(' '),
    workers: workers.length, rejoins, requests: requests.length, counts,
    head: hexit?.code ?? hexit?.signal, worker: wexit?.code ?? wexit?.signal, secs: ((Date.now() - t0) / 1000).toFixed(1),
  };
  return endRound(dir, { summary, plan, injected, violations, requests }, opts.keep);
}

// ---- main ------------------------------------------------------------------------------------------------------
const replay = `node scripts/soak-multi.mjs --scenario ${opts.scenario}${opts.require ? ` --require ${opts.require}` : ''}`;
await runRounds('soak-multi', opts, `${opts.scenario}, `, replay, (i, seed) => (opts.scenario === 'two-models'
  ? twoModelsRound(i, seed, opts.require ?? (i % 2 === 0 ? 'all' : 'any'))
  : multiNodeRound(i, seed)));
