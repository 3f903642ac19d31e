// A backend whose start never spawned vLLM (its command cannot run): recovery counts failures and gives up
// cleanly instead of crashing on a missing process handle (several models under probes.require: any).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Backend, type BackendContext } from '../../src/supervisor/backend.js';
import { LlmserveError } from '../../src/errors.js';
import path from 'node:path';
import { spawnErrorText, spawnFailure, VLLM_INSTALL_FIX } from '../../src/supervisor/spawn-failure.js';
import type { ManagedChild } from '../../src/supervisor/child.js';
import type { SupervisorDeps, SupervisorPlan } from '../../src/supervisor/types.js';
import { memoryLogger } from '../helpers/upstream.js';

test('recover with no child and a vLLM that cannot be run: each try is a failure, then give-up, no throw', async () => {
  const { logger, lines } = memoryLogger();
  let spawns = 0;
  const deps = {
    logger,
    probes: { set() {}, markDown() {} },
    spawn: async () => {
      spawns++;
      throw Object.assign(new Error('spawn vllm ENOENT'), { code: 'ENOENT' });
    },
    httpGet: async () => ({ ok: false, status: null, ms: 0, error: 'unused', body: '' }),
    isPortFree: async () => true,
    gpuMemoryHolders: async () => [],
    now: () => performance.now(),
  } as unknown as SupervisorDeps;
  const plan = {
    restart: { policy: 'on-failure', maxFailures: 3, windowS: 60, backoffInitialS: 0.01, backoffMaxS: 0.02, resetAfterS: 300 },
    healthInterval: 1,
    startupTimeout: 5,
    stallTimeout: 5,
    engineStallTimeout: 0,
    stopTimeout: 1,
  } as unknown as SupervisorPlan;
  const stop = new AbortController();
  const changes: string[] = [];
  const ctx: BackendContext = {
    deps,
    plan,
    stopSignal: stop.signal,
    killSignal: new AbortController().signal,
    changed: (_b, why) => void changes.push(why),
    restarting: () => {},
  };
  const backend = new Backend({ argv: ['vllm', 'serve', 'm'], env: {}, port: 1, servedModelName: 'b', logName: 'vllm:b', droppableFlags: [] }, ctx, true);
  assert.equal(backend.child, null);
  assert.equal(await backend.recover('first start failed'), 'give-up');
  assert.equal(backend.status, 'failed');
  // Failures 1 and 2 are retried (two spawns that fail), the third gives up.
  assert.equal(spawns, 2);
  assert.equal(backend.restarts, 2);
  assert.equal(lines.filter((l) => /cannot run "vllm": ENOENT/.test(l)).length, 2, lines.join('\n'));
  assert.ok(lines.some((l) => /vLLM "b" failed 3 times within .*: giving up/.test(l)), lines.join('\n'));
  assert.equal(changes[0], 'first start failed');
});

test('a busy health check (late /health, responses flowing) counts toward resetting the restart backoff', async () => {
  const { logger } = memoryLogger();
  let clock = 0;
  const deps = {
    logger,
    probes: { set() {}, markDown() {} },
    // Every /health times out; the proxy says vLLM sent bytes just now: busy, not hung.
    httpGet: async () => ({ ok: false, status: null, ms: 1000, error: 'timed out after 1000 ms', body: '', timedOut: true }),
    now: () => clock,
  } as unknown as SupervisorDeps;
  const plan = {
    restart: { policy: 'on-failure', maxFailures: 10, windowS: 1, backoffInitialS: 1, backoffMaxS: 60, resetAfterS: 300 },
    healthInterval: 1,
  } as unknown as SupervisorPlan;
  const ctx: BackendContext = {
    deps,
    plan,
    stopSignal: new AbortController().signal,
    killSignal: new AbortController().signal,
    changed: () => {},
    restarting: () => {},
    activityOf: async () => ({ sinceMs: 0, waiting: { count: 0, heardMs: null } }),
  };
  const backend = new Backend({ argv: ['vllm', 'serve', 'm'], env: {}, port: 1, servedModelName: 'm', logName: 'vllm', droppableFlags: [] }, ctx, false);
  // Two failures before: the next delay would be 4 s.
  backend.policy.recordFailure(clock);
  clock += 2000;
  backend.policy.recordFailure(clock);
  backend.markReady();
  const check = (backend as unknown as { healthCheck(): Promise<string> }).healthCheck.bind(backend);
  assert.equal(await check(), 'ok');
  clock += 300_000;
  assert.equal(await check(), 'ok');
  // Five minutes of serving: the backoff starts from backoff_initial again.
  clock += 2000;
  assert.equal(backend.policy.recordFailure(clock)?.delayMs, 1000);
});

test('a stop during the wait for GPU memory waits (bounded) for the query it cancelled to end, so llmserve never exits before it', async () => {
  const { logger } = memoryLogger();
  const stop = new AbortController();
  let settledAt = 0;
  let hangs = false;
  const deps = {
    logger,
    probes: { set() {}, markDown() {} },
    // The query, SIGKILLed by the stop signal, is reaped 150 ms later (a loaded machine); or never (a driver hang).
    gpuMemoryHolders: (signal: AbortSignal) =>
      new Promise<number[] | null>((resolve) => {
        if (hangs) return;
        signal.addEventListener('abort', () => setTimeout(() => ((settledAt = performance.now()), resolve(null)), 150));
      }),
    now: () => performance.now(),
  } as unknown as SupervisorDeps;
  const ctx: BackendContext = {
    deps,
    plan: { healthInterval: 1 } as unknown as SupervisorPlan,
    stopSignal: stop.signal,
    killSignal: new AbortController().signal,
    changed: () => {},
    restarting: () => {},
  };
  const backend = new Backend({ argv: ['vllm', 'serve', 'm'], env: {}, port: 1, servedModelName: 'm', logName: 'vllm', droppableFlags: [] }, ctx, false);
  const wait = (backend as unknown as { waitGpuMemoryReleased(old: Set<number>): Promise<void> }).waitGpuMemoryReleased.bind(backend);
  const waiting = wait(new Set([4242]));
  setTimeout(() => stop.abort(), 20);
  await waiting;
  assert.ok(settledAt > 0 && settledAt <= performance.now(), 'returned only once the cancelled query had ended');
  // A query that never ends (uninterruptible sleep in the driver) holds the stop up for a second at most.
  hangs = true;
  const started = performance.now();
  await wait(new Set([4242]));
  assert.ok(performance.now() - started < 3000, `${performance.now() - started} ms`);
});

test('waiting for GPU memory: a GPU-memory query that gave no answer is said once, with why, and the restart goes on', async () => {
  const { logger, lines } = memoryLogger();
  let queries = 0;
  const deps = {
    logger,
    probes: { set() {}, markDown() {} },
    gpuMemoryHolders: async () => (queries++, { failed: 'did not answer within 5 s (killed; a GPU driver in trouble hangs it)' }),
    now: () => performance.now(),
  } as unknown as SupervisorDeps;
  const ctx: BackendContext = {
    deps,
    plan: { healthInterval: 1 } as unknown as SupervisorPlan,
    stopSignal: new AbortController().signal,
    killSignal: new AbortController().signal,
    changed: () => {},
    restarting: () => {},
  };
  const backend = new Backend({ argv: ['vllm', 'serve', 'm'], env: {}, port: 1, servedModelName: 'm', logName: 'vllm', droppableFlags: [] }, ctx, false);
  const wait = (backend as unknown as { waitGpuMemoryReleased(old: Set<number>): Promise<void> }).waitGpuMemoryReleased.bind(backend);
  await wait(new Set([4242]));
  assert.equal(queries, 1, 'not asked again: a driver that hung once would hang the next query too');
  const warned = lines.filter((l) => /query-compute-apps/.test(l));
  assert.equal(warned.length, 1, lines.join('\n'));
  assert.match(warned[0]!, /nvidia-smi --query-compute-apps did not answer within 5 s .*: cannot tell whether the old vLLM has released its GPU memory; starting the new one anyway/);
});

/** A start's context with a spawn of the test's making; the stop controller is the test's. */
function startContext(spawn: SupervisorDeps['spawn'], stop: AbortController, httpGet: SupervisorDeps['httpGet'] = async () => ({ ok: false, status: null, ms: 0, error: 'not up', body: '' })): BackendContext {
  const { logger } = memoryLogger();
  const deps = {
    logger,
    probes: { set() {}, markDown() {} },
    spawn,
    httpGet,
    isPortFree: async () => true,
    now: () => performance.now(),
  } as unknown as SupervisorDeps;
  const plan = { startupTimeout: 60, stallTimeout: 60, engineStallTimeout: 0, restart: { policy: 'on-failure', maxFailures: 3, windowS: 60, backoffInitialS: 1, backoffMaxS: 1, resetAfterS: 300 } } as unknown as SupervisorPlan;
  return { deps, plan, stopSignal: stop.signal, killSignal: new AbortController().signal, changed: () => {}, restarting: () => {} };
}

/** A vLLM that has exited at once (a pid no process has: its group is empty), its pipes closing when `closeOutput` runs. */
function exitedChild(): { child: ManagedChild; kills: NodeJS.Signals[]; closeOutput: () => void } {
  const kills: NodeJS.Signals[] = [];
  let closeOutput = () => {};
  const outputClosed = new Promise<void>((resolve) => (closeOutput = resolve));
  const child = {
    pid: 4_194_303,
    exited: Promise.resolve({ code: 2, signal: null }),
    hasExited: true,
    outputClosed,
    signal() {},
    signalGroup: (sig: NodeJS.Signals) => void kills.push(sig),
    send() {},
    onMessage() {},
  } as unknown as ManagedChild;
  return { child, kills, closeOutput };
}

const spec = { argv: ['vllm', 'serve', 'm', '--shutdown-timeout=1'], env: {}, port: 1, servedModelName: 'b', logName: 'vllm:b', droppableFlags: ['--shutdown-timeout'] };

test('a first start that would retry without a dropped flag after the stop began spawns no new vLLM', async () => {
  // Another model's start failed (exit 3) while this one's old vLLM rejected --shutdown-timeout and an orphan held
  // its output open: the retry came after shutdown had stopped this backend, and its vLLM outlived llmserve.
  const stop = new AbortController();
  const first = exitedChild();
  let spawns = 0;
  const ctx = startContext(async (opts) => {
    spawns++;
    opts.onLine('vllm: error: unrecognized arguments: --shutdown-timeout=1', 'stderr');
    return first.child;
  }, stop);
  const started = new Backend(spec, ctx, true).start(true);
  // The start now waits for the old vLLM's output to close; the stop comes meanwhile.
  await new Promise((resolve) => setImmediate(resolve));
  stop.abort();
  first.closeOutput();
  assert.equal(await started, 'stopped');
  assert.equal(spawns, 1, 'a second vLLM was spawned after the stop');
});

test('a stop that comes while vLLM is being spawned kills the new vLLM\'s group', async () => {
  const stop = new AbortController();
  const spawned = exitedChild();
  const ctx = startContext(async () => {
    stop.abort();
    return spawned.child;
  }, stop);
  assert.equal(await new Backend(spec, ctx, true).start(true), 'stopped');
  assert.deepEqual(spawned.kills, ['SIGKILL']);
});

test('a /v1/models that does not list the served model is another server on the shared port: the start fails, our vLLM killed', async () => {
  // vLLM binds with SO_REUSEPORT before it loads: a server that took the port meanwhile shares it and may answer.
  const alive = exitedChild();
  const child = { ...alive.child, hasExited: false, exited: new Promise(() => {}) } as unknown as ManagedChild;
  let killed = false;
  (child as { signalGroup: (s: NodeJS.Signals) => void }).signalGroup = () => {
    killed = true;
    (child as { hasExited: boolean }).hasExited = true;
    (child as { exited: Promise<unknown> }).exited = Promise.resolve({ code: null, signal: 'SIGKILL' });
  };
  const answers = [
    { ok: true, status: 200, ms: 1, error: null, body: JSON.stringify({ object: 'list', data: [{ id: 'someone-elses-model' }] }) },
  ];
  const ctx = startContext(async () => child, new AbortController(), async () => answers[0]!);
  await assert.rejects(new Backend(spec, ctx, true).start(true), (err: unknown) => {
    assert.ok(err instanceof LlmserveError);
    assert.equal(err.code, 'PORT_IN_USE');
    assert.match(err.message, /backend port 127\.0\.0\.1:1 is shared with another server: its \/v1\/models lists "someone-elses-model", not "b"/);
    return true;
  });
  assert.ok(killed, 'our vLLM was left running');
  // A list that names the model, or a body that is no list (no verdict), is ready.
  for (const body of [JSON.stringify({ data: [{ id: 'other' }, { id: 'b' }] }), 'not json']) {
    const ok = startContext(async () => exitedChild().child, new AbortController(), async () => ({ ok: true, status: 200, ms: 1, error: null, body }));
    const fresh = { ...exitedChild().child, hasExited: false, exited: new Promise(() => {}) } as unknown as ManagedChild;
    ok.deps.spawn = async () => fresh;
    assert.equal(await new Backend(spec, ok, true).start(true), 'ready', body);
  }
});

test('another listener on the backend port that none of this vLLM\'s processes holds: the start fails, our vLLM killed', async () => {
  const alive = exitedChild();
  let killed = false;
  const child = { ...alive.child, hasExited: false, exited: new Promise(() => {}) } as unknown as ManagedChild;
  (child as { signalGroup: (s: NodeJS.Signals) => void }).signalGroup = () => {
    killed = true;
    Object.assign(child, { hasExited: true, exited: Promise.resolve({ code: null, signal: 'SIGKILL' }) });
  };
  const body = JSON.stringify({ data: [{ id: 'b' }] });
  const ctx = startContext(async () => child, new AbortController(), async () => ({ ok: true, status: 200, ms: 1, error: null, body }));
  const asked: number[] = [];
  ctx.deps.otherListeners = (port) => (asked.push(port), { count: 1, holder: 'pid 20 (vllm serve /m)' });
  await assert.rejects(new Backend(spec, ctx, true).start(true), (err: unknown) => {
    assert.ok(err instanceof LlmserveError && err.code === 'PORT_IN_USE');
    assert.match(err.message, /backend port 127\.0\.0\.1:1 is shared with another server: a process that is not this vLLM listens on it \(pid 20 \(vllm serve \/m\)\)/);
    return true;
  });
  assert.deepEqual(asked, [1]);
  assert.ok(killed);
});

test('where listeners can be seen and all are this vLLM\'s, a model list naming another model is still ready (a wrapper command\'s server)', async () => {
  const child = { ...exitedChild().child, hasExited: false, exited: new Promise(() => {}) } as unknown as ManagedChild;
  const body = JSON.stringify({ data: [{ id: '/models/qwen' }] });
  const ctx = startContext(async () => child, new AbortController(), async () => ({ ok: true, status: 200, ms: 1, error: null, body }));
  ctx.deps.otherListeners = () => ({ count: 0, holder: null });
  assert.equal(await new Backend(spec, ctx, true).start(true), 'ready');
});

test('a relative command that is not there is said with the full path it was looked for at (the working directory\'s)', () => {
  assert.equal(spawnErrorText('vllm', 'ENOENT'), 'ENOENT: not found on PATH');
  assert.equal(spawnErrorText('/opt/v/bin/vllm', 'ENOENT'), 'ENOENT: not found');
  assert.equal(spawnErrorText('./wrap.sh', 'ENOENT'), `ENOENT: not found (as ${path.join(process.cwd(), 'wrap.sh')}: relative to the working directory)`);
});

test('a spawn the system refused (no memory, no processes, a command line too long) is not told to install vLLM', () => {
  const fail = (code: string) => spawnFailure('vllm', Object.assign(new Error(code), { code }), VLLM_INSTALL_FIX);
  assert.deepEqual(fail('ENOENT').details, [`Fix: ${VLLM_INSTALL_FIX}`]);
  assert.equal(fail('ENOENT').exitCode, 2);
  for (const code of ['EAGAIN', 'ENOMEM', 'E2BIG']) {
    assert.equal(fail(code).exitCode, 3, code);
    assert.doesNotMatch(fail(code).details.join(' '), /install vLLM/, code);
  }
  assert.match(fail('E2BIG').details[0]!, /ARG_MAX/);
  assert.match(fail('EAGAIN').details[0]!, /ulimit -u/);
});
