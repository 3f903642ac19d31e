// Runs short external programs (nvidia-smi, `vllm --version`) and reports, never throws, their outcome.
import { spawn, type ChildProcess } from 'node:child_process';
import type { RunCommand, RunResult } from '../gpu/nvidia-smi.js';

/** How long output may still come after the program exited (see the 'exit' handler). */
const OUTPUT_GRACE_MS = 200;

/** The most output kept per stream: these queries print a few KB; a runaway program must not fill the memory. */
const MAX_OUTPUT_BYTES = 16 * 1024 * 1024;

/**
 * The real RunCommand: no shell, stdin closed, output captured (its final newline dropped), a timeout. Node's spawn,
 * not execa: when the process is out of file descriptors (EMFILE, ENFILE: a supervisor at its limit restarting vLLM),
 * execa 9 threw on the half-made child and left its 'error' event unheard, which ended llmserve with a stack trace;
 * here every spawn failure is a `spawnError`, as a missing program is.
 */
export const runCommand: RunCommand = (file, args, options = {}) =>
  new Promise<RunResult>((resolve) => {
    let child: ChildProcess;
    try {
      child = spawn(file, args, { env: options.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'] });
    } catch (err) {
      return resolve(spawnFailure(err));
    }
    const out = collector();
    const err = collector();
    child.stdout?.on('data', out.add);
    child.stderr?.on('data', err.add);
    let timedOut = false;
    let settled = false;
    // Timed out or cancelled (llmserve is stopping): SIGKILL at once. These are queries with nothing to save, and one
    // stuck in a driver call ignores SIGTERM: a SIGTERM and a wait for it came on top of the timeout (a restart waited
    // 10 s on a hung nvidia-smi), and on a stop the query outlived llmserve.
    const kill = () => void child.kill('SIGKILL');
    const timer = setTimeout(() => {
      timedOut = true;
      kill();
    }, options.timeoutMs ?? 15_000);
    const signal = options.signal;
    if (signal?.aborted === true) kill();
    signal?.addEventListener('abort', kill, { once: true });
    const finish = (result: RunResult) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      signal?.removeEventListener('abort', kill);
      resolve(result);
    };
    child.on('error', (error) => {
      // Only a spawn that failed ends the run here; a failed kill of a running child is followed by its 'exit'.
      if (child.pid === undefined) finish(spawnFailure(error));
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      const result = () => ({ exitCode: code, stdout: out.text(), stderr: err.text(), notFound: false, ...(timedOut ? { timedOut: true } : {}) });
      // What it wrote before it exited comes with 'close'. A process it left behind holding the pipes (a wrapper
      // script that runs the real program without exec, then is killed at the timeout) would hold 'close' back for
      // as long as it lives, and with it the timeout: a moment for the output, then the pipes are let go.
      const grace = setTimeout(() => {
        child.stdout?.destroy();
        child.stderr?.destroy();
        finish(result());
      }, OUTPUT_GRACE_MS);
      child.once('close', () => {
        clearTimeout(grace);
        finish(result());
      });
    });
  });

/** The outcome of a program that could not be started: its errno code (ENOENT: not found). */
function spawnFailure(error: unknown): RunResult {
  const code = (error as NodeJS.ErrnoException).code ?? 'ERROR';
  return { exitCode: null, stdout: '', stderr: '', notFound: code === 'ENOENT', spawnError: code };
}

/** One output stream gathered up to MAX_OUTPUT_BYTES, as text without its final newline (as a shell's $(...) has it). */
function collector(): { add: (chunk: Buffer) => void; text: () => string } {
  const chunks: Buffer[] = [];
  let bytes = 0;
  return {
    add: (chunk) => {
      if (bytes >= MAX_OUTPUT_BYTES) return;
      chunks.push(chunk);
      bytes += chunk.length;
    },
    text: () => Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, ''),
  };
}
