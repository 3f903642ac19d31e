// `ray status` as the head's wait sees it: text it cannot read is reported with that text, not taken for silence.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { RunCommand } from '../../src/gpu/nvidia-smi.js';
import type { ManagedChild } from '../../src/supervisor/child.js';
import { rayStatusOnce, stopRay, waitForCluster } from '../../src/supervisor/ray.js';
import { LlmserveError } from '../../src/errors.js';
import { memoryLogger } from '../helpers/upstream.js';

const head = { hasExited: false, exited: new Promise(() => {}), pid: 1 } as unknown as ManagedChild;

test('rayStatusOnce: answered and read, answered but unreadable, not answering', async () => {
  const say = (exitCode: number, stdout: string, stderr = ''): RunCommand => async () => ({ exitCode, stdout, stderr, notFound: false });
  assert.deepEqual(await rayStatusOnce(say(0, 'No cluster status.\n'), ['ray', 'status'], {}), { answers: true, cluster: null, raw: 'No cluster status.' });
  assert.deepEqual(await rayStatusOnce(say(1, '', 'ConnectionError: Could not find any running Ray instance.\n'), ['ray', 'status'], {}), { answers: false, cluster: null, raw: 'ConnectionError: Could not find any running Ray instance.' });
});

test('waitForCluster: unreadable output is logged with its text, and named in the timeout error', async () => {
  const { logger, lines } = memoryLogger();
  let t = 0;
  const run: RunCommand = async () => ({ exitCode: 0, stdout: 'No cluster status.\n', stderr: '', notFound: false });
  await assert.rejects(
    waitForCluster({ run, statusArgv: ['ray', 'status'], env: {}, head, nodes: 2, gpusPerNode: 2, timeoutS: 0.001, now: () => (t += 10), logger, stop: new AbortController().signal }),
    (err: unknown) => err instanceof LlmserveError && err.exitCode === 3 && /ray status output not understood: "No cluster status\."/.test(err.message),
  );
  assert.ok(lines.some((l) => /Ray cluster: ray status output not understood/.test(l)), lines.join('\n'));
});

test('waitForCluster: every node joined but GPUs short is said as GPUs, with their fix, not as nodes to start', async () => {
  const { logger } = memoryLogger();
  let t = 0;
  const status = ['Node status', 'Active:', ' 1 node_head', ' 1 node_worker', 'Pending:', ' (no pending nodes)', 'Resources', 'Total Usage:', ' 0.0/32.0 CPU', ' 0.0/3.0 GPU', ''].join('\n');
  const run: RunCommand = async () => ({ exitCode: 0, stdout: status, stderr: '', notFound: false });
  await assert.rejects(
    waitForCluster({ run, statusArgv: ['ray', 'status'], env: {}, head, nodes: 2, gpusPerNode: 2, timeoutS: 0.001, now: () => (t += 10), logger, stop: new AbortController().signal }),
    (err: unknown) =>
      err instanceof LlmserveError &&
      /the Ray cluster did not reach 4 GPUs within the start-up timeout .*: 2 of 2 nodes joined, 3 of 4 GPUs/.test(err.message) &&
      /every node must show Ray as many GPUs as this head \(2\)/.test(err.details.join(' ')),
  );
});

test('stopRay: a `ray stop` that never returns (a child of it holds the pipes) takes at most the grace period', { timeout: 10_000 }, async () => {
  // Reproduced with ray.command a wrapper whose `stop` ran `sleep 100`: a head with stop_timeout 3 took 100 s to exit.
  let exit: (e: unknown) => void = () => {};
  const exited = new Promise((resolve) => (exit = resolve));
  let hasExited = false;
  const child = {
    pid: 2 ** 22 + 12345, // no such process group: emptyGroup finds nothing left
    exited,
    get hasExited() {
      return hasExited;
    },
    signal: () => {
      hasExited = true;
      exit({ code: 0, signal: null });
    },
    signalGroup: () => {},
  } as unknown as ManagedChild;
  let cancel: AbortSignal | undefined;
  const hang: RunCommand = (_file, _args, options) => ((cancel = options?.signal), new Promise(() => {}));
  const t0 = performance.now();
  await stopRay(child, hang, ['ray', 'stop'], {}, 300, new AbortController().signal);
  const ms = performance.now() - t0;
  assert.ok(ms < 2000, `stopRay took ${Math.round(ms)} ms with a 300 ms grace period`);
  assert.equal(hasExited, true, 'the Ray group was stopped after the wait');
  // The run is cancelled too (runCommand SIGKILLs on it): `ray stop` must not outlive llmserve.
  assert.equal(cancel?.aborted, true, 'the hanging `ray stop` run was cancelled');
});
