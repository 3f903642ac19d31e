// Query nvidia-smi with the exact forms llmserve documents, and parse its CSV.
import { LlmserveError } from '../errors.js';
import type { Gpu } from './types.js';

/** The exact GPU query llmserve runs. */
export const GPU_QUERY_ARGS = ['--query-gpu=index,uuid,name,memory.total', '--format=csv,noheader,nounits'];
/** The exact query for processes holding GPU memory. */
export const COMPUTE_APPS_QUERY_ARGS = ['--query-compute-apps=pid,used_memory', '--format=csv,noheader,nounits'];

/** Result of running an external program; `notFound` when it is not installed. */
export interface RunResult {
  exitCode: number | null;
  stdout: string;
  stderr: string;
  notFound: boolean;
  /** The errno code when the program could not be spawned at all (ENOENT, EACCES, ...); absent when it ran. */
  spawnError?: string;
  /** It ran past its timeout and was killed (exitCode is then null). */
  timedOut?: boolean;
}

/** Runs an external program (injected so tests need no real binary). */
export type RunCommand = (file: string, args: readonly string[], options?: { timeoutMs?: number; env?: NodeJS.ProcessEnv; signal?: AbortSignal }) => Promise<RunResult>;

/** Parses `index, uuid, name, memory.total` lines; lines that do not fit are returned as unparsed. */
export function parseGpuCsv(text: string): { gpus: Gpu[]; unparsed: string[] } {
  const gpus: Gpu[] = [];
  const unparsed: string[] = [];
  for (const rawLine of text.split(/\r?\n/)) {
    const line = rawLine.trim();
    if (line === '') continue;
    const fields = line.split(',').map((f) => f.trim());
    // Names never contain commas in practice, but join the middle back so one that does still parses.
    if (fields.length < 4) {
      unparsed.push(line);
      continue;
    }
    const [indexText, uuid] = fields as [string, string];
    const memoryText = fields[fields.length - 1] as string;
    const name = fields.slice(2, -1).join(', ');
    const index = /^\d+$/.test(indexText) ? Number(indexText) : NaN;
    if (!Number.isInteger(index) || !/^(GPU|MIG)-/i.test(uuid)) {
      unparsed.push(line);
      continue;
    }
    const memoryMiB = /^\d+(\.\d+)?$/.test(memoryText) ? Math.round(Number(memoryText)) : null;
    gpus.push({ index, uuid, name, memoryMiB });
    // A field nvidia-smi fills with an error (`ERR!`, `[GPU requires reset]`, `[Unknown Error]`), unlike the
    // harmless `[N/A]` and `[Not Supported]`: the GPU is listed, and its line is shown as it came (a warning).
    if (fields.slice(1).some((f) => f.includes('ERR!') || (/^\[.*\]$/.test(f) && !/^\[(N\/A|Not Supported)\]$/i.test(f)))) unparsed.push(line);
  }
  return { gpus, unparsed };
}

/** How long the GPU query may take: nvidia-smi answers in well under a second on a healthy driver. */
const GPU_QUERY_TIMEOUT_MS = 15_000;

/** Runs the GPU query; null when nvidia-smi is not installed, an error quoting its output when it fails. */
export async function queryNvidiaSmi(run: RunCommand, command = 'nvidia-smi'): Promise<{ gpus: Gpu[]; unparsed: string[]; raw: string } | null> {
  const result = await run(command, GPU_QUERY_ARGS, { timeoutMs: GPU_QUERY_TIMEOUT_MS });
  if (result.notFound) return null;
  const raw = (result.stdout + result.stderr).trim();
  if (result.exitCode !== 0) {
    throw new LlmserveError('GPU_QUERY', `nvidia-smi ${queryFailure(result, GPU_QUERY_TIMEOUT_MS)}`, {
      details: ['Fix: check the NVIDIA driver and that the container was given GPUs (nvidia-smi must work in it), or set --tensor-parallel-size explicitly.'],
    });
  }
  const parsed = parseGpuCsv(result.stdout);
  return { ...parsed, raw };
}

/** Parses `--query-compute-apps=pid,used_memory` output into pids and MiB. */
export function parseComputeApps(text: string): { pid: number; usedMiB: number | null }[] {
  const apps: { pid: number; usedMiB: number | null }[] = [];
  for (const line of text.split(/\r?\n/)) {
    const [pidText, memText] = line.split(',').map((f) => f.trim());
    if (pidText === undefined || !/^\d+$/.test(pidText)) continue;
    apps.push({ pid: Number(pidText), usedMiB: memText !== undefined && /^\d+$/.test(memText) ? Number(memText) : null });
  }
  return apps;
}

/** What went wrong with an nvidia-smi query that gave no answer (installed, but it timed out, failed or could not run). */
export function queryFailure(result: RunResult, timeoutMs: number): string {
  if (result.spawnError !== undefined) return `could not be run (${result.spawnError})`;
  if (result.timedOut === true) return `did not answer within ${timeoutMs / 1000} s (killed; a GPU driver in trouble hangs it)`;
  return `failed (exit ${result.exitCode ?? 'signal'}): ${quote((result.stdout + result.stderr).trim())}`;
}

function quote(text: string): string {
  if (text === '') return '(no output)';
  return text.length > 400 ? `"${text.slice(0, 400)}…"` : `"${text}"`;
}
