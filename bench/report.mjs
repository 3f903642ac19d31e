// Ratios, targets (issue 6) and the printed table.

// nginx's added per-event delay measured on this machine when the issue was filed: the reference when nginx is absent.
const NGINX_REFERENCE = { p50Ms: 1, p99Ms: 13 };

const round = (x, digits = 2) => (x === null || x === undefined || Number.isNaN(x) ? null : +x.toFixed(digits));

/** Adds `ratios` and `targets` (pass/fail) to the results. */
export function evaluate(r) {
  const sat = r.saturation;
  const lat = r.latency500;
  const s1 = r.streams1000;
  const added = (set, name, key) => (set[name] && set.direct ? round(set[name][key] - set.direct[key], 3) : null);
  r.ratios = {
    throughputVsDirect: round(sat.llmserve.rps / sat.direct.rps, 3),
    throughputVsHttpProxy: round(sat.llmserve.rps / sat['http-proxy'].rps, 3),
    httpProxyVsDirect: round(sat['http-proxy'].rps / sat.direct.rps, 3),
    nginxVsDirect: sat.nginx ? round(sat.nginx.rps / sat.direct.rps, 3) : null,
  };
  r.added = {
    latency500: Object.fromEntries(['llmserve', 'http-proxy', 'nginx'].filter((n) => lat[n]).map((n) => [n, { p50Ms: added(lat, n, 'p50Ms'), p99Ms: added(lat, n, 'p99Ms') }])),
    streams1000: Object.fromEntries(['llmserve', 'http-proxy', 'nginx'].filter((n) => s1[n]).map((n) => [n, { p50Ms: added(s1, n, 'eventDelayP50Ms'), p99Ms: added(s1, n, 'eventDelayP99Ms'), openingP99Ms: added(s1, n, 'openingP99Ms'), closingP99Ms: added(s1, n, 'closingP99Ms'), afterRampP50Ms: added(s1, n, 'afterRampP50Ms'), afterRampP99Ms: added(s1, n, 'afterRampP99Ms') }])),
    streams5000: Object.fromEntries(['llmserve', 'nginx'].filter((n) => r.streams5000[n]).map((n) => [n, { p50Ms: added(r.streams5000, n, 'eventDelayP50Ms'), p99Ms: added(r.streams5000, n, 'eventDelayP99Ms') }])),
  };
  const ref = r.added.streams1000.nginx ?? NGINX_REFERENCE;
  const refName = r.added.streams1000.nginx ? "nginx's added" : 'direct + nginx reference (nginx absent)';
  const own = r.added.streams1000.llmserve;
  const sv = r.supervisor;
  const t = (name, value, limit, pass) => ({ name, value, limit, pass: value === null ? false : pass });
  // A ratio or a latency means something only when every answer it counts was a 200, on both sides of it.
  const clean = (set, ...names) => names.every((n) => (set[n]?.errors ?? 0) === 0);
  r.targets = [
    t('throughput >= 0.25x direct', r.ratios.throughputVsDirect, '>= 0.25', r.ratios.throughputVsDirect >= 0.25 && clean(sat, 'llmserve', 'direct')),
    t('throughput >= 0.9x bare http-proxy', r.ratios.throughputVsHttpProxy, '>= 0.9', r.ratios.throughputVsHttpProxy >= 0.9 && clean(sat, 'llmserve', 'http-proxy')),
    t('added p50 at 500 req/s (ms)', r.added.latency500.llmserve.p50Ms, '<= 1', r.added.latency500.llmserve.p50Ms <= 1 && clean(lat, 'llmserve', 'direct')),
    t('1,000 streams: errors', s1.llmserve.errors, '0', s1.llmserve.errors === 0),
    t(`1,000 streams (all open): added p50 (ms) vs ${refName}`, own.p50Ms, `<= ${round(ref.p50Ms + 1)}`, own.p50Ms <= ref.p50Ms + 1),
    t(`1,000 streams (all open): added p99 (ms) vs ${refName}`, own.p99Ms, `<= ${round(ref.p99Ms + 5)}`, own.p99Ms <= ref.p99Ms + 5),
    t('5,000 streams: errors', r.streams5000.llmserve.errors, '0', r.streams5000.llmserve.errors === 0),
    t('5,000 streams: proxy peak RSS (MB)', r.streams5000.llmserve.peakRssMB, '<= 400', r.streams5000.llmserve.peakRssMB <= 400),
    t('client abort -> upstream close, max (ms)', r.abort.llmserve.maxMs, '<= 50', r.abort.llmserve.errors === 0 && r.abort.llmserve.maxMs <= 50),
    t('backend ready -> not-ready removed (ms)', round(sv.readyToNotReadyRemovedMs, 0), '<= 300', sv.readyToNotReadyRemovedMs <= 300),
    t('backend death -> not-healthy created (ms)', round(sv.deathToNotHealthyMs, 0), '<= 1000', sv.deathToNotHealthyMs <= 1000),
    t('SIGTERM -> all processes gone (ms)', round(sv.sigtermToAllGoneMs, 0), '<= 1000', sv.sigtermToAllGoneMs <= 1000),
    // Not a target: the same comparison over the window runs 1-68 used (from the planned ramp's end, so streams still
    // opening when the ramp overran, and streams ending), said beside the verdict so that the record stays comparable.
    ...(r.added.streams1000.nginx
      ? [{ name: '1,000 streams, runs 1-68 window (opening overrun and ending included): added p99 (ms) vs nginx\'s added', value: r.added.streams1000.llmserve.afterRampP99Ms, limit: `<= ${round(r.added.streams1000.nginx.afterRampP99Ms + 5)}`, pass: null, holds: r.added.streams1000.llmserve.afterRampP99Ms <= r.added.streams1000.nginx.afterRampP99Ms + 5 }]
      : []),
    t('RSS growth after warm-up (100k req + 10k aborted streams)', r.memory.growth, '<= 0.20', r.memory.growth <= 0.2 && r.memory.requestErrors === 0 && r.memory.streamErrors === 0),
  ];
}

/** Prints the figures and the targets. */
export function printTable(r) {
  const names = ['direct', 'llmserve', 'http-proxy', 'nginx'].filter((n) => r.saturation[n]);
  const f = (x, d = 2) => (x === null || x === undefined ? '-' : typeof x === 'number' ? x.toFixed(d) : String(x));
  const rows = [
    ['', ...names],
    ['req/s, 50 connections', ...names.map((n) => f(r.saturation[n].rps, 0))],
    ['  ratio to direct', ...names.map((n) => f(r.saturation[n].rps / r.saturation.direct.rps))],
    ['p50 / p99 ms at 500 req/s', ...names.map((n) => `${f(r.latency500[n].p50Ms)} / ${f(r.latency500[n].p99Ms)}`)],
    ['1k streams: event delay p50 / p99 ms', ...names.map((n) => `${f(r.streams1000[n]?.eventDelayP50Ms)} / ${f(r.streams1000[n]?.eventDelayP99Ms)}`)],
    ['  added p50 / p99 ms', ...names.map((n) => (n === 'direct' ? '-' : `${f(r.added.streams1000[n]?.p50Ms)} / ${f(r.added.streams1000[n]?.p99Ms)}`))],
    ['  p99 ms of each round', ...names.map((n) => (r.streams1000[n]?.roundsP99Ms ?? []).map((x) => f(x, 1)).join(' '))],
    ['  added p99 ms opening / ending', ...names.map((n) => (n === 'direct' ? '-' : `${f(r.added.streams1000[n]?.openingP99Ms)} / ${f(r.added.streams1000[n]?.closingP99Ms)}`))],
    ['  added p50 / p99 ms, runs 1-68 window', ...names.map((n) => (n === 'direct' ? '-' : `${f(r.added.streams1000[n]?.afterRampP50Ms)} / ${f(r.added.streams1000[n]?.afterRampP99Ms)}`))],
    ['  all open after / for ms', ...names.map((n) => `${(r.streams1000[n]?.allOpenAfterMs ?? []).join(' ')} / ${(r.streams1000[n]?.allOpenForMs ?? []).join(' ')}`)],
    ['  TTFB p50 / p99 ms', ...names.map((n) => `${f(r.streams1000[n]?.ttfbP50Ms)} / ${f(r.streams1000[n]?.ttfbP99Ms)}`)],
    ['  errors, peak RSS MB', ...names.map((n) => `${f(r.streams1000[n]?.errors, 0)}, ${f(r.streams1000[n]?.peakRssMB, 0)}`)],
    ['  proxy CPU us/event, machine busy', ...names.map((n) => (r.streams1000[n] ? `${f(r.streams1000[n].proxyCpuUsPerEvent, 1)}, ${f(r.streams1000[n].machineBusy * 100, 0)} %` : '-'))],
    ['5k streams: delay p50 / p99 ms', ...names.map((n) => (r.streams5000[n] ? `${f(r.streams5000[n].eventDelayP50Ms)} / ${f(r.streams5000[n].eventDelayP99Ms)}` : '-'))],
    ['  errors, peak RSS MB', ...names.map((n) => (r.streams5000[n] ? `${f(r.streams5000[n].errors, 0)}, ${f(r.streams5000[n].peakRssMB, 0)}` : '-'))],
    ['abort -> upstream close p50 / max ms', ...names.map((n) => (r.abort[n] ? `${f(r.abort[n].p50Ms)} / ${f(r.abort[n].maxMs)}` : '-'))],
  ];
  const widths = rows[0].map((_, i) => Math.max(...rows.map((row) => String(row[i]).length)));
  const line = (row) => row.map((c, i) => (i === 0 ? String(c).padEnd(widths[i]) : String(c).padStart(widths[i]))).join('  ');
  const out = [`llmserve bench (${r.mode}): ${r.machine.cpus} CPUs, ${r.machine.cpuModel}, Node ${r.node}, load average ${r.loadAverageAtStart.join(' ')}`, `proxy.workers ${r.proxyWorkers} (nginx worker_processes ${r.proxyWorkers})`, '', ...rows.map(line), ''];
  const sv = r.supervisor;
  out.push(`supervisor: not-ready removed ${f(sv.readyToNotReadyRemovedMs, 0)} ms after ready; not-healthy ${f(sv.deathToNotHealthyMs, 0)} ms after death; all gone ${f(sv.sigtermToAllGoneMs, 0)} ms after SIGTERM`);
  if (r.check) out.push(`llmserve check: ${f(r.check.checkMs, 1)} ms vs node -e 0 ${f(r.check.nodeMs, 1)} ms (+${f(r.check.addedMs, 1)} ms, ${f(r.check.ratio)}x; exit ${r.check.exitCode})`);
  const clean = r.check?.withoutExtraCaCerts;
  if (clean) out.push(`  without NODE_EXTRA_CA_CERTS: ${f(clean.checkMs, 1)} ms vs node -e 0 ${f(clean.nodeMs, 1)} ms (+${f(clean.addedMs, 1)} ms, ${f(clean.ratio)}x; exit ${clean.exitCode})`);
  if (r.keyCheck) out.push(`key check per request: ${Object.entries(r.keyCheck).map(([n, k]) => `${Number(n).toLocaleString('en-US')} key${n === '1' ? '' : 's'} ${f(k.matchUs)} us (wrong key ${f(k.wrongUs)})`).join(', ')}`);
  out.push(`memory: ${f(r.memory.rssAfterWarmupMB, 1)} MB after warm-up -> ${f(r.memory.rssAfterMB, 1)} MB (${f(r.memory.growth * 100, 1)} %)`, '');
  for (const t of r.targets) out.push(`${t.pass === null ? (t.holds ? 'info (would hold)' : 'info (would not hold)') : t.pass ? 'PASS' : 'FAIL'}  ${t.name}: ${f(t.value)} (${t.limit})`);
  for (const n of r.notes) out.push(`note: ${n}`);
  out.push(`(${r.seconds} s)`);
  process.stdout.write(out.join('\n') + '\n');
}
