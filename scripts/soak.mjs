#!/usr/bin/env node
// Randomized fault soak (run by hand, not part of `npm test`): `llmserve start` against the fakes, a steady mixed
// client load, and a seeded sequence of faults per round (engine or API server killed, hang, saturation, a proxy
// worker killed, SIGHUP with a rewritten keys file, SIGSTOP/SIGCONT), each round ended by SIGTERM; then checks the
// invariants that the README promises. `node scripts/soak.mjs --minutes 3 --seed 42`; `--round N` replays one round.
// Needs `npm run build` first. Exit 0: no invariant broke; 1: some did (each round's files are kept and named).
import { spawn, execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from '../test/helpers/free-port.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const bin = path.join(root, 'bin', 'llmserve.js');

// ---- options -------------------------------------------------------------------------------------------------
const opts = { minutes: 3, seed: Date.now() % 100000, round: null, roundSeconds: 40, clients: 3, keep: false, verbose: false };
{
  const argv = process.argv.slice(2);
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const val = () => {
      const v = argv[++i];
      if (v === undefined) usage(`${a} needs a value`);
      return v;
    };
    if (a === '--minutes') opts.minutes = Number(val());
    else if (a === '--seed') opts.seed = Number(val());
    else if (a === '--round') opts.round = Number(val());
    else if (a === '--round-seconds') opts.roundSeconds = Number(val());
    else if (a === '--clients') opts.clients = Number(val());
    else if (a === '--keep') opts.keep = true;
    else if (a === '--verbose') opts.verbose = true;
    else if (a === '-h' || a === '--help') usage();
    else usage(`unknown option ${a}`);
  }
}
function usage(err) {
  const text = 'usage: node scripts/soak.mjs [--minutes M] [--seed S] [--round N] [--round-seconds S] [--clients N] [--keep] [--verbose]';
  if (err) {
    process.stderr.write(`soak: ${err}\n${text}\n`);
    process.exit(2);
  }
  process.stdout.write(`${text}\n`);
  process.exit(0);
}
if (!fs.existsSync(path.join(root, 'dist'))) usage('run `npm run build` first');

// ---- settings of every round ---------------------------------------------------------------------------------
const MASTER = 'sk-soak-master-0123456789abcdef0123';
const NAMED = { alice: 'sk-soak-alice-0123456789abcdef', bob: 'sk-soak-bob-0123456789abcdef', carol: 'sk-soak-carol-0123456789abcdef' };
const HEALTH_INTERVAL = 0.3;
const STOP_TIMEOUT = 2;
const DRAIN_TIMEOUT = 3;
const STARTUP_TIMEOUT = 10; // a restart whose vLLM hangs while loading fails after this long (then restarts again)
const EXIT_MARGIN_MS = 6000;
const CLIENT_DEADLINE_MS = 20_000;
const STREAM_CHUNKS = 20;
const STREAM_INTERVAL_MS = 50; // a stream lasts about 1 s
const SAMPLE_MS = 25;

// ---- seeded randomness ---------------------------------------------------------------------------------------
function mulberry32(a) {
  return () => {
    a |= 0;
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const between = (rng, lo, hi) => lo + rng() * (hi - lo);
const pick = (rng, list) => list[Math.floor(rng() * list.length)];

// ---- /proc -----------------------------------------------------------------------------------------------------
function procStat(pid) {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const close = stat.lastIndexOf(')');
    const f = stat.slice(close + 2).split(' ');
    return { state: f[0], ppid: Number(f[1]), pgid: Number(f[2]), start: f[19] };
  } catch {
    return undefined;
  }
}
const alive = (pid) => {
  const s = procStat(pid);
  return s !== undefined && s.state !== 'Z' && s.state !== 'X';
};
/** Live processes carrying the round's marker in their environment (every process llmserve and the fakes start). */
function marked(marker) {
  const out = [];
  for (const name of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(name) || Number(name) === process.pid) continue;
    try {
      if (!fs.readFileSync(`/proc/${name}/environ`, 'utf8').includes(marker)) continue;
      const s = procStat(name);
      if (!s || s.state === 'Z') continue;
      out.push({ pid: Number(name), ...s, cmdline: fs.readFileSync(`/proc/${name}/cmdline`, 'utf8').replace(/\0+$/, '').replace(/\0/g, ' ') });
    } catch { /* gone, or not ours */ }
  }
  return out;
}
function signal(pid, sig) {
  try {
    process.kill(pid, sig);
    return true;
  } catch {
    return false;
  }
}

// ---- the fault schedule of a round -----------------------------------------------------------------------------
const KINDS = ['kill-engine', 'kill-api', 'hang', 'saturate', 'kill-proxy-worker', 'hup', 'stop-api'];
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
  const drainFault = rng() < 0.4 ? { kind: pick(rng, ['kill-proxy-worker', 'kill-engine', 'kill-api', 'hang', 'hup', 'stop-api']), delay: Math.round(between(rng, 50, 2000)), stopMs: 8000, roll: rng() } : null;
  return { faults, sigtermAt, drainFault, clientSeed: Math.floor(rng() * 2 ** 31) };
}

// ---- one round -------------------------------------------------------------------------------------------------
async function runRound(index, seed) {
  const plan = schedule(seed);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'llmserve-soak-'));
  const model = path.join(dir, 'Soak-Model');
  fs.mkdirSync(model);
  fs.writeFileSync(path.join(model, 'config.json'), JSON.stringify({ architectures: ['Qwen2ForCausalLM'], num_attention_heads: 12, max_position_embeddings: 32768 }));
  fs.writeFileSync(path.join(model, 'model.safetensors'), Buffer.alloc(64));
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
    'proxy:',
    '  workers: 2',
    `  keys_file: ${keysFile}`,
    '',
  ].join('\n'));
  const [port, backendPort] = [await freePort(), await freePort()];
  const marker = `llmserve-soak-${process.pid}-${index}-${Date.now()}`;
  const env = {
    ...process.env,
    PATH: `${path.join(root, 'test', 'fixtures', 'bin')}${path.delimiter}${process.env.PATH ?? ''}`,
    NO_COLOR: '1',
    LLMSERVE_TEST_MARKER: marker,
    LLMSERVE_MASTER_KEY: MASTER,
    LLMSERVE_USAGE_DIR: dir,
    FAKE_VLLM_ARGV_FILE: argvFile,
    FAKE_VLLM_LOAD_MS: '300',
    FAKE_NVIDIA_SMI_GPUS: '2',
    FAKE_VLLM_BUSY_HEALTH_MS: '3000',
    FAKE_VLLM_STREAM_CHUNKS: String(STREAM_CHUNKS),
    FAKE_VLLM_STREAM_INTERVAL_MS: String(STREAM_INTERVAL_MS),
    FAKE_VLLM_MAX_LIFETIME_MS: String((opts.roundSeconds + 120) * 1000),
  };
  const args = ['start', '--config', config, '--model', model, '--port', String(port), '--backend-port', String(backendPort), '--probe-dir', probeDir,
    '--health-interval', String(HEALTH_INTERVAL), '--stop-timeout', String(STOP_TIMEOUT), '--startup-timeout', String(STARTUP_TIMEOUT)];
  const t0 = Date.now();
  const now = () => Date.now() - t0;
  const violations = [];
  const violate = (what, at = now()) => {
    violations.push(`[${(at / 1000).toFixed(2)} s] ${what}`);
    if (opts.verbose) process.stdout.write(`  VIOLATION ${violations.at(-1)}\n`);
  };

  // llmserve and its output, each line with the time it arrived.
  const child = spawn(process.execPath, [bin, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  const logFile = fs.createWriteStream(path.join(dir, 'llmserve.log'));
  const lines = [];
  const readyPids = new Map(); // API server pid -> when it said "Application startup complete"
  let readySaid = false; // llmserve's own "ready after" line (the probe directory may not even exist before)
  for (const stream of [child.stdout, child.stderr]) {
    let partial = '';
    stream.on('data', (chunk) => {
      const parts = (partial + chunk.toString()).split('\n');
      partial = parts.pop() ?? '';
      for (const line of parts) {
        const t = now();
        lines.push({ t, line });
        logFile.write(`${(t / 1000).toFixed(3)} ${line}\n`);
        const m = /\(APIServer pid=(\d+)\) INFO:\s+Application startup complete/.exec(line);
        if (m) readyPids.set(Number(m[1]), t);
        if (/\| ready after .* serves /.test(line)) readySaid = true;
      }
    });
  }
  const exited = new Promise((resolve) => child.on('exit', (code, sig) => resolve({ code, signal: sig, at: now() })));
  let exitInfo = null;
  exited.then((e) => { exitInfo = e; });

  const starts = () => {
    try {
      return fs.readFileSync(argvFile, 'utf8').trim().split('\n').filter(Boolean).map((l) => JSON.parse(l));
    } catch {
      return [];
    }
  };

  // The sampler: probe files and whether the newest vLLM is up, every SAMPLE_MS.
  const samples = [];
  let sigtermAt = null;
  let firstReadyAt = null;
  let startCount = 0;
  let startList = [];
  const startTimes = []; // when the sampler first saw each vLLM start
  let downSince = null;
  let nrSaid = false;
  const sampler = setInterval(() => {
    const t = now();
    const nr = fs.existsSync(path.join(probeDir, 'not-ready'));
    const nh = fs.existsSync(path.join(probeDir, 'not-healthy'));
    let size = 0;
    try { size = fs.statSync(argvFile).size; } catch { /* none yet */ }
    if (size !== startCount) {
      startCount = size;
      startList = starts();
      while (startTimes.length < startList.length) startTimes.push(t);
    }
    const latest = startList.at(-1);
    const vllmUp = latest !== undefined && alive(latest.pid) && readyPids.has(latest.pid);
    samples.push({ t, nr, nh, vllmUp });
    if (firstReadyAt === null && readySaid && !nr && !nh) firstReadyAt = t;
    if (firstReadyAt !== null && sigtermAt === null && exitInfo === null) {
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
  const sampleAt = (t) => {
    let lo = 0;
    let hi = samples.length - 1;
    if (hi < 0) return undefined;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (samples[mid].t <= t) lo = mid;
      else hi = mid - 1;
    }
    return samples[lo];
  };
  const disturbedBetween = (a, b) => samples.some((s) => s.t >= a - SAMPLE_MS && s.t <= b + SAMPLE_MS && (s.nr || s.nh));

  // ---- client load ----
  const requests = [];
  const clientRng = mulberry32(plan.clientSeed);
  let stopClients = false;
  const modelName = 'Soak-Model';
  async function oneRequest() {
    const stream = clientRng() < 0.5;
    const keyName = clientRng() < 0.8 ? 'master' : 'alice';
    const key = keyName === 'master' ? MASTER : NAMED.alice;
    const r = { t0: now(), t1: null, stream, key: keyName, status: null, retryAfter: null, outcome: null, detail: '' };
    requests.push(r);
    const ac = new AbortController();
    const deadline = setTimeout(() => ac.abort(), CLIENT_DEADLINE_MS);
    try {
      const res = await fetch(`http://127.0.0.1:${port}/v1/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` },
        body: JSON.stringify({ model: modelName, stream, messages: [{ role: 'user', content: 'soak' }] }),
        signal: ac.signal,
      });
      r.status = res.status;
      r.notReadyAtAnswer = fs.existsSync(path.join(probeDir, 'not-ready'));
      r.retryAfter = res.headers.get('retry-after');
      let body = '';
      try {
        body = await res.text();
      } catch (err) {
        r.outcome = ac.signal.aborted ? 'timeout' : 'cut';
        r.detail = String(err?.cause?.code ?? err?.message ?? err);
        return;
      }
      if (res.status === 200) {
        const complete = stream ? body.includes('data: [DONE]') : (() => {
          try {
            return Array.isArray(JSON.parse(body).choices);
          } catch {
            return false;
          }
        })();
        r.outcome = complete ? 'ok' : 'cut';
        if (!complete) r.detail = body.slice(-120);
      } else {
        r.outcome = 'status';
        r.detail = body.slice(0, 200);
      }
    } catch (err) {
      r.outcome = ac.signal.aborted ? 'timeout' : 'conn-error';
      r.detail = String(err?.cause?.code ?? err?.cause?.message ?? err?.message ?? err);
    } finally {
      clearTimeout(deadline);
      r.t1 = now();
    }
  }
  const clients = Array.from({ length: opts.clients }, async () => {
    while (!stopClients) {
      await oneRequest();
      await new Promise((res) => setTimeout(res, Math.floor(clientRng() * 100)));
    }
  });

  // ---- wait for the first ready, then the faults ----
  const waitUntil = async (pred, ms) => {
    const end = Date.now() + ms;
    while (Date.now() < end) {
      if (pred()) return true;
      await new Promise((res) => setTimeout(res, 20));
    }
    return pred();
  };
  const becameReady = await waitUntil(() => firstReadyAt !== null || exitInfo !== null, 30_000);
  const injected = [];
  let quietChecks = 0;
  let checkerDone = Promise.resolve();
  let injectFn = null;
  let keysState = 'valid';
  const checkRuns = [];
  if (!becameReady || firstReadyAt === null) {
    violate(`not ready within 30 s (exit: ${JSON.stringify(exitInfo)})`);
  } else {
    const base = Date.now();
    const apiGen = () => {
      const list = starts();
      const i = list.length - 1;
      return i >= 0 && alive(list[i].pid) ? { gen: i, pid: list[i].pid, up: readyPids.has(list[i].pid) } : null;
    };
    // `llmserve check` every few seconds, in parallel; after the round, the runs at quiet moments must agree.
    const checker = (async () => {
      while (sigtermAt === null && exitInfo === null) {
        await new Promise((res) => setTimeout(res, 2500));
        if (sigtermAt !== null || exitInfo !== null) break;
        const from = now();
        const r = await runCheck(env, probeDir, config);
        checkRuns.push({ from, to: now(), code: r.code, out: r.out.trim().split('\n').slice(-4).join(' | ') });
      }
    })();
    checkerDone = checker;
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
        case 'saturate':
          // Restarted only when no response flows for a while (a proxy restart in between, say): allowed, not required.
          if (g && signal(g.pid, 'SIGUSR2')) Object.assign(rec, { gen: g.gen, target: g.pid, expect: 'maybe', effectMs: 6000 });
          break;
        case 'stop-api':
          if (g) {
            const startTick = procStat(g.pid)?.start;
            if (signal(g.pid, 'SIGSTOP')) {
              const long = f.stopMs > 5000;
              Object.assign(rec, { gen: g.gen, target: g.pid, expect: long ? (g.up ? 'required' : 'maybe') : 'none', effectMs: f.stopMs + (long ? 4000 : 1500) });
              setTimeout(() => {
                if (procStat(g.pid)?.start === startTick) signal(g.pid, 'SIGCONT');
              }, f.stopMs);
            }
          }
          break;
        case 'kill-proxy-worker': {
          const procs = marked(marker);
          const primary = procs.find((p) => / proxy$/.test(p.cmdline) && p.ppid === child.pid);
          const workers = primary ? procs.filter((p) => p.ppid === primary.pid && / proxy$/.test(p.cmdline)) : [];
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
    for (const f of plan.faults) {
      while (Date.now() - base < f.at) await new Promise((res) => setTimeout(res, 20));
      if (exitInfo !== null) break;
      inject(f);
    }
    while (Date.now() - base < plan.sigtermAt && exitInfo === null) await new Promise((res) => setTimeout(res, 20));
  }

  // ---- SIGTERM and the exit ----
  sigtermAt = now();
  if (exitInfo !== null) violate(`llmserve exited by itself before SIGTERM: ${JSON.stringify(exitInfo)}`);
  else signal(child.pid, 'SIGTERM');
  if (plan.drainFault && injectFn && exitInfo === null) {
    // A fault during the drain (a proxy worker dying, vLLM dying or hanging, a keys reload).
    setTimeout(() => {
      if (exitInfo === null) injectFn({ ...plan.drainFault, at: now() });
    }, plan.drainFault.delay);
  }
  const limitMs = (DRAIN_TIMEOUT + STOP_TIMEOUT) * 1000 + EXIT_MARGIN_MS;
  const exit = await Promise.race([exited, new Promise((res) => setTimeout(() => res(null), limitMs))]);
  if (exit === null) {
    violate(`llmserve did not exit within ${limitMs} ms of SIGTERM`);
    signal(child.pid, 'SIGKILL');
  } else if (exit.code !== 0) violate(`llmserve exited ${exit.code ?? exit.signal} after SIGTERM (want 0)`);
  const final = await exited;
  await checkerDone;
  stopClients = true;
  await Promise.all(clients);
  clearInterval(sampler);
  await new Promise((res) => setTimeout(res, 300));
  const left = marked(marker);
  if (left.length > 0) violate(`left behind: ${left.map((p) => `${p.pid} ${p.cmdline}`).join('; ')}`);
  for (const p of left) signal(p.pid, 'SIGKILL');
  for (const f of ['not-ready', 'not-healthy']) if (!fs.existsSync(path.join(probeDir, f))) violate(`${f} missing after exit`);

  // ---- after the round: vLLM generations and restarts ----
  const list = starts();
  list.forEach((s, i) => {
    if (s.otherVllmPids?.length) violate(`vLLM start ${i} (pid ${s.pid}) began while processes of an earlier vLLM lived: ${s.otherVllmPids.join(', ')}`);
  });
  startTimes.forEach((t, i) => {
    if (sigtermAt !== null && t > sigtermAt + 2 * SAMPLE_MS) violate(`vLLM started again (start ${i}, pid ${list[i]?.pid}) after SIGTERM`, t);
  });
  for (const l of lines) if (sigtermAt !== null && l.t > sigtermAt && /restarting only the proxy|restarting vLLM in/.test(l.line)) violate(`a restart after SIGTERM: ${l.line}`, l.t);
  for (let g = 0; g < list.length; g++) {
    const hits = injected.filter((f) => f.gen === g && f.expect !== 'none');
    const restarted = g + 1 < list.length;
    if (restarted && hits.length === 0) violate(`vLLM start ${g} (pid ${list[g].pid}) was restarted though no fault that restarts hit it`);
    const due = hits.filter((f) => f.expect === 'required' && f.t + f.effectMs + 3000 < sigtermAt);
    if (!restarted && due.length > 0) violate(`vLLM start ${g} got ${due.map((f) => f.kind).join(', ')} at ${due.map((f) => (f.t / 1000).toFixed(2)).join(', ')} s but was never restarted`);
  }
  const proxyRestarts = lines.filter((l) => /the proxy exited .*restarting only the proxy/.test(l.line));
  const primariesHit = new Set(injected.filter((f) => f.kind === 'kill-proxy-worker' && f.target && f.t < sigtermAt - 1000).map((f) => f.primary));
  const primariesHitAll = new Set(injected.filter((f) => f.kind === 'kill-proxy-worker' && f.target).map((f) => f.primary));
  if (proxyRestarts.length < primariesHit.size || proxyRestarts.length > primariesHitAll.size) {
    violate(`${proxyRestarts.length} proxy restarts for ${primariesHitAll.size} proxies whose worker was killed`);
  }
  const proxyRestartFailed = lines.filter((l) => /proxy restart failed/.test(l.line));
  for (const l of proxyRestartFailed) violate(`a proxy restart failed: ${l.line}`, l.t);
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
  const counts = {};
  for (const r of requests) {
    const phase = r.t0 < (firstReadyAt ?? Infinity) ? 'starting' : sigtermAt !== null && r.t1 >= sigtermAt ? 'stopping' : 'serving';
    counts[phase] ??= {};
    counts[phase][r.outcome] = (counts[phase][r.outcome] ?? 0) + 1;
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
        else if (!r.notReadyAtAnswer) violate(`${what}: a draining 503 while not-ready was absent`, r.t0);
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
      // The proxy is down only while it restarts (a killed worker takes all its processes) and after the drain.
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
  fs.writeFileSync(path.join(dir, 'soak-round.json'), JSON.stringify({ summary, plan, injected, violations, requests, checkRuns }, null, 1));
  logFile.end();
  const keep = opts.keep || violations.length > 0;
  if (!keep) fs.rmSync(dir, { recursive: true, force: true });
  return { summary, violations, dir: keep ? dir : null };
}

function runCheck(env, probeDir, config) {
  return new Promise((resolve) => {
    execFile(process.execPath, [bin, 'check', '--probe-dir', probeDir, '--config', config, '--timeout', '5'], { env, timeout: 20_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, out: `${stdout}${stderr}` });
    });
  });
}

// ---- main ------------------------------------------------------------------------------------------------------
const roundSeed = (i) => (opts.seed * 1000 + i) >>> 0;
const deadline = Date.now() + opts.minutes * 60_000;
let failed = 0;
let i = opts.round ?? 0;
process.stdout.write(`soak: seed ${opts.seed}, ${opts.round !== null ? `round ${opts.round} only` : `${opts.minutes} min`}, rounds of ${opts.roundSeconds} s\n`);
for (;;) {
  const { summary, violations, dir } = await runRound(i, roundSeed(i));
  process.stdout.write(`round ${i}: ${violations.length === 0 ? 'ok' : `${violations.length} VIOLATION(S)`} ${JSON.stringify(summary)}\n`);
  for (const v of violations) process.stdout.write(`  ${v}\n`);
  if (dir) process.stdout.write(`  files: ${dir}   replay: node scripts/soak.mjs --seed ${opts.seed} --round ${i}\n`);
  if (violations.length > 0) failed++;
  i++;
  if (opts.round !== null || Date.now() >= deadline) break;
}
process.stdout.write(`soak: ${failed === 0 ? 'no invariant broke' : `${failed} round(s) broke invariants`}\n`);
process.exit(failed === 0 ? 0 : 1);
