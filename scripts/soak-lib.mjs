// The pieces that the fault soaks scripts/soak.mjs (one model) and scripts/soak-multi.mjs (two models, multi-node)
// share, so that a fix to one (how llmserve is launched, how a request is judged, what is reaped) reaches both: their
// options, seeded randomness, /proc, llmserve launched with its output timed, the client load, the fakes'
// environment, and the checks at a round's end. Run by hand (not part of `npm test`), like the soaks themselves.
import { spawn, execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

// The repository root, for the fakes under test/fixtures/bin and the build check.
export const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
// The llmserve entry point each round starts (`npm run build` first).
export const bin = path.join(root, 'bin', 'llmserve.js');

// ---- settings of every round -------------------------------------------------------------------------------------
// The master key the clients and `llmserve check` use.
export const MASTER = 'sk-soak-master-0123456789abcdef0123';
// --health-interval (s): short, so that faults are noticed within a round.
export const HEALTH_INTERVAL = 0.3;
// --stop-timeout (s).
export const STOP_TIMEOUT = 2;
// drain.timeout (s).
export const DRAIN_TIMEOUT = 3;
// --startup-timeout (s): a restart whose vLLM hangs while loading fails after this long (then restarts again).
export const STARTUP_TIMEOUT = 10;
// How much longer than its drain and stop timeouts llmserve may take to exit (ms).
export const EXIT_MARGIN_MS = 6000;
// A client request with no answer within this long counts as a timeout (ms).
export const CLIENT_DEADLINE_MS = 20_000;
// How often the samplers look at the probe files (ms).
export const SAMPLE_MS = 25;

// ---- options -----------------------------------------------------------------------------------------------------
// A soak's usage(err): `text` on stdout and exit 0, or with `err` (prefixed with `name`) on stderr and exit 2.
export function usageOf(name, text) {
  return (err) => {
    if (err) {
      process.stderr.write(`${name}: ${err}\n${text}\n`);
      process.exit(2);
    }
    process.stdout.write(`${text}\n`);
    process.exit(0);
  };
}

// Parses the options both soaks take into `opts` (defaults already in it), plus `extra` (option -> key, string value).
export function parseOptions(argv, opts, usage, extra = {}) {
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const val = () => {
      const v = argv[++i];
      if (v === undefined) usage(`${a} needs a value`);
      return v;
    };
    if (Object.hasOwn(extra, a)) opts[extra[a]] = val();
    else if (a === '--minutes') opts.minutes = Number(val());
    else if (a === '--seed') opts.seed = Number(val());
    else if (a === '--round') opts.round = Number(val());
    else if (a === '--round-seconds') opts.roundSeconds = Number(val());
    else if (a === '--clients') opts.clients = Number(val());
    else if (a === '--keep') opts.keep = true;
    else if (a === '--verbose') opts.verbose = true;
    else if (a === '-h' || a === '--help') usage();
    else usage(`unknown option ${a}`);
  }
  return opts;
}

// Refuses to run (usage error) before `npm run build`.
export function requireBuild(usage) {
  if (!fs.existsSync(path.join(root, 'dist'))) usage('run `npm run build` first');
}

// ---- seeded randomness and time ----------------------------------------------------------------------------------
// A seeded generator of numbers in [0, 1): a round replays from its seed.
export function mulberry32(a) {
  return () => {
    a |= 0;
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
// A number drawn from [lo, hi).
export const between = (rng, lo, hi) => lo + rng() * (hi - lo);
// An element drawn from `list`.
export const pick = (rng, list) => list[Math.floor(rng() * list.length)];
// Resolves after `ms`.
export const sleep = (ms) => new Promise((res) => setTimeout(res, ms));
// Polls `pred` every 20 ms for up to `ms`: whether it became true.
export async function waitUntil(pred, ms) {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (pred()) return true;
    await sleep(20);
  }
  return pred();
}

// ---- /proc -------------------------------------------------------------------------------------------------------
// A process's state, parent, process group and start tick from /proc/PID/stat (undefined once it is gone).
export function procStat(pid) {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return { state: f[0], ppid: Number(f[1]), pgid: Number(f[2]), start: f[19] };
  } catch {
    return undefined;
  }
}
// Whether `pid` runs (neither gone nor a zombie).
export const alive = (pid) => {
  const s = procStat(pid);
  return s !== undefined && s.state !== 'Z' && s.state !== 'X';
};
// Live processes carrying `marker` in their environment (every process llmserve and the fakes start).
export function marked(marker) {
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
// Sends `sig` to `pid`: whether it could.
export function signal(pid, sig) {
  try {
    process.kill(pid, sig);
    return true;
  } catch {
    return false;
  }
}

// ---- files and the fakes -----------------------------------------------------------------------------------------
// A model directory `name` under `dir` that the fake vLLM and llmserve's model inspection accept: its path.
export function makeModel(dir, name) {
  const model = path.join(dir, name);
  fs.mkdirSync(model);
  fs.writeFileSync(path.join(model, 'config.json'), JSON.stringify({ architectures: ['Qwen2ForCausalLM'], num_attention_heads: 12, max_position_embeddings: 32768 }));
  fs.writeFileSync(path.join(model, 'model.safetensors'), Buffer.alloc(64));
  return model;
}
// The vLLM starts the fake vLLM recorded in `argvFile` (one JSON line each: pid, argv, env, ...), oldest first.
export function readStarts(argvFile) {
  try {
    return fs.readFileSync(argvFile, 'utf8').trim().split('\n').filter(Boolean).map((l) => JSON.parse(l));
  } catch {
    return [];
  }
}
// Follows `argvFile`'s vLLM starts: `poll(t)` re-reads it only once it changed (then `onChange(starts, t)`): all starts.
export function startsPoller(argvFile, onChange) {
  let seen = 0;
  let starts = [];
  return (t) => {
    let size = 0;
    try { size = fs.statSync(argvFile).size; } catch { /* none yet */ }
    if (size !== seen) {
      seen = size;
      starts = readStarts(argvFile);
      onChange(starts, t);
    }
    return starts;
  };
}
// Which of the probe files are in `probeDir` now: nr (not-ready), nh (not-healthy).
export function probeState(probeDir) {
  return { nr: fs.existsSync(path.join(probeDir, 'not-ready')), nh: fs.existsSync(path.join(probeDir, 'not-healthy')) };
}
// The environment of a round's llmserve: the fakes first on PATH, `marker` on every process, a fast fake vLLM.
export function baseEnv(marker, dir, roundSeconds) {
  return {
    ...process.env,
    PATH: `${path.join(root, 'test', 'fixtures', 'bin')}${path.delimiter}${process.env.PATH ?? ''}`,
    NO_COLOR: '1',
    LLMSERVE_TEST_MARKER: marker,
    LLMSERVE_MASTER_KEY: MASTER,
    LLMSERVE_USAGE_DIR: dir,
    FAKE_VLLM_LOAD_MS: '300',
    FAKE_VLLM_STREAM_CHUNKS: '10',
    FAKE_VLLM_STREAM_INTERVAL_MS: '50',
    FAKE_VLLM_MAX_LIFETIME_MS: String((roundSeconds + 120) * 1000),
  };
}
// Where a round's violations go: `violate(what, at)` records one (timed), printing it at once under --verbose.
export function violationLog(now, verbose) {
  const violations = [];
  const violate = (what, at = now()) => {
    violations.push(`[${(at / 1000).toFixed(2)} s] ${what}`);
    if (verbose) process.stdout.write(`  VIOLATION ${violations.at(-1)}\n`);
  };
  return { violations, violate };
}
// A sampler's `persist(key, cond, t, ms, what)`: a violation (once per episode) when `cond` holds for over `ms`.
export function persistence(violate) {
  const since = {};
  return (key, cond, t, ms, what) => {
    if (!cond) {
      since[key] = null;
      return;
    }
    since[key] ??= t;
    if (since[key] !== Infinity && t - since[key] > ms) {
      violate(`${what} for ${t - since[key]} ms`, since[key]);
      since[key] = Infinity;
    }
  };
}

// ---- llmserve ----------------------------------------------------------------------------------------------------
// `llmserve ARGS...` with its output lines timed (relative to `t0`), logged to `logPath`, and the API servers' ready.
export function launch(args, env, t0, logPath, label) {
  const child = spawn(process.execPath, [bin, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  const log = fs.createWriteStream(logPath, { flags: 'a' });
  const run = { child, lines: [], readyPids: new Map(), exitInfo: null, label };
  for (const stream of [child.stdout, child.stderr]) {
    let partial = '';
    stream.on('data', (chunk) => {
      const parts = (partial + chunk.toString()).split('\n');
      partial = parts.pop() ?? '';
      for (const line of parts) {
        const t = Date.now() - t0;
        run.lines.push({ t, line });
        log.write(`${(t / 1000).toFixed(3)} ${line}\n`);
        const m = /\(APIServer pid=(\d+)\) INFO:\s+Application startup complete/.exec(line);
        if (m) run.readyPids.set(Number(m[1]), t);
      }
    });
  }
  // The log ends once the output has (not just the process): lines read after the exit are still logged.
  child.on('close', () => log.end());
  run.exited = new Promise((resolve) => child.on('exit', (code, sig) => {
    run.exitInfo = { code, signal: sig, at: Date.now() - t0 };
    resolve(run.exitInfo);
  }));
  run.said = (re) => run.lines.some((l) => re.test(l.line));
  return run;
}
// `run`'s exit, or null if it has not exited within `ms`.
export const exitWithin = (run, ms) => Promise.race([run.exited, sleep(ms).then(() => null)]);
// Ends a one-node round: SIGTERM (a violation if it had exited already), then exit 0 within the drain and stop timeouts.
export async function stopRun(run, violate, afterSigterm = () => {}) {
  if (run.exitInfo !== null) violate(`llmserve exited by itself before SIGTERM: ${JSON.stringify(run.exitInfo)}`);
  else signal(run.child.pid, 'SIGTERM');
  afterSigterm();
  const limitMs = (DRAIN_TIMEOUT + STOP_TIMEOUT) * 1000 + EXIT_MARGIN_MS;
  const exit = await exitWithin(run, limitMs);
  if (exit === null) {
    violate(`llmserve did not exit within ${limitMs} ms of SIGTERM`);
    signal(run.child.pid, 'SIGKILL');
  } else if (exit.code !== 0) violate(`llmserve exited ${exit.code ?? exit.signal} after SIGTERM (want 0)`);
  return run.exited;
}
// `llmserve check` against `probeDir`: its exit code and output.
export function runCheck(env, probeDir, config) {
  return new Promise((resolve) => {
    const args = [bin, 'check', '--probe-dir', probeDir, '--timeout', '5', ...(config ? ['--config', config] : [])];
    execFile(process.execPath, args, { env, timeout: 20_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, out: `${stdout}${stderr}` });
    });
  });
}
// `llmserve check` every 2.5 s until `stopped()`, each run (its output's last `lastLines` lines) timed into `runs`.
export async function checkLoop(stopped, now, env, probeDir, config, runs, lastLines = Infinity) {
  while (!stopped()) {
    await sleep(2500);
    if (stopped()) break;
    const from = now();
    const r = await runCheck(env, probeDir, config);
    runs.push({ from, to: now(), code: r.code, out: r.out.trim().split('\n').slice(-lastLines).join(' | ') });
  }
}
// Injects each fault of a plan at its time (ms from now) while `stopped()` is false, then waits until `endAt`.
export async function playFaults(faults, endAt, stopped, inject) {
  const base = Date.now();
  for (const f of faults) {
    while (Date.now() - base < f.at) await sleep(20);
    if (stopped()) break;
    inject(f);
  }
  while (Date.now() - base < endAt && !stopped()) await sleep(20);
}

// ---- the client load ---------------------------------------------------------------------------------------------
// A chat completion (streamed or not) for `model` with `key`: what came back, timed; `tag` names it in the record.
export async function chatRequest(port, model, stream, now, { key = MASTER, tag = { model }, onStart, onAnswer } = {}) {
  const r = { t0: now(), t1: null, ...tag, stream, status: null, retryAfter: null, outcome: null, detail: '' };
  onStart?.(r);
  const ac = new AbortController();
  const deadline = setTimeout(() => ac.abort(), CLIENT_DEADLINE_MS);
  try {
    const res = await fetch(`http://127.0.0.1:${port}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` },
      body: JSON.stringify({ model, stream, messages: [{ role: 'user', content: 'soak' }] }),
      signal: ac.signal,
    });
    r.status = res.status;
    onAnswer?.(r);
    r.retryAfter = res.headers.get('retry-after');
    let body = '';
    try {
      body = await res.text();
    } catch (err) {
      r.outcome = ac.signal.aborted ? 'timeout' : 'cut';
      r.detail = String(err?.cause?.code ?? err?.message ?? err);
      return r;
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
    r.t1 ??= now();
  }
  return r;
}
// `n` clients, each running `once()` (false: nothing sent, no pause) then pausing up to `maxPauseMs`, until `stopped()`.
export function clientLoops(n, rng, maxPauseMs, stopped, once) {
  return Array.from({ length: n }, async () => {
    while (!stopped()) {
      if ((await once()) === false) continue;
      await sleep(Math.floor(rng() * maxPauseMs));
    }
  });
}

// ---- at a round's end --------------------------------------------------------------------------------------------
// A violation `what: pid cmdline; ...` for the processes still carrying `marker`, then each SIGKILLed.
export function reapLeft(marker, violate, what = 'left behind') {
  const left = marked(marker);
  if (left.length > 0) violate(`${what}: ${left.map((p) => `${p.pid} ${p.cmdline}`).join('; ')}`);
  for (const p of left) signal(p.pid, 'SIGKILL');
}
// After an exit both probe files must be in `probeDir`: a violation (`message(file)`) for each that is not.
export function probeFilesAfterExit(probeDir, violate, message = (f) => `${f} missing after exit`) {
  for (const f of ['not-ready', 'not-healthy']) if (!fs.existsSync(path.join(probeDir, f))) violate(message(f));
}
// Each vLLM start in `gens` (one model's, oldest first) restarted only after a fault hit it, and always after a due one.
export function checkRestarts(gens, injected, sigtermAt, violate, name, noFault) {
  for (let g = 0; g < gens.length; g++) {
    const hits = injected.filter((f) => f.gen === g && f.expect !== 'none');
    const restarted = g + 1 < gens.length;
    if (restarted && hits.length === 0) violate(`${name} start ${g} (pid ${gens[g].pid}) was restarted though ${noFault}`);
    const due = hits.filter((f) => f.expect === 'required' && f.t + f.effectMs + 3000 < sigtermAt);
    if (!restarted && due.length > 0) violate(`${name} start ${g} got ${due.map((f) => f.kind).join(', ')} at ${due.map((f) => (f.t / 1000).toFixed(2)).join(', ')} s but was never restarted`);
  }
}
// Counts a request's `outcome` under its `phase` in `counts` (the round summary's counts).
export function tally(counts, phase, outcome) {
  counts[phase] ??= {};
  counts[phase][outcome] = (counts[phase][outcome] ?? 0) + 1;
}
// Writes the round's record to DIR/soak-round.json; keeps DIR (with --keep, or on a violation) or removes it.
export function endRound(dir, record, keepAlways) {
  fs.writeFileSync(path.join(dir, 'soak-round.json'), JSON.stringify(record, null, 1));
  const keep = keepAlways || record.violations.length > 0;
  if (!keep) fs.rmSync(dir, { recursive: true, force: true });
  return { summary: record.summary, violations: record.violations, dir: keep ? dir : null };
}

// ---- main --------------------------------------------------------------------------------------------------------
// Runs `round(i, seed)` (only --round N, or until --minutes are up), prints each, exits 0 if none broke an invariant.
export async function runRounds(name, opts, heading, replay, round) {
  const roundSeed = (i) => (opts.seed * 1000 + i) >>> 0;
  const deadline = Date.now() + opts.minutes * 60_000;
  let failed = 0;
  let i = opts.round ?? 0;
  process.stdout.write(`${name}: ${heading}seed ${opts.seed}, ${opts.round !== null ? `round ${opts.round} only` : `${opts.minutes} min`}, rounds of ${opts.roundSeconds} s\n`);
  for (;;) {
    const { summary, violations, dir } = await round(i, roundSeed(i));
    process.stdout.write(`round ${i}: ${violations.length === 0 ? 'ok' : `${violations.length} VIOLATION(S)`} ${JSON.stringify(summary)}\n`);
    for (const v of violations) process.stdout.write(`  ${v}\n`);
    if (dir) process.stdout.write(`  files: ${dir}   replay: ${replay} --seed ${opts.seed} --round ${i}\n`);
    if (violations.length > 0) failed++;
    i++;
    if (opts.round !== null || Date.now() >= deadline) break;
  }
  process.stdout.write(`${name}: ${failed === 0 ? 'no invariant broke' : `${failed} round(s) broke invariants`}\n`);
  process.exit(failed === 0 ? 0 : 1);
}

/** The proxy workers of the llmserve run `supervisorPid` (children of its proxy child), and that child; [] if none. */
export function proxyWorkers(marker, supervisorPid) {
  const procs = marked(marker);
  const primary = procs.find((p) => / proxy$/.test(p.cmdline) && p.ppid === supervisorPid);
  return { primary, workers: primary ? procs.filter((p) => p.ppid === primary.pid && / proxy$/.test(p.cmdline)) : [] };
}

/** Whether llmserve said it replaced the proxy worker a `kill-proxy-worker` fault killed. */
export const workerReplaced = (lines, fault) => lines.some((l) => l.t >= fault.t && l.line.includes(`proxy worker ${fault.target} exited (SIGKILL): starting another`));
