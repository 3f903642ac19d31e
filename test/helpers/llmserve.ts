// Run the built `llmserve` binary as a user would, with a unique marker so every process it starts can be found.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { rmSync } from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, type TestContext } from 'node:test';
import { fileURLToPath } from 'node:url';
import { envWithFakes, tempDirSync } from './fixtures.js';
import { findByMarker, killByMarker } from './procs.js';
import { waitFor } from './wait.js';

/** Absolute path of the built bin. */
export const binPath = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'bin', 'llmserve.js');

/** A running `llmserve` process under test. */
export interface LlmserveRun {
  child: ChildProcess;
  /** Marker env value inherited by every descendant (see procs.findByMarker). */
  marker: string;
  lines: string[];
  output(): string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  waitForLine(pattern: RegExp, timeoutMs?: number): Promise<string>;
  /** Kills everything still carrying the marker and returns what was left (should be nothing). */
  cleanup(): Promise<number>;
}

/** How many of a run's last lines a failed test prints. */
const SHOWN_ON_FAILURE = 60;
// The runs the current test started (a file's tests run one at a time). Why: CI shows a failed test's error, and a
// request that failed ("fetch failed") says nothing of what llmserve said meanwhile; its lines are printed with it.
const runsOfTest: { args: string[]; lines: string[] }[] = [];
beforeEach(() => {
  runsOfTest.length = 0;
});
// Before the test's own `t.after` cleanup, so the lines are still there (they are kept after exit anyway).
afterEach((t) => {
  // A hook of each test gets that test's context; `passed` is there on every Node we run (20.12 and later), but not
  // yet in @types/node 20's TestContext.
  if ((t as TestContext & { passed?: boolean }).passed === true) return;
  for (const run of runsOfTest) {
    const shown = run.lines.slice(-SHOWN_ON_FAILURE);
    console.log(`--- llmserve ${run.args.join(' ')}: ${shown.length < run.lines.length ? `last ${shown.length} of ${run.lines.length} lines` : 'output'}\n${shown.join('\n')}`);
  }
});

/** Spawns `node bin/llmserve.js ...args` (or another script, such as scripts/demo.mjs) with the fakes first on PATH. */
export function runLlmserve(args: string[], env: Record<string, string | undefined> = {}, script: string = binPath): LlmserveRun {
  const marker = `llmserve-test-${randomUUID()}`;
  // The usage store goes to a temporary directory unless the test sets (or unsets) LLMSERVE_USAGE_DIR: without a
  // config file it would land in the working directory (the repository).
  const usageDir = tempDirSync('llmserve-usage-');
  const child = spawn(process.execPath, [script, ...args], {
    env: envWithFakes({ LLMSERVE_TEST_MARKER: marker, FAKE_VLLM_LOAD_MS: '200', LLMSERVE_USAGE_DIR: usageDir, ...env }),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: string[] = [];
  runsOfTest.push({ args, lines });
  let partial = { out: '', err: '' };
  const collect = (which: 'out' | 'err') => (chunk: Buffer) => {
    const text = partial[which] + chunk.toString();
    const parts = text.split('\n');
    partial[which] = parts.pop() ?? '';
    lines.push(...parts);
  };
  child.stdout!.on('data', collect('out'));
  child.stderr!.on('data', collect('err'));
  let closed: { code: number | null; signal: NodeJS.Signals | null } | null = null;
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on('close', (code, signal) => {
      closed = { code, signal };
      rmSync(usageDir, { recursive: true, force: true });
      for (const rest of [partial.out, partial.err]) if (rest) lines.push(rest);
      partial = { out: '', err: '' };
      resolve({ code, signal });
    }),
  );
  return {
    child,
    marker,
    lines,
    output: () => lines.join('\n'),
    exited,
    async waitForLine(pattern, timeoutMs = 30_000) {
      const deadline = Date.now() + timeoutMs;
      let lastChance = false;
      for (;;) {
        const line = lines.find((l) => pattern.test(l));
        if (line !== undefined) return line;
        // An llmserve that exited prints nothing more: fail now, not at the deadline (a start refused with exit 2).
        const exit = closed as { code: number | null; signal: NodeJS.Signals | null } | null;
        if (exit !== null) throw new Error(`llmserve exited (${exit.signal ?? `code ${exit.code}`}) without a line matching ${pattern}\n--- output:\n${lines.join('\n')}`);
        if (Date.now() >= deadline) {
          // One more look once the output already read off the pipes is handled (as waitFor does).
          if (!lastChance) {
            lastChance = true;
            await new Promise((r) => setImmediate(r));
            continue;
          }
          throw new Error(`timed out after ${timeoutMs} ms: a line matching ${pattern}\n--- output:\n${lines.join('\n')}`);
        }
        await new Promise((r) => setTimeout(r, 20));
      }
    },
    async cleanup() {
      const left = findByMarker(marker).length;
      killByMarker(marker);
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
      await waitFor(() => findByMarker(marker).length === 0, { timeoutMs: 30_000, message: 'marked processes to be gone after SIGKILL' });
      return left;
    },
  };
}
