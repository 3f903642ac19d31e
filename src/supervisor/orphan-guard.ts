// The orphan guard: a small shell process that outlives a SIGKILLed llmserve and stops the process groups it left.
import type { Logger } from '../log.js';
import { safeKill, spawnLineReader, type LineReader, type ManagedChild, type SpawnOptions } from './child.js';

/**
 * The guard's script. Each input line is the whole list of process groups to guard (an empty line: none). When its
 * input closes with groups still listed, llmserve ended without stopping them (SIGKILL, the OOM killer): it marks the
 * probe files in $2 down, as every exit of llmserve leaves them (the directory made again if it was removed, as
 * llmserve's own writes make it), then stops the groups as llmserve would have: SIGTERM
 * to each leader (vLLM's API server then stops its engine in order), up to $1 tenths of a second for the leaders to
 * exit, then SIGKILL to each whole group (the orphans a leader leaves: vLLM's EngineCore and workers). A probe file
 * is created only where nothing is at its name: `set -C` alone opens an existing non-regular file (dash, busybox and
 * bash all do), through a symlink too, and opening a FIFO for writing waits for a reader, so the guard would never
 * reach vLLM. `set -C` still leaves alone a regular file that appears at the name meanwhile. SIGHUP and SIGINT are
 * ignored: `pkill -HUP -f llmserve` (meant as a keys reload) and a stray SIGINT must not end the safety net unseen.
 */
const SCRIPT = `trap '' HUP INT
groups=''
while IFS= read -r line; do groups=$line; done
[ -n "$groups" ] || exit 0
mkdir -p -- "$2" 2>/dev/null
for f in not-ready not-healthy; do
  [ -e "$2/$f" ] || [ -h "$2/$f" ] || (set -C; : > "$2/$f") 2>/dev/null
done
for g in $groups; do kill -s TERM "$g" 2>/dev/null; done
n=0
while [ "$n" -lt "$1" ]; do
  alive=''
  for g in $groups; do kill -s 0 "$g" 2>/dev/null && alive=1; done
  [ -n "$alive" ] || break
  sleep 0.1
  n=$((n + 1))
done
for g in $groups; do kill -s KILL -- "-$g" 2>/dev/null; done
`;

/** The name the guard shows in `ps` ($0 of its script). */
export const GUARD_NAME = 'llmserve-orphan-guard';

type Spawn = (options: SpawnOptions) => Promise<ManagedChild>;

/** How many times a guard that exits on its own is started again. */
const MAX_GUARD_RESTARTS = 3;

/** Guards process groups against llmserve's own SIGKILL. */
export interface OrphanGuard {
  /** The spawn function the supervisor uses, each group it starts guarded until no process of it is left. */
  wrap(spawn: Spawn): Spawn;
  /** An orderly exit (every group already stopped): clears the list and waits for the guard to exit. */
  release(): Promise<void>;
}

/** Side effects of the orphan guard (tests give their own). */
export interface OrphanGuardDeps {
  startReader?: (script: string, name: string, args: readonly string[], env: NodeJS.ProcessEnv) => Promise<LineReader>;
  /** How often a group whose leader exited is checked for members left, ms. */
  pollMs?: number;
}

/** Starts the guard; when it cannot start, says so once and returns one that guards nothing. */
export async function startOrphanGuard(
  graceMs: number,
  probeDir: string,
  env: NodeJS.ProcessEnv,
  logger: Logger,
  deps: OrphanGuardDeps = {},
): Promise<OrphanGuard> {
  const startReader = deps.startReader ?? spawnLineReader;
  // Whether any process of a group is left (a zombie counts until it is reaped).
  const groupAlive = (pgid: number) => safeKill(-pgid, 0);
  const pollMs = deps.pollMs ?? 200;
  let reader: LineReader | null = null;
  let released = false;
  let restarts = 0;
  const groups = new Set<number>();
  const publish = () => reader?.writeLine([...groups].join(' '));
  const start = async (): Promise<void> => {
    try {
      const started = await startReader(SCRIPT, GUARD_NAME, [String(Math.max(1, Math.ceil(graceMs / 100))), probeDir], env);
      reader = started;
      // A guard started again is told the groups it guards at once (a first one has none yet).
      if (groups.size > 0) publish();
      // A guard that ends while llmserve runs (a signal sent to every process of the service) is started again, with
      // the groups it guarded; a few times at most, so that one that cannot live is not started in a loop.
      void started.exited?.then(() => {
        if (released || reader !== started) return;
        reader = null;
        if (restarts >= MAX_GUARD_RESTARTS) {
          logger.warn(`the orphan guard exited ${restarts + 1} times: not started again; if llmserve is SIGKILLed now, vLLM keeps running until the container ends`);
          return;
        }
        restarts += 1;
        logger.warn('the orphan guard exited while llmserve runs (a signal sent to it?): starting it again');
        void start();
      });
    } catch (err) {
      logger.warn(`cannot start the orphan guard (/bin/sh: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}): if llmserve is SIGKILLed, vLLM keeps running until the container ends, and the probe files stay as they are`);
    }
  };
  await start();
  // A group stays listed after its leader exits while orphans of it live (vLLM's EngineCore and workers), and is
  // dropped once empty, so that a process group id the kernel hands out again later is never signalled.
  const dropWhenEmpty = (pgid: number) => {
    if (groupAlive(pgid)) {
      setTimeout(() => dropWhenEmpty(pgid), pollMs).unref();
      return;
    }
    groups.delete(pgid);
    publish();
  };
  return {
    wrap: (spawn) => async (options) => {
      const child = await spawn(options);
      groups.add(child.pid);
      publish();
      void child.exited.then(() => dropWhenEmpty(child.pid));
      return child;
    },
    async release() {
      released = true;
      groups.clear();
      publish();
      await reader?.end(1000);
      reader = null;
    },
  };
}
