#!/usr/bin/env node
// Randomized fault soak (run by hand, not part of `npm test`): `llmserve start` against the fakes, a steady mixed
// client load, and a seeded sequence of faults per round (engine or API server killed, hang, saturation, a proxy
// worker killed, SIGHUP with a rewritten keys file, SIGSTOP/SIGCONT, an engine stuck behind a live /health), each
// round ended by SIGTERM; then checks the invariants that the README promises. `node scripts/soak.mjs --minutes 3
// --seed 42`; `--round N` replays one round. Needs `npm run build` first. Exit 0: no invariant broke; 1: some did
// (each round's files are kept and named).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { freePort } from '../test/helpers/free-port.mjs';
import {
  CLIENT_DEADLINE_MS, DRAIN_TIMEOUT, HEALTH_INTERVAL, MASTER, SAMPLE_MS, STARTUP_TIMEOUT, STOP_TIMEOUT, alive, baseEnv, between,
  chatRequest, checkLoop, checkRestarts, clientLoops, endRound, launch, makeModel, marked, mulberry32, parseOptions, pick,
  playFaults, probeFilesAfterExit, probeState, procStat, proxyWorkers, readStarts, reapLeft, requireBuild, runRounds, signal, sleep, startsPoller, stopRun, tally,
  usageOf, violationLog, waitUntil, workerReplaced,
} from './soak-lib.mjs';

// ---- options -------------------------------------------------------------------------------------------------
const usage = usageOf('soak', 'usage: node scripts/soak.mjs [--minutes M] [--seed S] [--round N] [--round-seconds S] [--clients N] [--keep] [--verbose]');
const opts = parseOptions(process.argv.slice(2), { minutes: 3, seed: Date.now() % 100000, round: null, roundSeconds: 40, clients: 3, keep: false, verbose: false }, usage);
requireBuild(usage);

// ---- settings of every round (the rest are soak-lib.mjs's) ---------------------------------------------------
const NAMED = { alice: 'sk-soak-alice-0123456789abcdef', bob: 'sk-soak-bob-0123456789abcdef', carol: 'sk-soak-carol-0123456789abcdef' };
const STREAM_CHUNKS = 20;
const STREAM_INTERVAL_MS = 50; // a stream lasts about 1 s

// ---- the fault schedule of a round -----------------------------------------------------------------------------
const KINDS = ['kill-engine', 'kill-api', 'hang', 'saturate', 'kill-proxy-worker', 'hup', 'stop-api', 'stuck'];
/** engine_stall_timeout of every round, seconds: the client load keeps requests waiting on a stuck engine. */
const ENGINE_STALL_TIMEOUT = 2;
function schedule(seed) {
  const rng = mulberry32(seed);
  const faults = [];
  let at = between(rng, 1000, 3000);
  const end = opts.roundSeconds * 1000;
  while (at < end) {
    const kind = pick(rng, KINDS);
    const f = { at: Math.round(at), kind };
    if (kind === 'stop-api') f.stopMs = rng() < 0.5 ? Math.round(between(rng, 100, 500)) : Math.round(between(rng, 7000, 9000));
    if (kind === 'hup') f.roll = rng();
    faults.push(f);
    // Sometimes a second fault follows at once (a sequence), usually after a pause.
    at += rng() < 0.25 ? between(rng, 50, 600) : between(rng, 2000, 8000);
  }
  // SIGTERM: a while after the last fault, or right into its effects (a restart's backoff, a hang, a reload).
  const last = faults.at(-1)?.at ?? 0;
  const sigtermAt = Math.round(rng() < 0.5 ? last + between(rng, 50, 1500) : Math.max(end, last + 500) + between(rng, 0, 2500));
  const drainFault = rng() < 0.4 ? { kind: pick(rng, ['kill-proxy-worker', 'kill-engine', 'kill-api', 'hang', 'hup', 'stop-api', 'stuck']), delay: Math.round(between(rng, 50, 2000)), stopMs: 8000, roll: rng() } : null;
  return { faults, sigtermAt, drainFault, clientSeed: Math.floor(rng() * 2 ** 31) };
}

// ---- one round -------------------------------------------------------------------------------------------------
async function runRound(index, seed) {
  const plan = schedule(seed);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'llmserve-soak-'));
  const model = makeModel(dir, 'Soak-Model');
  const probeDir = path.join(dir, 'probe');
  const keysFile = path.join(dir, 'keys.yaml');
  const argvFile = path.join(dir, 'vllm-argv.jsonl');
  const config = path.join(dir, 'llmserve.yaml');
  const keysValid = (variant) => `- name: alice\n  key: ${NAMED.alice}\n- name: ${variant}\n  key: ${NAMED[variant]}\n`;
  fs.writeFileSync(keysFile, keysValid('bob'));
  fs.writeFileSync(config, [
    'restart:',
    '  policy: on-failure',
    '  max_failures: 1000',
    '  window: 600',
    '  backoff_initial: 0.2',
    '  backoff_max: 0.5',
    'drain:',
    `  timeout: ${DRAIN_TIMEOUT}`,
    `engine_stall_timeout: ${ENGINE_STALL_TIMEOUT}`,
    'proxy:',
    '  workers: 2',
    `  keys_file: ${keysFile}`,
    '',
  ].join('\n'));
  const [port, backendPort] = [await freePort(), await freePort()];
  const marker = `llmserve-soak-${process.pid}-${index}-${Date.now()}`;
  const env = {
    ...baseEnv(marker, dir, opts.roundSeconds),
    FAKE_VLLM_ARGV_FILE: argvFile,
    FAKE_NVIDIA_SMI_GPUS: '2',
    FAKE_VLLM_BUSY_HEALTH_MS: '3000',
    FAKE_VLLM_STREAM_CHUNKS: String(STREAM_CHUNKS),
    FAKE_VLLM_STREAM_INTERVAL_MS: String(STREAM_INTERVAL_MS),
  };
  const args = ['start', '--config', config, '--model', model, '--port', String(port), '--backend-port', String(backendPort), '--probe-dir', probeDir,
    '--health-interval', String(HEALTH_INTERVAL), '--stop-timeout', String(STOP_TIMEOUT), '--startup-timeout', String(STARTUP_TIMEOUT)];
  const t0 = Date.now();
  const now = () => Date.now() - t0;
  const { violations, violate } = violationLog(now, opts.verbose);

  // llmserve and its output, each line with the time it arrived.
  const run = launch(args, env, t0, path.join(dir, 'llmserve.log'), 'llmserve');
  const { child, lines, readyPids } = run; // readyPids: API server pid -> when it said "Application startup complete"

  // The sampler: probe files and whether the newest vLLM is up, every SAMPLE_MS.
  const samples = [];
  let sigtermAt = null;
  let firstReadyAt = null;
  const startTimes = []; // when the sampler first saw each vLLM start
  const pollStarts = startsPoller(argvFile, (list, t) => {
    while (startTimes.length < list.length) startTimes.push(t);
  });
  let downSince = null;
  let nrSaid = false;
  const sampler = setInterval(() => {
    const t = now();
    const { nr, nh } = probeState(probeDir);
    const latest = pollStarts(t).at(-1);
    const vllmUp = latest !== undefined && alive(latest.pid) && readyPids.has(latest.pid);
    samples.push({ t, nr, nh, vllmUp });
    // llmserve's own "ready after" line (the probe directory may not even exist before).
    if (firstReadyAt === null && run.said(/\| ready after .* serves /) && !nr && !nh) firstReadyAt = t;
    if (firstReadyAt !== null && sigtermAt === null && run.exitInfo === null) {
      if (nr && !nrSaid) {
        violate('not-ready came back while serving, without SIGTERM', t);
        nrSaid = true;
      }
      // not-healthy must be present whenever vLLM is down (its process gone, or not yet up after a restart).
      if (!vllmUp && !nh) {
        downSince ??= t;
        if (t - downSince > 400) {
          violate(`not-healthy absent for ${t - downSince} ms while vLLM (pid ${latest?.pid}) was ${latest && alive(latest.pid) ? 'not up yet' : 'gone'}`, downSince);
          downSince = Infinity; // said once per episode
        }
      } else downSince = null;
    }
  }, SAMPLE_MS);
  const disturbedBetween = (a, b) => samples.some((s) => s.t >= a - SAMPLE_MS && s.t <= b + SAMPLE_MS && (s.nr || s.nh));

  // ---- client load ----
  const requests = [];
  const clientRng = mulberry32(plan.clientSeed);
  let stopClients = false;
  const stopped = () => stopClients;
  const clients = clientLoops(opts.clients, clientRng, 100, stopped, () => {
    const stream = clientRng() < 0.5;
    const keyName = clientRng() < 0.8 ? 'master' : 'alice';
    return chatRequest(port, 'Soak-Model', stream, now, {
      key: keyName === 'master' ? MASTER : NAMED.alice,
      tag: { key: keyName },
      onStart: (r) => requests.push(r),
      onAnswer: (r) => { r.notReadyAtAnswer = fs.existsSync(path.join(probeDir, 'not-ready')); },
    });
  });

  // ---- wait for the first ready, then the faults ----
  const becameReady = await waitUntil(() => firstReadyAt !== null || run.exitInfo !== null, 30_000);
  const injected = [];
  let quietChecks = 0;
  let checkerDone = Promise.resolve();
  let injectFn = null;
  let keysState = 'valid';
  const checkRuns = [];
  if (!becameReady || firstReadyAt === null) {
    violate(`not ready within 30 s (exit: ${JSON.stringify(run.exitInfo)})`);
  } else {
    const apiGen = () => {
      const list = readStarts(argvFile);
      const i = list.length - 1;
      return i >= 0 && alive(list[i].pid) ? { gen: i, pid: list[i].pid, up: readyPids.has(list[i].pid) } : null;
    };
    // `llmserve check` every few seconds, in parallel; after the round, the runs at quiet moments must agree.
    checkerDone = checkLoop(() => sigtermAt !== null || run.exitInfo !== null, now, env, probeDir, config, checkRuns, 4);
    injectFn = inject;
    /** Injects one fault now and records what it should cause. */
    function inject(f) {
      const at = now();
      const rec = { ...f, t: at, gen: null, target: null, expect: 'none', effectMs: 0, windowEndHint: at };
      const g = apiGen();
      switch (f.kind) {
        case 'kill-engine': {
          const engine = marked(marker).find((p) => p.cmdline.startsWith('VLLM::EngineCore') && g && p.ppid === g.pid);
          if (engine && signal(engine.pid, 'SIGKILL')) Object.assign(rec, { gen: g.gen, target: engine.pid, expect: 'required', effectMs: 1500 });
          break;
        }
        case 'kill-api':
          if (g && signal(g.pid, 'SIGKILL')) Object.assign(rec, { gen: g.gen, target: g.pid, expect: 'required', effectMs: 500 });
          break;
        case 'hang':
          // Up: failed checks (after at most the busy window) restart it. Loading: the start-up timeout does.
          if (g && signal(g.pid, 'SIGUSR1')) Object.assign(rec, { gen: g.gen, target: g.pid, expect: 'required', effectMs: g.up ? 9000 : (STARTUP_TIMEOUT + 4) * 1000 });
          break;
        case 'stuck':
          // EngineCore deadlocked behind a live /health: the requests waiting on it restart it after the stall timeout
          // (a check to start the spell, the timeout, the stop). Loading: the fake sticks only once it listens.
          if (g && signal(g.pid, 'SIGWINCH')) Object.assign(rec, { gen: g.gen, target: g.pid, expect: g.up ? 'required' : 'maybe', effectMs: (ENGINE_STALL_TIMEOUT + 2 * HEALTH_INTERVAL + STOP_TIMEOUT + 1) * 1000 });
          break;
        case 'saturate':
          // Restarted only when no response flows for a while (a proxy restart in between, say): allowed, not required.
          if (g && signal(g.pid, 'SIGUSR2')) {
            Object.assign(rec, { gen: g.gen, target: g.pid, expect: 'maybe', effectMs: 6000 });
            // The fake leaves mode `hang` for `busy` here: a hang of this vLLM that was not yet due to be noticed is
            // over, and its restart allowed, not required (seed 777 round 1: a hang 6.5 s before this, still inside
            // the busy window of the answers it had scheduled).
            // A stuck engine that saturation unsticks (the fake's mode changes) likewise.
            for (const h of injected) if ((h.kind === 'hang' || h.kind === 'stuck') && h.gen === g.gen && h.expect === 'required' && at < h.t + h.effectMs) h.expect = 'maybe';
          }
          break;
        case 'stop-api':
          if (g) {
            const startTick = procStat(g.pid)?.start;
            if (signal(g.pid, 'SIGSTOP')) {
              const long = f.stopMs > 5000;
              Object.assign(rec, { gen: g.gen, target: g.pid, expect: long ? (g.up ? 'required' : 'maybe') : 'none', effectMs: f.stopMs + (long ? 4000 : 1500) });
              // This stop's SIGCONT also ends an earlier, longer stop of the same process: cut short, that one's restart
              // is allowed, not required (seed 9191 round 3: a 7.3 s stop ended after 4.4 s by a 0.3 s one).
              for (const h of injected) if (h.kind === 'stop-api' && h.target === g.pid && h.expect === 'required' && h.t + h.stopMs > at + f.stopMs) h.expect = 'maybe';
              setTimeout(() => {
                if (procStat(g.pid)?.start === startTick) signal(g.pid, 'SIGCONT');
              }, f.stopMs);
            }
          }
          break;
        case 'kill-proxy-worker': {
          const { primary, workers } = proxyWorkers(marker, child.pid);
          if (workers.length > 0) {
            const w = workers[Math.floor(f.at % workers.length)];
            if (signal(w.pid, 'SIGKILL')) Object.assign(rec, { target: w.pid, primary: primary.pid, effectMs: 1500 });
          }
          break;
        }
        case 'hup': {
          // valid, then sometimes broken, then valid again; alice is in every valid version.
          if (keysState === 'broken' || f.roll >= 0.4) {
            fs.writeFileSync(keysFile, keysValid(f.roll < 0.7 ? 'bob' : 'carol'));
            keysState = 'valid';
          } else {
            fs.writeFileSync(keysFile, pick(mulberry32(Math.floor(f.roll * 1e9)), [
              '- name: alice\n  key: [unclosed\n',
              '- name: alice\n  key: os.environ/LLMSERVE_SOAK_UNSET_VARIABLE\n',
              '- name: alice\n  key: sk-x\n  rmp: 3\n',
            ]));
            keysState = 'broken';
          }
          rec.keys = keysState;
          signal(child.pid, 'SIGHUP');
          rec.effectMs = 500;
          break;
        }
      }
      rec.windowEndHint = at + rec.effectMs + 3000;
      injected.push(rec);
      if (opts.verbose) process.stdout.write(`  ${(at / 1000).toFixed(2)} s ${f.kind}${rec.target ? ` -> ${rec.target}` : ' (no target)'}${rec.gen !== null ? ` gen ${rec.gen}` : ''}\n`);
    }
    await playFaults(plan.faults, plan.sigtermAt, () => run.exitInfo !== null, inject);
  }

  // ---- SIGTERM and the exit ----
  sigtermAt = now();
  const final = await stopRun(run, violate, () => {
    if (plan.drainFault && injectFn && run.exitInfo === null) {
      // A fault during the drain (a proxy worker dying, vLLM dying or hanging, a keys reload).
      setTimeout(() => {
        if (run.exitInfo === null) injectFn({ ...plan.drainFault, at: now() });
      }, plan.drainFault.delay);
    }
  });
  await checkerDone;
  stopClients = true;
  await Promise.all(clients);
  clearInterval(sampler);
  await sleep(300);
  reapLeft(marker, violate);
  probeFilesAfterExit(probeDir, violate);

  // ---- after the round: vLLM generations and restarts ----
  const list = readStarts(argvFile);
  list.forEach((s, i) => {
    if (s.otherVllmPids?.length) violate(`vLLM start ${i} (pid ${s.pid}) began while processes of an earlier vLLM lived: ${s.otherVllmPids.join(', ')}`);
  });
  startTimes.forEach((t, i) => {
    if (sigtermAt !== null && t > sigtermAt + 2 * SAMPLE_MS) violate(`vLLM started again (start ${i}, pid ${list[i]?.pid}) after SIGTERM`, t);
  });
  for (const l of lines) if (sigtermAt !== null && l.t > sigtermAt && /restarting only the proxy|restarting vLLM in/.test(l.line)) violate(`a restart after SIGTERM: ${l.line}`, l.t);
  checkRestarts(list, injected, sigtermAt, violate, 'vLLM', 'no fault that restarts hit it');
  // A killed proxy worker is replaced while the other serves (`starting another`), or, the third exit within 60 s or a
  // replacement killed before it served, the proxy is restarted as a whole; a proxy restart needs such a cause.
  const proxyRestarts = lines.filter((l) => /the proxy exited .*restarting only the proxy/.test(l.line));
  const workerKills = injected.filter((f) => f.kind === 'kill-proxy-worker' && f.target);
  for (const f of workerKills) {
    if (f.t >= sigtermAt - 1000 || workerReplaced(lines, f)) continue;
    if (!proxyRestarts.some((l) => l.t >= f.t && l.t - f.t < 5000)) violate(`proxy worker ${f.target} killed: neither replaced nor the proxy restarted`, f.t);
  }
  for (const l of proxyRestarts) {
    if (!workerKills.some((f) => f.t <= l.t && l.t - f.t < 5000 && !workerReplaced(lines, f))) violate(`a proxy restart with no unreplaced worker kill just before: ${l.line}`, l.t);
  }
  // A restart fails, and is tried again after its backoff, when a fault killed a worker of the proxy being started:
  // expected then (two worker kills close together), a violation with no such fault just before.
  const proxyRestartFailed = lines.filter((l) => /proxy restart failed/.test(l.line));
  for (const l of proxyRestartFailed) {
    const cause = injected.some((f) => f.kind === 'kill-proxy-worker' && f.target && f.t <= l.t && l.t - f.t < 3000);
    if (!cause) violate(`a proxy restart failed with no worker killed just before: ${l.line}`, l.t);
  }
  for (const l of lines) if (/internal error|uncaught|unhandled/i.test(l.line)) violate(`llmserve said: ${l.line}`, l.t);

  // ---- the clients' view ----
  // A fault's window: from its injection until the probe files say healthy again once its effect was due.
  const windows = injected.map((f) => {
    const from = f.t + f.effectMs;
    const healthy = samples.find((s) => s.t >= from && !s.nr && !s.nh);
    return { f, start: f.t, end: healthy && (sigtermAt === null || healthy.t < sigtermAt) ? healthy.t + 500 : Infinity };
  });
  const faultDuring = (a, b, kinds) => windows.some((w) => w.start <= b && w.end >= a && (!kinds || kinds.includes(w.f.kind)));
  for (const c of checkRuns) {
    // Quiet: healthy probe files from a second before to the end, no fault injected or in effect meanwhile.
    const quiet = !disturbedBetween(c.from - 1000, c.to) && !faultDuring(c.from - 1000, c.to) && (sigtermAt === null || c.to < sigtermAt);
    if (!quiet) continue;
    quietChecks++;
    if (c.code !== 0) violate(`llmserve check exited ${c.code} while the probe files said healthy: ${c.out}`, c.from);
  }
  // When llmserve's handler took the SIGTERM (its line arrived): a 503 before that can be a restart's, not the drain's.
  const sigtermTaken = lines.find((l) => l.line.includes('SIGTERM received'))?.t ?? Infinity;
  const counts = {};
  for (const r of requests) {
    const phase = r.t0 < (firstReadyAt ?? Infinity) ? 'starting' : sigtermAt !== null && r.t1 >= sigtermAt ? 'stopping' : 'serving';
    tally(counts, phase, r.outcome);
    const what = `${r.stream ? 'stream' : 'chat'} (${r.key}) ${(r.t0 / 1000).toFixed(2)}-${((r.t1 ?? 0) / 1000).toFixed(2)} s`;
    const afterStop = sigtermAt !== null && r.t1 !== null && r.t1 >= sigtermAt;
    const startedAfterStop = sigtermAt !== null && r.t0 >= sigtermAt;
    if (r.outcome === 'ok') continue;
    // Before the first ready the proxy may not listen yet, and answers 503 once it does: only 401s and hangs count.
    const beforeReady = r.t0 < firstReadyAt;
    if (r.outcome === 'timeout') {
      violate(`${what}: no answer within the client's ${CLIENT_DEADLINE_MS} ms deadline`, r.t0);
      continue;
    }
    if (r.status === 401) {
      violate(`${what}: 401 for a valid key: ${r.detail}`, r.t0);
      continue;
    }
    const disturbed = faultDuring(r.t0, r.t1) || disturbedBetween(r.t0, r.t1);
    if (r.outcome === 'status') {
      if (beforeReady && r.status === 503 && r.retryAfter) continue; // still starting
      const clean = (r.status === 503 && r.retryAfter) || r.status === 502 || r.status === 504
        // vLLM's own answer between its engine's death and its exit, passed through unchanged.
        || (r.status === 500 && /EngineCore encountered an issue/.test(r.detail) && faultDuring(r.t0, r.t1, ['kill-engine']));
      if (!clean) violate(`${what}: unclean status ${r.status} (Retry-After ${r.retryAfter}): ${r.detail}`, r.t0);
      else if (startedAfterStop) {
        if (r.status !== 503) violate(`${what}: ${r.status} after SIGTERM (want 503 while draining)`, r.t0);
        // Only once llmserve has taken the signal: sent between the soak's SIGTERM and llmserve's handler, during a vLLM
        // restart, the 503 is the restart's (seed 9191 round 2).
        else if (!r.notReadyAtAnswer && r.t0 >= sigtermTaken) violate(`${what}: a draining 503 while not-ready was absent`, r.t0);
      } else if (!disturbed && !afterStop) violate(`${what}: ${r.status} while ready and healthy, no fault in flight: ${r.detail}`, r.t0);
      continue;
    }
    if (r.outcome === 'cut') {
      // A stream in flight at SIGTERM must finish within drain.timeout, unless a fault hit it.
      if (!disturbed && !(afterStop && r.t1 - sigtermAt >= DRAIN_TIMEOUT * 1000 - 200)) violate(`${what}: cut (${r.status}) with no fault in flight: ${r.detail}`, r.t0);
      continue;
    }
    if (r.outcome === 'conn-error') {
      if (beforeReady) continue;
      // A killed worker's connections break; the proxy is down only while it restarts (workers that keep dying) and after
      // the drain.
      if (startedAfterStop || (afterStop && r.t1 - sigtermAt >= DRAIN_TIMEOUT * 1000 - 200)) continue;
      if (!faultDuring(r.t0, r.t1, ['kill-proxy-worker'])) violate(`${what}: connection error (${r.detail}) with no proxy fault in flight`, r.t0);
    }
  }

  const summary = {
    round: index,
    seed,
    faults: injected.map((f) => `${f.kind}${f.target ? '' : '(-)'}`).join(' '),
    vllmStarts: list.length,
    proxyRestarts: proxyRestarts.length,
    requests: requests.length,
    counts,
    quietChecks,
    exit: final.code ?? final.signal,
    secs: ((Date.now() - t0) / 1000).toFixed(1),
  };
  return endRound(dir, { summary, plan, injected, violations, requests, checkRuns }, opts.keep);
}

// ---- main ------------------------------------------------------------------------------------------------------
await runRounds('soak', opts, '', 'node scripts/soak.mjs', runRound);
