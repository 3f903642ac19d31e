// What the supervisor is given: a plan (what to run) and its side effects (how to run it).
import type { Logger } from '../log.js';
import type { ProbeFiles } from '../probes/files.js';
import type { HttpCheckResult } from '../probes/http-check.js';
import type { ManagedChild, SpawnOptions } from './child.js';
import type { RestartSettings } from './restart-policy.js';

/** Everything the supervisor runs, fully resolved before it starts. */
export interface SupervisorPlan {
  vllm: {
    argv: string[];
    env: NodeJS.ProcessEnv;
    port: number;
    servedModelName: string;
    /**
     * Flags llmserve may drop (with a warning, retrying at once) when the installed vLLM rejects them as
     * unrecognized: removed flags whose intent is now the default, and the `--shutdown-timeout` llmserve added.
     */
    droppableFlags: string[];
  };
  proxy: { file: string; args: string[]; env: NodeJS.ProcessEnv; settings: unknown; port: number; publicUrl: string; insecureTls: boolean };
  /** Seconds. */
  healthInterval: number;
  startupTimeout: number;
  stallTimeout: number;
  stopTimeout: number;
  drainDelay: number;
  drainTimeout: number;
  restart: RestartSettings;
}

/** Side effects, injected with real defaults so the logic can be tested without real processes. */
export interface SupervisorDeps {
  logger: Logger;
  probes: ProbeFiles;
  spawn: (options: SpawnOptions) => Promise<ManagedChild>;
  httpGet: (url: string, options: { timeoutMs: number; insecure?: boolean }) => Promise<HttpCheckResult>;
  isPortFree: (port: number, host: string) => Promise<boolean>;
  /** Pids holding GPU memory (nvidia-smi --query-compute-apps), or null when unknown. */
  gpuMemoryHolders: () => Promise<number[] | null>;
  now: () => number;
  /** Names the process listening on a port (`pid N (cmd)`), or null when unknown; for port-in-use messages. */
  describePortHolder?: (port: number) => string | null;
}

/** The life-cycle states of DESIGN.md. */
export type SupervisorState = 'starting' | 'ready' | 'unhealthy' | 'restarting' | 'draining' | 'stopping';
