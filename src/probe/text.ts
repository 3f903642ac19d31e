// The `probe` report for people: short sections, aligned columns, problems last with their fixes.
import { isGgufPath } from '../engine/model.js';
import { gpuSourceText } from '../gpu/detect.js';
import { headsText } from '../gpu/tensor-parallel.js';
import { formatBytes } from './report.js';
import type { PortFact, ProbeModelEntry, ProbeReport, WeightFit } from './types.js';

const LABEL = 16;

function row(label: string, value: string): string {
  return `${label.padEnd(LABEL)}${value}`;
}

function table(rows: string[][]): string[] {
  const widths: number[] = [];
  for (const r of rows) r.forEach((cell, i) => (widths[i] = Math.max(widths[i] ?? 0, cell.length)));
  return rows.map((r) => `  ${r.map((cell, i) => (i === r.length - 1 ? cell : cell.padEnd(widths[i] ?? 0))).join('  ')}`.trimEnd());
}

function portText(fact: PortFact): string {
  return `${fact.host}:${fact.port} ${fact.free ? 'free' : fact.error === 'EADDRINUSE' ? 'IN USE' : `NOT AVAILABLE (${fact.error ?? 'unknown'})`}`;
}

function gpuLines(r: ProbeReport): string[] {
  const cvd = r.cudaVisibleDevices !== null ? `CUDA_VISIBLE_DEVICES=${JSON.stringify(r.cudaVisibleDevices)}` : 'CUDA_VISIBLE_DEVICES unset: all are used';
  if (r.gpuSource === null) return [row('GPUs', `unknown (nvidia-smi failed: see ${r.problems.some((p) => p.startsWith('nvidia-smi')) ? 'problems' : 'warnings'})`)];
  const head = row('GPUs', `${r.gpus.length} used of ${r.allGpus.length} found (${r.gpuSource === 'none' ? gpuSourceText('none') : r.gpuSource}; ${cvd})`);
  if (r.allGpus.length === 0) return [head];
  const rows = [['used', 'index', 'name', 'memory', 'uuid']];
  for (const g of r.allGpus) rows.push([g.selected ? '*' : '', String(g.index), g.name, g.memoryMiB === null ? 'unknown' : formatBytes(g.memoryMiB * 1024 * 1024), g.uuid || '-']);
  return [head, ...table(rows)];
}

function modelLines(r: ProbeReport): string[] {
  const m = r.model;
  const lines = [row('Model', `${m.path}`), row('', modelWhere(m)), row('Served as', m.servedName)];
  if (m.weightBytes !== null) {
    const memory = m.gpuMemoryBytes === null ? 'GPU memory unknown' : `${formatBytes(m.gpuMemoryBytes)} of GPU memory (${((m.weightShare ?? 0) * 100).toFixed(1)}%)`;
    lines.push(row('Weights', `~${formatBytes(m.weightBytes)} against ${memory}`));
  }
  return lines;
}

/** A model's weights against its own GPUs, for the Models table: `~150.0 GiB of 159.3 GiB (94.2%)`. */
function weightsCell(m: WeightFit): string {
  if (m.weightBytes === null) return '-';
  if (m.gpuMemoryBytes === null) return `~${formatBytes(m.weightBytes)} (GPU memory unknown)`;
  return `~${formatBytes(m.weightBytes)} of ${formatBytes(m.gpuMemoryBytes)} (${((m.weightShare ?? 0) * 100).toFixed(1)}%)`;
}

function modelWhere(m: ProbeReport['model']): string {
  if (!m.isLocalPath) return 'hub id (downloaded by vLLM; not checked)';
  if (!m.exists) return 'local directory: DOES NOT EXIST';
  if (m.isFile) return isGgufPath(m.path) ? 'local GGUF file (one file holds the model)' : 'local file, NOT A DIRECTORY';
  return `local directory, ${m.hasConfigJson ? 'config.json present' : 'NO config.json'}${m.attentionHeads !== null ? `, ${headsText(m.attentionHeads, m.keyValueHeads)}` : ''}`;
}

function vllmLine(r: ProbeReport): string {
  const v = r.vllm;
  if (!v.found) return row('vLLM', v.raw ? `CANNOT RUN "${v.command}" (${v.raw})` : `NOT FOUND ("${v.command}" is not on PATH)`);
  if (v.version !== null) return row('vLLM', `found, version ${v.version} (${v.command} --version)`);
  return row('vLLM', `found, version unknown (${v.command} --version printed ${JSON.stringify(v.raw)}${v.exitCode !== 0 ? `, exit ${v.exitCode ?? 'signal'}` : ''})`);
}

/** A model's configured variables as its vLLM gets them, then the ones llmserve leaves out, named as such. */
function vllmEnvText(m: ProbeModelEntry): string {
  const given = Object.entries(m.vllm.env);
  const parts = given.length > 0 ? [given.map(([k, v]) => `${k}=${v}`).join(' ')] : [];
  if (m.vllm.envRemoved.length > 0) parts.push(`removed by llmserve, vLLM never gets them: ${m.vllm.envRemoved.join(', ')}`);
  return parts.join('; ');
}

/** With several models, each one's own vLLM env (one Configuration row would show only the first's). */
function modelEnvLines(r: ProbeReport): string[] {
  const rows = r.models.map((m) => [m.name, vllmEnvText(m)]).filter(([, text]) => text !== '');
  return rows.length === 0 ? [] : ['', 'vLLM env (each model\'s own)', ...table(rows)];
}

function configLines(r: ProbeReport): string[] {
  const c = r.config;
  const keys = c.proxy.keys.length === 0 ? 'none' : c.proxy.keys.map((k) => `${k.name} (${k.kind}) ${k.value}`).join(', ');
  const lines = [
    'Configuration',
    row('  file', c.file === null ? 'none (flags, environment and defaults)' : `${c.file} (${c.format ?? 'unknown'} format)`),
    row('  proxy', `${c.proxy.host}:${c.proxy.port}, auth ${c.proxy.auth ? 'on' : 'OFF'}, tls ${c.proxy.tls ? 'on' : 'off'}, ${c.proxy.workers} process${c.proxy.workers === 1 ? '' : 'es'}`),
    row('  keys', `${keys}${c.proxy.keysFile ? `; keys file ${c.proxy.keysFile}` : ''}`),
    row('  backend', `127.0.0.1:${c.vllm.port}, tensor-parallel ${c.vllm.tensorParallelSize}`),
    row('  timeouts', `startup ${c.timeouts.startup} s, stall ${c.timeouts.stall} s, stop ${c.timeouts.stop} s, health every ${c.probes.interval} s, engine stall ${c.timeouts.engineStall > 0 ? `${c.timeouts.engineStall} s` : 'off'}`),
    row('  on SIGTERM', `serve ${c.drain.delay} s more, drain up to ${c.drain.timeout} s, then stop (up to ${c.timeouts.stop} s)`),
    row('  restart', c.restart.policy === 'never' ? 'never' : `on-failure: gives up at ${c.restart.maxFailures} failures in ${c.restart.windowS} s, backoff ${c.restart.backoffInitialS}-${c.restart.backoffMaxS} s`),
  ];
  const env = r.models.length === 1 && r.models[0] ? vllmEnvText(r.models[0]) : '';
  if (env !== '') lines.push(row('  vLLM env', env));
  if (Object.keys(c.proxy.modelAliases).length > 0) lines.push(row('  aliases', Object.entries(c.proxy.modelAliases).map(([a, s]) => `${a} -> ${s}`).join(', ')));
  return lines;
}

function headline(r: ProbeReport): string {
  return r.ok ? 'llmserve probe: start would proceed' : `llmserve probe: ${r.problems.length} problem${r.problems.length === 1 ? '' : 's'} would stop start`;
}

/** Warnings, then problems with their fixes: the end of every report. */
function closingLines(r: ProbeReport): string[] {
  const lines: string[] = [];
  if (r.warnings.length > 0) lines.push('', 'Warnings', ...r.warnings.map((w) => `  - ${w}`));
  if (r.problemDetails.length > 0) {
    lines.push('', 'Problems');
    for (const p of r.problemDetails) lines.push(`  - ${p.message}`, ...p.details.map((d) => `    ${d}`));
  }
  return lines;
}

/** A --role worker's report: what its `start` does (join the head with `ray start`), without the head's vLLM plan. */
function workerLines(r: ProbeReport, dirText: string): string[] {
  const c = r.config;
  const lines = [
    headline(r),
    '',
    ...gpuLines(r),
    row('Probe dir', dirText),
    row('Ray', `worker joining ${r.cluster.head ?? '?'} (no model, no vLLM, no proxy on this node)`),
    '',
    'Configuration',
    row('  file', c.file === null ? 'none (flags, environment and defaults)' : `${c.file} (${c.format ?? 'unknown'} format)`),
    row('  timeouts', `startup ${c.timeouts.startup} s, stop ${c.timeouts.stop} s, health every ${c.probes.interval} s`),
    '',
    'Ray command',
    `  ${r.cluster.ray?.commandLine ?? ''}`,
  ];
  return [...lines, ...closingLines(r)];
}

/** The human report, one string per line; pure. */
export function probeLines(r: ProbeReport): string[] {
  const tp = r.tensorParallel ? `${r.tensorParallel.size} (${r.tensorParallel.reason})` : 'not chosen (see problems)';
  const dir = r.probes;
  const dirText = `${dir.dir} ${dir.writable ? (dir.exists ? 'writable' : 'can be created') : `NOT WRITABLE (${dir.error ?? 'unknown'})`}${dir.explicit ? '' : ' (default)'}`;
  if (r.cluster.role === 'worker') return workerLines(r, dirText);
  const lines = [
    headline(r),
    '',
    ...gpuLines(r),
    row('Tensor parallel', tp),
    ...modelLines(r),
    vllmLine(r),
    row('Public port', `${portText(r.proxy)}${r.proxy.tls ? ' (https)' : ''}`),
    row('Backend port', portText(r.backend)),
    row('Probe dir', dirText),
    '',
    ...configLines(r),
  ];
  if (r.cluster.role === 'head') {
    lines.push(row('Ray', `head of ${r.cluster.nodes} nodes (ray start --head; vLLM with --pipeline-parallel-size ${r.cluster.nodes})`));
    if (r.cluster.ray?.port) lines.push(row('Ray port', portText(r.cluster.ray.port)));
  }
  if (r.models.length > 1) {
    lines.push('', 'Models (GPU assignment)');
    const rows = [['name', 'gpus', 'tp', 'port', 'weights', 'CUDA_VISIBLE_DEVICES']];
    // A MIG instance has no index: its UUID stands for it.
    for (const m of r.models) rows.push([m.name, m.gpus === null ? 'UNASSIGNED' : m.gpus.map((index, i) => (index >= 0 ? String(index) : (m.gpuUuids?.[i] ?? '?'))).join(','), m.tensorParallelSize === null ? '-' : String(m.tensorParallelSize), portText(m.backend), weightsCell(m), m.cudaVisibleDevices ?? '-']);
    lines.push(...table(rows), ...modelEnvLines(r), '', 'vLLM commands', ...r.models.map((m) => `  ${m.vllm.commandLine}`));
  } else lines.push('', 'vLLM command', `  ${r.vllm.commandLine}`);
  return [...lines, ...closingLines(r)];
}
