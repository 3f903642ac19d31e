// A `llmserve start` under test with everything a fault case needs: temp dirs, free ports, a config, the fakes' logs.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fixturePath, makeModelDir, tempDir } from './fixtures.js';
import { runLlmserve, type LlmserveRun } from './llmserve.js';
import { freePort } from './ports.js';
import { findByMarker, type ProcInfo } from './procs.js';
import { waitFor, waitForFile } from './wait.js';

/** The API key every service under test uses. */
export const TEST_KEY = 'sk-faults-0123456789abcdef0123';

/** One start of the fake vLLM, as it recorded itself in FAKE_VLLM_ARGV_FILE. */
export interface VllmStart {
  argv: string[];
  pid: number;
  /** Processes of an earlier vLLM still alive at the moment this one started. */
  otherVllmPids: number[];
}

export interface Service {
  run: LlmserveRun;
  dir: string;
  probeDir: string;
  port: number;
  backendPort: number;
  notReady: string;
  notHealthy: string;
  /** Every vLLM start so far, oldest first. */
  vllmStarts(): VllmStart[];
  /** Waits until `not-ready` is gone (the service is ready). */
  waitReady(timeoutMs?: number): Promise<void>;
  /** The marked process whose command line matches. */
  findProcess(pattern: RegExp, timeoutMs?: number): Promise<ProcInfo>;
  /** The proxy that llmserve itself runs (its cluster workers have the same command line, with the proxy as parent). */
  findProxy(timeoutMs?: number): Promise<ProcInfo>;
  /** The public model name (the model directory's name). */
  modelName: string;
  /** POSTs a chat completion through the proxy with the test key. */
  chat(body?: Record<string, unknown>): Promise<Response>;
  /** Both probe files present, as at every exit. */
  probesDown(): boolean;
}

export interface ServiceOptions {
  /** llmserve YAML written to a config file and passed with --config (the model and ports come from flags). */
  config?: string;
  /** Extra flags for `start`. */
  args?: string[];
  /** Extra vLLM args after `--`. */
  vllmArgs?: string[];
  env?: Record<string, string | undefined>;
  healthInterval?: string;
  stopTimeout?: string;
}

/** Starts `llmserve start` with the fakes (2 fake GPUs, so vLLM has TP workers) and short timings. */
export async function startService(opts: ServiceOptions = {}): Promise<Service> {
  const dir = await tempDir('llmserve-fault-');
  const model = await makeModelDir();
  const probeDir = path.join(dir, 'probe');
  const argvFile = path.join(dir, 'vllm-argv.jsonl');
  const [port, backendPort] = [await freePort(), await freePort()];
  const args = ['start', '--model', model, '--port', String(port), '--backend-port', String(backendPort), '--probe-dir', probeDir];
  args.push('--health-interval', opts.healthInterval ?? '0.3', '--stop-timeout', opts.stopTimeout ?? '3');
  if (opts.config !== undefined) {
    const config = path.join(dir, 'llmserve.yaml');
    writeFileSync(config, opts.config);
    args.push('--config', config);
  }
  args.push(...(opts.args ?? []));
  if (opts.vllmArgs) args.push('--', ...opts.vllmArgs);
  const run = runLlmserve(args, { LLMSERVE_MASTER_KEY: TEST_KEY, FAKE_VLLM_ARGV_FILE: argvFile, FAKE_VLLM_MODE_FILE: path.join(dir, 'fake-vllm-mode'), FAKE_VLLM_LOAD_MS: '300', FAKE_NVIDIA_SMI_GPUS: '2', ...opts.env });
  const notReady = path.join(probeDir, 'not-ready');
  const notHealthy = path.join(probeDir, 'not-healthy');
  return {
    run,
    dir,
    probeDir,
    port,
    backendPort,
    notReady,
    notHealthy,
    vllmStarts: () =>
      existsSync(argvFile)
        ? readFileSync(argvFile, 'utf8').trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as VllmStart)
        : [],
    async waitReady(timeoutMs = 60_000) {
      // The supervisor removes not-ready just before it logs this line.
      await run.waitForLine(/\| ready after .* serves /, timeoutMs);
      await waitForFile(notReady, false, 1000);
    },
    findProcess(pattern, timeoutMs = 30_000) {
      return waitFor(() => findByMarker(run.marker).find((p) => pattern.test(p.cmdline)), { timeoutMs, message: `a process matching ${pattern}` });
    },
    findProxy(timeoutMs = 60_000) {
      return waitFor(() => findByMarker(run.marker).find((p) => / proxy$/.test(p.cmdline) && p.ppid === run.child.pid), { timeoutMs, message: 'the proxy (a child of llmserve)' });
    },
    modelName: path.basename(model),
    chat(body = {}) {
      return fetch(`http://127.0.0.1:${port}/v1/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${TEST_KEY}` },
        body: JSON.stringify({ model: path.basename(model), messages: [{ role: 'user', content: 'hi' }], ...body }),
      });
    },
    probesDown: () => existsSync(notReady) && existsSync(notHealthy),
  };
}

/** The error lines llmserve printed (`llmserve | error: ...`). */
export function errorLines(run: LlmserveRun): string[] {
  return run.lines.filter((l) => /^llmserve\s*\| error: /.test(l));
}

/**
 * A mode file for test/fixtures/proxy-fault-hook.cjs (which reads it in every proxy process) and the environment that
 * loads the hook into a service's processes; the test may rewrite the file later (a fault for the next proxy only).
 */
export async function proxyFault(mode: string): Promise<{ fault: string; env: Record<string, string> }> {
  const fault = path.join(await tempDir(), 'proxy-fault');
  writeFileSync(fault, mode);
  return { fault, env: { NODE_OPTIONS: `--require ${fixturePath('proxy-fault-hook.cjs')}`, LLMSERVE_TEST_PROXY_FAULT: fault } };
}
