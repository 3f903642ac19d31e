// Starts the fake vLLM directly (for tests of the fake itself) and tracks everything it spawns by a marker.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { envWithFakes, fixturePath } from './fixtures.js';
import { freePort } from './ports.js';
import { findByMarker, killByMarker, killTree } from './procs.js';
import { waitFor } from './wait.js';

export interface FakeVllm {
  child: ChildProcess;
  port: number;
  /** `LLMSERVE_TEST_ID=<uuid>`: present in the environment of the API server, EngineCore and workers. */
  marker: string;
  /** stdout and stderr so far. */
  output(): string;
  /** Resolves when `re` matches the output; returns the match. */
  waitForOutput(re: RegExp, timeoutMs?: number): Promise<RegExpMatchArray>;
  /** Resolves once /health answers 200. */
  waitReady(timeoutMs?: number): Promise<void>;
  /** Resolves with the exit code (or signal name) once the API server has exited; its last output may still be in the pipe (use waitForOutput). */
  exited: Promise<number | string>;
  /** The EngineCore pid, parsed from its `(EngineCore pid=N)` log line. */
  enginePid(timeoutMs?: number): Promise<number>;
  /** SIGKILLs the API server, its descendants and anything else carrying the marker. */
  stop(): Promise<void>;
}

/** Spawns `vllm serve <args> --host 127.0.0.1 --port <free>` from test/fixtures/bin with `env` on top of envWithFakes. */
export async function startFakeVllm(opts: { args: string[]; env?: Record<string, string | undefined>; port?: number }): Promise<FakeVllm> {
  const port = opts.port ?? (await freePort());
  const id = randomUUID();
  const marker = `LLMSERVE_TEST_ID=${id}`;
  const env = envWithFakes({ LLMSERVE_TEST_ID: id, ...opts.env });
  const child = spawn(fixturePath('bin', 'vllm'), ['serve', ...opts.args, '--host', '127.0.0.1', '--port', String(port)], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | string>((resolve) => child.on('exit', (code, signal) => resolve(code ?? signal ?? -1)));
  // Deadlines only (each wait ends as soon as the state is seen): generous, for a loaded 2-core CI machine.
  const waitForOutput = (re: RegExp, timeoutMs = 60_000) => waitFor(() => out.match(re), { timeoutMs, message: () => `output to match ${re}; output so far:\n${out}` });
  return {
    child,
    port,
    marker,
    output: () => out,
    waitForOutput,
    exited,
    async waitReady(timeoutMs = 60_000) {
      await waitFor(async () => (await fetch(`http://127.0.0.1:${port}/health`)).status === 200, { timeoutMs, message: () => `fake vLLM on ${port} to be ready; output:\n${out}` });
    },
    async enginePid(timeoutMs = 60_000) {
      const m = await waitForOutput(/\(EngineCore pid=(\d+)\)/, timeoutMs);
      return Number(m[1]);
    },
    async stop() {
      if (child.pid) killTree(child.pid);
      killByMarker(marker);
      await waitFor(() => findByMarker(marker).length === 0, { timeoutMs: 30_000, message: `processes with ${marker} to be gone` });
    },
  };
}
