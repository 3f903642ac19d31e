#!/usr/bin/env node
// `npm run bench`: llmserve's proxy against direct access, a bare http-proxy and nginx, measured alternately in
// one run; prints a table and writes bench/results.json. `--quick` for a short first look; `--serve` only starts
// the targets (for wrk). See docs/performance.md.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { abortLatency, abortedStreams, burst, fixedRate, saturation, sleep, sseRun } from './load.mjs';
import { supervisorTimings } from './supervisor.mjs';
import { KEY, cpuMsOf, root, rssOf, rssSampler, startBare, startLlmserve, startNginx, startUpstream } from './targets.mjs';
import { keyCheckCost } from './keys.mjs';
import { evaluate, printTable } from './report.mjs';

const quick = process.argv.includes('--quick');
const plan = quick
  ? { satRounds: 1, satSeconds: 2, rateRounds: 1, rateSeconds: 2, sseRounds: 1, sse1kEvents: 75, sse5kEvents: 12, aborts: 5, leakRequests: 10_000, leakStreams: 1_000, checkRuns: 5 }
  : { satRounds: 2, satSeconds: 4, rateRounds: 2, rateSeconds: 4, sseRounds: 3, sse1kEvents: 150, sse5kEvents: 30, aborts: 20, leakRequests: 100_000, leakStreams: 10_000, checkRuns: 10 };

const began = Date.now();
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'llmserve-bench-'));
const log = (msg) => process.stderr.write(`[${((Date.now() - began) / 1000).toFixed(0).padStart(3)} s] ${msg}\n`);
const pct = (xs, p) => {
  if (xs.length === 0) return null;
  const sorted = Float64Array.from(xs).sort();
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
};
const ms = (us) => (us === null ? null : us / 1000);
const mean = (xs) => xs.reduce((a, b) => a + b, 0) / xs.length;
const rotate = (xs, i) => xs.slice(i % xs.length).concat(xs.slice(0, i % xs.length));

const closeWaiters = new Map();
const closedAt = (id) => new Promise((resolve) => closeWaiters.set(id, resolve));
const onClosed = (id, t) => {
  closeWaiters.get(id)?.(t);
  closeWaiters.delete(id);
};

const fdLimit = Number((await import('node:child_process')).execSync('ulimit -n', { shell: '/bin/sh' }).toString().trim()) || null;
const results = {
  date: new Date().toISOString(),
  mode: quick ? 'quick' : 'full',
  machine: { cpus: os.cpus().length, cpuModel: os.cpus()[0]?.model ?? 'unknown', memoryGiB: +(os.totalmem() / 2 ** 30).toFixed(1), os: `${os.type()} ${os.release()}`, fdLimit },
  node: process.version,
  loadAverageAtStart: os.loadavg().map((x) => +x.toFixed(2)),
  notes: [],
};
if (os.loadavg()[0] > os.cpus().length / 2) results.notes.push(`load average ${os.loadavg()[0].toFixed(1)} at start: other processes share the CPUs, so the figures (streaming p99 above all) are noisy; rerun on an idle machine`);
if (fdLimit !== null && fdLimit < 16_384) results.notes.push(`ulimit -n is ${fdLimit}: 5,000 streams need about 15,000 descriptors across the processes; raise it (ulimit -n 65536) if streams fail with EMFILE`);

const upstream = await startUpstream(onClosed);
// llmserve's proxy.workers as `auto` (the default) resolves it here, min(2, CPUs), or BENCH_PROXY_WORKERS; nginx
// gets as many worker processes, so that the two proxies get the same number of processes.
const workers = Number(process.env.BENCH_PROXY_WORKERS ?? Math.min(2, os.availableParallelism()));
results.proxyWorkers = workers;
const llmserve = await startLlmserve(upstream.port, path.join(dir, 'llmserve-access.log'), workers === 1 ? {} : { workers });
const bare = await startBare(upstream.port);
const nginx = await startNginx(upstream.port, dir, workers).catch((err) => (results.notes.push(`nginx failed to start: ${err.message}`), null));
if (nginx === null && !results.notes.some((n) => n.startsWith('nginx'))) results.notes.push('nginx is not on PATH: the streaming targets are checked against direct access and the nginx figures measured when the issue was filed');
const targets = [upstream, llmserve, bare, ...(nginx ? [nginx] : [])];
results.nginx = nginx !== null;
log(`ports: direct ${upstream.port}, llmserve ${llmserve.port}, http-proxy ${bare.port}${nginx ? `, nginx ${nginx.port}` : ''}`);

if (process.argv.includes('--serve')) {
  // For other load generators (docs/performance.md: wrk): keep the targets up until Ctrl-C.
  process.stdout.write(`key: ${KEY}\n${targets.map((t) => `${t.name}: http://127.0.0.1:${t.port}/v1/chat/completions`).join('\n')}\nCtrl-C to stop\n`);
  await new Promise((resolve) => process.once('SIGINT', resolve));
  for (const t of [llmserve, bare, nginx, upstream]) await t?.stop();
  process.exit(0);
}

try {
  // Warm-up: JIT, pools, nginx's upstream keep-alive connections.
  for (const t of targets) await saturation(t.port, 1);

  log('non-streaming saturation, 50 connections');
  const sat = Object.fromEntries(targets.map((t) => [t.name, []]));
  for (let r = 0; r < plan.satRounds; r++) {
    for (const t of rotate(targets, r)) {
      const s = await saturation(t.port, plan.satSeconds);
      if (s.errors + s.non2xx > 0) results.notes.push(`${t.name}: ${s.errors} errors, ${s.non2xx} non-2xx at saturation`);
      sat[t.name].push(s);
    }
  }
  // Errors and non-2xx answers are counted: autocannon's rate counts every answer, a fast 401 or 502 included.
  results.saturation = Object.fromEntries(Object.entries(sat).map(([k, v]) => [k, { rps: Math.round(mean(v.map((s) => s.rps))), rounds: v.map((s) => Math.round(s.rps)), errors: v.reduce((n, s) => n + s.errors + s.non2xx, 0) }]));

  log('non-streaming latency at 500 req/s');
  const lat = Object.fromEntries(targets.map((t) => [t.name, { latencies: [], errors: 0 }]));
  for (let r = 0; r < plan.rateRounds; r++) {
    for (const t of rotate(targets, r)) {
      const x = await fixedRate(t.port, 500, plan.rateSeconds);
      lat[t.name].latencies.push(...x.latencies);
      lat[t.name].errors += x.errors;
    }
  }
  results.latency500 = Object.fromEntries(Object.entries(lat).map(([k, v]) => [k, { p50Ms: ms(pct(v.latencies, 50)), p99Ms: ms(pct(v.latencies, 99)), samples: v.latencies.length, errors: v.errors }]));

  const streaming = async (streams, intervalMs, events, rampMs, rounds, who) => {
    const acc = Object.fromEntries(who.map((t) => [t.name, { delays: [], opening: [], closing: [], afterRamp: [], allOpenMs: [], openMs: [], roundP99s: [], ttfb: [], errors: 0, peakRssMB: 0, proxyCpuMs: 0, harnessCpuMs: 0, wallMs: 0 }]));
    for (let r = 0; r < rounds; r++) {
      for (const t of rotate(who, r)) {
        const rss = t === upstream ? null : rssSampler(t);
        // CPU of the proxy (every process of it), of the harness (the fake upstream and this process, the client), and
        // the round's wall time: how much of the machine each proxy's rounds used, which is what its tail waits on.
        const proxyPids = t === upstream ? [] : t.pids();
        const cpuOf = (pids) => pids.reduce((sum, pid) => sum + cpuMsOf(pid), 0);
        const before = { proxy: cpuOf(proxyPids), upstream: cpuMsOf(upstream.pid), client: process.cpuUsage(), at: Date.now() };
        const x = await sseRun(t.port, { streams, intervalMs, events, rampMs });
        const a = acc[t.name];
        const client = process.cpuUsage(before.client);
        a.proxyCpuMs += cpuOf(proxyPids) - before.proxy;
        a.harnessCpuMs += cpuMsOf(upstream.pid) - before.upstream + (client.user + client.system) / 1000;
        a.wallMs += Date.now() - before.at;
        for (const d of x.delays) a.delays.push(d);
        for (const d of x.opening) a.opening.push(d);
        for (const d of x.closing) a.closing.push(d);
        for (const d of x.afterRamp) a.afterRamp.push(d);
        a.allOpenMs.push(Math.round(x.allOpenMs));
        a.openMs.push(Math.round(x.openMs));
        a.roundP99s.push(ms(pct(x.delays, 99)));
        for (const d of x.ttfb) a.ttfb.push(d);
        a.errors += x.errors;
        if (rss) a.peakRssMB = Math.max(a.peakRssMB, +(rss.stop() / 2 ** 20).toFixed(1));
        await sleep(300);
      }
    }
    return Object.fromEntries(
      Object.entries(acc).map(([k, a]) => [
        k,
        {
          // While all the streams were open: `streams` concurrent streams, what the targets are judged on.
          eventDelayP50Ms: ms(pct(a.delays, 50)),
          eventDelayP99Ms: ms(pct(a.delays, 99)),
          // Beside it, not judged: the events sent while streams were still being opened, and while they ended; and
          // every event from the planned ramp's end on (the window of runs 1-68, opening overrun and ending included).
          openingP99Ms: ms(pct(a.opening, 99)),
          closingP99Ms: ms(pct(a.closing, 99)),
          afterRampP50Ms: ms(pct(a.afterRamp, 50)),
          afterRampP99Ms: ms(pct(a.afterRamp, 99)),
          // Each round: ms from the first stream's request to the last one's response head, and how long all were open.
          allOpenAfterMs: a.allOpenMs,
          allOpenForMs: a.openMs,
          // Each round's own p99, in the order run: whether a pooled p99 came from every round or from one bad one.
          roundsP99Ms: a.roundP99s,
          ttfbP50Ms: ms(pct(a.ttfb, 50)),
          ttfbP99Ms: ms(pct(a.ttfb, 99)),
          events: a.delays.length,
          errors: a.errors,
          peakRssMB: k === 'direct' ? null : a.peakRssMB,
          // Per event sent (streams x events x rounds), streams opened and closed included.
          proxyCpuUsPerEvent: k === 'direct' ? null : +((a.proxyCpuMs * 1000) / (streams * events * rounds)).toFixed(1),
          // Share of all the CPUs' time the proxy, the upstream and the client used over the rounds.
          machineBusy: +((a.proxyCpuMs + a.harnessCpuMs) / (a.wallMs * os.availableParallelism())).toFixed(3),
        },
      ]),
    );
  };
  log('1,000 SSE streams, an event every 20 ms');
  results.streams1000 = await streaming(1000, 20, plan.sse1kEvents, 1000, plan.sseRounds, targets);
  log('5,000 SSE streams, an event every 200 ms');
  results.streams5000 = await streaming(5000, 200, plan.sse5kEvents, 2000, 1, targets.filter((t) => t !== bare));

  log('client abort -> upstream close');
  results.abort = {};
  for (const t of targets.filter((x) => x !== upstream)) {
    const x = await abortLatency(t.port, plan.aborts, closedAt, t.name);
    results.abort[t.name] = { p50Ms: ms(pct(x.times, 50)), maxMs: ms(x.times.length ? Math.max(...x.times) : null), samples: x.times.length, errors: x.errors };
  }

  log(`memory: ${plan.leakRequests} requests + ${plan.leakStreams} aborted streams through llmserve`);
  // The warm-up is the same load, so that every worker's heap reaches its working size before the first reading
  // (V8 keeps what it grew to, and the kernel may give one worker most of the warm-up's connections); each reading
  // is the median of five samples after a pause, since one sample lands anywhere in a GC cycle (a single reading
  // once showed +61 % where twelve rounds in a row stayed flat). A leak grows with every round; this does not.
  const settledRss = async () => {
    await sleep(1500);
    const xs = [];
    // The whole proxy: the cluster primary and its workers.
    for (let i = 0; i < 5; i++) (xs.push(llmserve.pids().reduce((sum, pid) => sum + rssOf(pid), 0)), await sleep(200));
    return xs.sort((a, b) => a - b)[2];
  };
  await burst(llmserve.port, plan.leakRequests);
  await abortedStreams(llmserve.port, plan.leakStreams, 100);
  const rssWarm = await settledRss();
  const b = await burst(llmserve.port, plan.leakRequests);
  const s = await abortedStreams(llmserve.port, plan.leakStreams, 100);
  const rssAfter = await settledRss();
  results.memory = { rssAfterWarmupMB: +(rssWarm / 2 ** 20).toFixed(1), rssAfterMB: +(rssAfter / 2 ** 20).toFixed(1), growth: +(rssAfter / rssWarm - 1).toFixed(3), requests: b.total, requestErrors: b.errors + b.non2xx, abortedStreams: plan.leakStreams, streamErrors: s.errors };
} finally {
  for (const t of [llmserve, bare, nginx, upstream]) await t?.stop();
}

log('supervisor timings and `llmserve check`');
results.supervisor = await supervisorTimings(dir, plan.checkRuns);
for (const n of results.supervisor.notes) results.notes.push(n);
delete results.supervisor.notes;
results.check = results.supervisor.check;
delete results.supervisor.check;

log('key check with 1, 1,000 and 10,000 keys');
results.keyCheck = await keyCheckCost();

results.seconds = Math.round((Date.now() - began) / 1000);
evaluate(results);
printTable(results);
fs.writeFileSync(path.join(root, 'bench/results.json'), JSON.stringify(results, null, 2) + '\n');
fs.rmSync(dir, { recursive: true, force: true });
log('wrote bench/results.json');
process.exitCode = results.targets.every((t) => t.pass !== false) ? 0 : 1;
