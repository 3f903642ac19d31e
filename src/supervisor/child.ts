// Long-lived children (vLLM, the proxy, the orphan guard): spawn in their own process group, stream their lines.
// The one module that imports node:child_process.
import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import type { Socket } from 'node:net';
import { lineSplitter } from '../log.js';
import { procStatFields } from '../util/proc-stat.js';

/** How a child ended. */
export interface ChildExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** What the supervisor needs from a running child. */
export interface ManagedChild {
  readonly pid: number;
  /** Resolves once, when the child process (the group leader) has exited. */
  readonly exited: Promise<ChildExit>;
  readonly hasExited: boolean;
  /** Resolves when the child's output pipes closed (may never happen while orphans hold them: race it). */
  readonly outputClosed: Promise<void>;
  /** Sends a signal to the leader only (vLLM's API server then shuts its engine down in order). */
  signal(sig: NodeJS.Signals): void;
  /** Sends a signal to the whole process group: leader, EngineCore, workers. */
  signalGroup(sig: NodeJS.Signals): void;
  /** Sends an IPC message when the child has an IPC channel. */
  send(message: unknown): void;
  onMessage(listener: (message: unknown) => void): void;
}

const exitSignals = new WeakMap<ManagedChild, AbortSignal>();

/**
 * An AbortSignal that aborts when the child exits, one per child: loops wait on it with raceAbort (util/time.ts)
 * instead of racing `exited` itself at every tick, which would keep one reaction per wait until the child exits.
 */
export function exitSignalOf(child: ManagedChild): AbortSignal {
  let signal = exitSignals.get(child);
  if (signal === undefined) {
    const ctl = new AbortController();
    void child.exited.then(() => ctl.abort());
    signal = ctl.signal;
    exitSignals.set(child, signal);
  }
  return signal;
}

/** What to run as a supervised child, and where its output lines go. */
export interface SpawnOptions {
  file: string;
  args: readonly string[];
  env: NodeJS.ProcessEnv;
  cwd?: string;
  /** Give the child an IPC channel (the proxy). */
  ipc?: boolean;
  /** `whole`: false for a piece from a line's middle (lineSplitter). */
  onLine: (line: string, stream: 'stdout' | 'stderr', whole?: boolean) => void;
}

const FRAME_IDLE_MS = 100;

/** Spawns a child as the leader of a new process group (setsid), with piped output split into lines. */
export function spawnInGroup(options: SpawnOptions): Promise<ManagedChild> {
  return new Promise((resolve, reject) => {
    // detached: setsid() makes the child the leader of its own session and process group. A Ctrl-C at a terminal
    // then reaches only llmserve, which stops the children in its own order; and killing -pid reaches
    // grandchildren (vLLM's EngineCore and workers) that outlive their parent.
    const child: ChildProcess = spawn(options.file, options.args, {
      env: options.env,
      cwd: options.cwd,
      detached: true,
      stdio: options.ipc ? ['ignore', 'pipe', 'pipe', 'ipc'] : ['ignore', 'pipe', 'pipe'],
    });
    // A progress frame (`\r...`) is passed on once its writer has been quiet for 100 ms (tqdm's own redraw interval).
    const out = lineSplitter((line, whole) => options.onLine(line, 'stdout', whole), { frameIdleMs: FRAME_IDLE_MS });
    const err = lineSplitter((line, whole) => options.onLine(line, 'stderr', whole), { frameIdleMs: FRAME_IDLE_MS });
    child.stdout?.on('data', (c: Buffer) => out.push(c));
    child.stderr?.on('data', (c: Buffer) => err.push(c));
    let exitInfo: ChildExit | null = null;
    const exited = new Promise<ChildExit>((done) => {
      // 'exit', not 'close': vLLM's orphaned EngineCore and workers inherit the stdout pipe and would hold
      // 'close' back for as long as they live, which is exactly when the exit matters most.
      child.on('exit', (code, signal) => {
        exitInfo = { code, signal };
        done(exitInfo);
      });
    });
    const outputClosed = new Promise<void>((done) =>
      child.on('close', () => {
        out.flush();
        err.flush();
        done();
      }),
    );
    child.once('error', (error) => {
      if (child.pid === undefined) reject(error);
    });
    child.once('spawn', () => {
      const pid = child.pid as number;
      resolve({
        pid,
        exited,
        outputClosed,
        get hasExited() {
          return exitInfo !== null;
        },
        signal(sig) {
          safeKill(pid, sig);
        },
        signalGroup(sig) {
          safeKill(-pid, sig);
        },
        send(message) {
          if (child.connected) child.send(message as never, (e) => void e);
        },
        onMessage(listener) {
          child.on('message', listener);
        },
      });
    });
  });
}

/** Sends a signal, ignoring "no such process": the target may already be gone, which is the goal. */
export function safeKill(pid: number, sig: NodeJS.Signals | 0): boolean {
  try {
    process.kill(pid, sig);
    return true;
  } catch {
    return false;
  }
}

/** Lists the live (non-zombie) members of a process group; a member that exited but is unreaped does not count. */
export function liveGroupMembers(pgid: number): number[] {
  let entries: string[];
  try {
    entries = readdirSync('/proc');
  } catch {
    // No /proc (not Linux): fall back to asking the kernel whether the group has anyone at all.
    return safeKill(-pgid, 0) ? [pgid] : [];
  }
  const members: number[] = [];
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue;
    if (isLiveMember(entry, pgid)) members.push(Number(entry));
  }
  return members;
}

/** Whether a process is in group `pgid` and not a zombie (false when it ended while we looked). */
function isLiveMember(pid: number | string, pgid: number): boolean {
  const fields = procStatFields(pid);
  return fields !== null && Number(fields[2]) === pgid && fields[0] !== 'Z';
}

/**
 * The live members of process group `pgid` found by walking down from `known` members through their children
 * (/proc/PID/task/TID/children), or null where that file is not there (a kernel built without it): then scan. Why:
 * a health tick samples vLLM's group, and reading every process's stat (liveGroupMembers) took 66-100 ms of the
 * supervisor's loop with 3,000 processes in view (hostPID, a busy PID namespace), per model and per tick.
 */
export function groupMembersBelow(pgid: number, known: Iterable<number>): number[] | null {
  const members = new Set<number>();
  const seen = new Set<number>();
  const queue = [...known];
  let readable = false;
  while (queue.length > 0) {
    const pid = queue.pop()!;
    if (seen.has(pid)) continue;
    seen.add(pid);
    if (isLiveMember(pid, pgid)) members.add(pid);
    let tasks: string[];
    try {
      tasks = readdirSync(`/proc/${pid}/task`);
    } catch {
      continue;
    }
    for (const tid of tasks) {
      let children: string;
      try {
        children = readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8');
      } catch {
        continue;
      }
      readable = true;
      for (const child of children.split(' ')) if (child !== '' && child !== '\n') queue.push(Number(child));
    }
  }
  return readable || members.size === 0 ? [...members] : null;
}

/** A helper process that only reads lines on its standard input (the orphan guard). */
export interface LineReader {
  /** Writes one line; a helper that is gone is ignored (the guard is a safety net, not a dependency). */
  writeLine(line: string): void;
  /** Ends its input and resolves when it has exited, or after `timeoutMs`. */
  end(timeoutMs: number): Promise<void>;
  /** Resolves when the helper has exited, however (absent: not told). */
  exited?: Promise<void>;
}

/** Spawns `sh -c SCRIPT NAME ARGS...` in a session of its own, its standard input a pipe from llmserve. */
export function spawnLineReader(script: string, name: string, args: readonly string[], env: NodeJS.ProcessEnv): Promise<LineReader> {
  return new Promise((resolve, reject) => {
    // detached: in a session of its own, so that a signal to llmserve's group (Ctrl-C, `kill -- -PGID`) does not
    // end it with llmserve; it ends when its input closes, which happens however llmserve ends.
    const child = spawn('/bin/sh', ['-c', script, name, ...args], { env, detached: true, stdio: ['pipe', 'ignore', 'ignore'] });
    const stdin = child.stdin!;
    // EPIPE once the helper is gone: nothing to do about it, and it must not become an uncaught error.
    stdin.on('error', () => {});
    const exited = new Promise<void>((done) => child.once('exit', () => done()));
    child.once('error', reject);
    child.once('spawn', () => {
      // A later 'error' (none is expected: it is never signalled or sent to) must not become an uncaught one.
      child.on('error', () => {});
      // Neither the process nor its pipe keeps llmserve's event loop alive.
      child.unref();
      (stdin as Socket).unref();
      resolve({
        writeLine(line) {
          if (!stdin.destroyed && stdin.writable) stdin.write(`${line}\n`);
        },
        async end(timeoutMs) {
          stdin.end();
          let timer: NodeJS.Timeout | undefined;
          await Promise.race([exited, new Promise<void>((done) => (timer = setTimeout(done, timeoutMs)))]);
          clearTimeout(timer);
        },
        exited,
      });
    });
  });
}
