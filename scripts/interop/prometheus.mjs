#!/usr/bin/env node
// `npm run interop:prometheus`: llmserve's /metrics as Prometheus itself reads it, instead of the tests' own parsing.
// `llmserve start` with two models whose vLLM is scripts/interop's uvicorn app (bin/vllm; its /metrics is
// prometheus_client's, mounted as vLLM mounts it, with a subset of vLLM's own families), a key with an rpm limit and
// `proxy.metrics_port`. After some traffic, both pages (the public port with a key, the metrics port without) go
// through `promtool check metrics` (Prometheus's text parser, then its lint), and a real Prometheus scrapes both every
// second: up, no scrape error, no sample dropped as a duplicate, every series of the page stored, each model's apart.
// Needs a build (`npm run build`), Python with uvicorn, fastapi and prometheus_client, and promtool and prometheus
// (Debian: apt-get install prometheus python3-prometheus-client python3-uvicorn python3-fastapi); without them it
// says so and exits 0. Exits 1 when a check fails.
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { KEY, root, stopChild, waitForPort } from '../../bench/targets.mjs';
import { freePort } from '../../test/helpers/free-port.mjs';
import { chatRequest, makeModel, sleep, waitUntil } from '../soak-lib.mjs';
import { launchStart } from './launch.mjs';
import { findPython } from './python.mjs';

const TEAM_KEY = 'sk-interop-team-a-0123456789abcdef';
const MODELS = ['alpha', 'beta'];

let failed = 0;
const report = (ok, what, detail) => {
  if (!ok) failed++;
  console.log(`${ok ? 'PASS' : 'FAIL'}  ${what}: ${detail}`);
};

if (!fs.existsSync(path.join(root, 'dist/cli.js'))) {
  console.error('interop: no build in dist/: run `npm run build` first');
  process.exit(2);
}
const python = findPython(['uvicorn', 'fastapi', 'prometheus_client']);
const has = (cmd) => spawnSync(cmd, ['--version'], { stdio: 'ignore' }).status === 0;
if (python === null || !has('promtool') || !has('prometheus')) {
  console.log('interop: skipped, needs python3 with uvicorn, fastapi and prometheus_client, and promtool and prometheus (Debian: apt-get install prometheus python3-prometheus-client python3-uvicorn python3-fastapi)');
  process.exit(0);
}

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'llmserve-interop-prom-'));
// In the environment of every process this run starts (llmserve, the proxy, uvicorn): what is left is found by it.
const marker = `llmserve-interop-prom-${process.pid}`;

/** A chat request's status, once its answer has ended (`key`: the bearer): the soaks' client. */
const chat = async (port, model, { key = KEY, stream = false } = {}) => (await chatRequest(port, model, stream, Date.now, { key })).status;

/** The sample names and the `vllm:` samples of a text page. */
function samplesOf(page) {
  const lines = page.split('\n').filter((l) => l !== '' && !l.startsWith('#'));
  return { names: new Set(lines.map((l) => l.slice(0, l.search(/[{ ]/)))), vllm: lines.filter((l) => l.startsWith('vllm:')) };
}

/**
 * `promtool check metrics` on `page`: its parse errors and lint problems, less the one lint that vLLM's own names
 * always draw (a `:` in a name, which Prometheus keeps for recording rules but accepts).
 */
function promtoolProblems(page) {
  const r = spawnSync('promtool', ['check', 'metrics'], { input: page, encoding: 'utf8' });
  const problems = `${r.stdout}${r.stderr}`.split('\n').filter((l) => l.trim() !== '' && !/^vllm:\S+ metric names should not contain ':'$/.test(l.trim()));
  // 0: clean; 3: lint problems only (the `:` ones, filtered above); anything else: it could not parse the page.
  return r.status === 0 || r.status === 3 ? problems : [`exit ${r.status}`, ...problems];
}

/** A PromQL query against the Prometheus on `port`: its result vector. */
async function query(port, promql) {
  const res = await fetch(`http://127.0.0.1:${port}/api/v1/query?query=${encodeURIComponent(promql)}`);
  const body = await res.json();
  if (body.status !== 'success') throw new Error(`${promql}: ${body.error}`);
  return body.data.result;
}

/** One figure of Prometheus's own /metrics (an unlabelled counter): null when it is not there. */
async function ownFigure(port, name) {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  const m = new RegExp(`^${name} (\\S+)$`, 'm').exec(text);
  return m === null ? null : Number(m[1]);
}

const dir = fs.mkdtempSync(path.join(work, 'start-'));
const [metricsPort, promPort] = [await freePort(), await freePort()];
const backendPorts = [await freePort(), await freePort()];
const config = path.join(dir, 'llmserve.yaml');
fs.writeFileSync(
  config,
  `models:
${MODELS.map((m, i) => `  - model: ${makeModel(dir, m)}\n    gpus: 1\n    port: ${backendPorts[i]}`).join('\n')}
proxy:
  master_key: os.environ/LLMSERVE_MASTER_KEY
  metrics_port: ${metricsPort}
  keys:
    - name: team-a
      key: os.environ/TEAM_KEY
      rpm: 2
`,
);
const run = await launchStart({ dir, python, marker, args: ['--config', config], env: { TEAM_KEY } });
const { port } = run;
let prometheus = null;
try {
  console.log(`interop: llmserve's /metrics read by ${spawnSync('prometheus', ['--version'], { encoding: 'utf8' }).stdout.split('\n')[0]}, vLLM's page from prometheus_client (${python})`);
  if (!(await run.ready(60_000))) throw new Error(`not ready within 60 s:\n${run.log()}`);

  // Traffic that fills every family: both models, a metered key (tokens) up to its rpm limit, a bad key, a model
  // that is not served.
  const statuses = [
    await chat(port, 'alpha'),
    await chat(port, 'beta'),
    await chat(port, 'beta', { key: TEAM_KEY }),
    await chat(port, 'beta', { key: TEAM_KEY, stream: true }),
    await chat(port, 'beta', { key: TEAM_KEY }),
    await chat(port, 'alpha', { key: 'sk-not-a-key-0123456789' }),
    await chat(port, 'gamma'),
  ];
  const expected = [200, 200, 200, 200, 429, 401, 404];
  report(statuses.join() === expected.join(), 'traffic', `answers ${statuses.join(', ')} (expected ${expected.join(', ')})`);

  const pages = {
    public: await (await fetch(`http://127.0.0.1:${port}/metrics`, { headers: { authorization: `Bearer ${KEY}` } })).text(),
    metrics_port: await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text(),
  };
  for (const [job, page] of Object.entries(pages)) {
    const problems = promtoolProblems(page);
    report(problems.length === 0, `${job}: promtool check metrics`, problems.length === 0 ? `${page.split('\n').length} lines, no parse error, no lint but vLLM's ':' names` : problems.slice(0, 10).join(' | '));
    // Every vLLM series names its model: vLLM's own label, or the one llmserve adds to its info gauges.
    const { vllm } = samplesOf(page);
    const unnamed = vllm.filter((l) => !MODELS.some((m) => l.includes(`model_name="${m}"`)));
    const info = vllm.filter((l) => l.startsWith('vllm:cache_config_info'));
    report(vllm.length > 0 && unnamed.length === 0 && info.length === 2, `${job}: each vLLM series names its model`, `${vllm.length} vllm: samples, ${unnamed.length} without a model_name${unnamed.length ? ` (${unnamed[0]})` : ''}, vllm:cache_config_info ${info.length} series`);
  }

  // A real Prometheus scrapes both listeners every second.
  const promDir = fs.mkdtempSync(path.join(work, 'prometheus-'));
  fs.writeFileSync(
    path.join(promDir, 'prometheus.yml'),
    `global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: public
    authorization:
      credentials: ${KEY}
    static_configs: [{ targets: ['127.0.0.1:${port}'] }]
  - job_name: metrics_port
    static_configs: [{ targets: ['127.0.0.1:${metricsPort}'] }]
`,
  );
  const promLog = fs.openSync(path.join(promDir, 'prometheus.log'), 'a');
  prometheus = spawn('prometheus', [`--config.file=${path.join(promDir, 'prometheus.yml')}`, `--storage.tsdb.path=${path.join(promDir, 'data')}`, `--web.listen-address=127.0.0.1:${promPort}`], { stdio: ['ignore', promLog, promLog] });
  fs.closeSync(promLog);
  await waitForPort(promPort, 30_000);
  // Three scrapes of each: time to store, and to drop anything it would drop.
  let targets = [];
  const scraped = async () => {
    targets = (await (await fetch(`http://127.0.0.1:${promPort}/api/v1/targets`)).json()).data.activeTargets;
    const counts = await query(promPort, 'count_over_time(up[1m])');
    return targets.length === 2 && counts.length === 2 && counts.every((c) => Number(c.value[1]) >= 3);
  };
  let enough = false;
  for (const end = Date.now() + 30_000; !enough && Date.now() < end; await sleep(250)) enough = await scraped().catch(() => false);
  for (const t of targets) report(t.health === 'up' && t.lastError === '', `prometheus: scrapes ${t.labels.job}`, `${t.health}${t.lastError ? `, ${t.lastError}` : ''}, every 1 s`);
  if (!enough) report(false, 'prometheus: three scrapes of each listener', 'not within 30 s');

  const dropped = {};
  for (const name of ['prometheus_target_scrapes_sample_duplicate_timestamp_total', 'prometheus_target_scrapes_sample_out_of_order_total', 'prometheus_target_scrapes_sample_out_of_bounds_total']) dropped[name] = await ownFigure(promPort, name);
  report(Object.values(dropped).every((v) => v === 0), 'prometheus: no sample dropped', Object.entries(dropped).map(([k, v]) => `${k.replace('prometheus_target_scrapes_sample_', '')} ${v ?? 'missing'}`).join(', '));

  for (const job of Object.keys(pages)) {
    // Every name the page has (llmserve's and vLLM's, histogram series included) is stored for the job.
    const stored = new Set((await query(promPort, `group by (__name__) ({job="${job}"})`)).map((r) => r.metric.__name__));
    const missing = [...samplesOf(pages[job]).names].filter((n) => !stored.has(n));
    report(missing.length === 0, `prometheus: ${job}'s series stored`, `${stored.size} names stored${missing.length ? `, missing: ${missing.join(', ')}` : ', every one of the page'}`);
  }
  const tokens = Object.fromEntries((await query(promPort, 'vllm:prompt_tokens_total{job="public"}')).map((r) => [r.metric.model_name, Number(r.value[1])]));
  const info = (await query(promPort, 'vllm:cache_config_info{job="public"}')).map((r) => r.metric.model_name).sort();
  const limited = await query(promPort, 'llmserve_requests_total{job="public",key="team-a",status="429"}');
  // Prompt tokens as vLLM counts them: 3 per request the app answered (alpha 1, beta 3).
  const ok = tokens.alpha === 3 && tokens.beta === 9 && info.join() === MODELS.join() && limited.length === 1 && Number(limited[0].value[1]) === 1;
  report(ok, 'prometheus: queries', `vllm:prompt_tokens_total alpha ${tokens.alpha}, beta ${tokens.beta}; vllm:cache_config_info for ${info.join(' and ') || 'no model'}; team-a's 429s ${limited[0]?.value[1] ?? 'none'}`);

  run.child.kill('SIGTERM');
  const code = await Promise.race([run.exited, sleep(60_000).then(() => 'still running after 60 s')]);
  const left = (await waitUntil(() => run.left().length === 0, 5000)) ? [] : run.left();
  report(code === 0 && left.length === 0, 'SIGTERM', `exit ${code}, ${left.length === 0 ? 'nothing left running' : `left running: pids ${left.join(', ')}`}`);
} catch (err) {
  report(false, 'run', err.message);
} finally {
  if (prometheus !== null) await stopChild(prometheus);
  run.kill();
  fs.rmSync(work, { recursive: true, force: true });
}
process.exit(failed === 0 ? 0 : 1);
