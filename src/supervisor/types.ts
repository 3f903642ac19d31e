// What the supervisor is given: a plan (what to run) and its side effects (how to run it).
import type { RunCommand } from '../gpu/nvidia-smi.js';
import type { Logger } from '../log.js';
import type { ProbeFiles } from '../probes/files.js';
import type { HttpCheckResult } from '../probes/http-check.js';
import type { ManagedChild, SpawnOptions } from './child.js';
import type { RestartSettings } from './restart-policy.js';
import type { StartupProgress } from '../progress.js';

/** One vLLM the supervisor runs (one per model). */
export interface BackendPlan {
  argv: string[];
  env: NodeJS.ProcessEnv;
  port: number;
  servedModelName: string;
  /** The source name of its output lines: `vllm`, or `vllm:NAME` with several models. */
  logName: string;
  /** Its resources in words (GPUs, tensor-parallel size), for the ready summary. */
  summary?: string;
  /**
   * Flags llmserve may drop (with a warning, retrying at once) when the installed vLLM rejects them as
   * unrecognized: removed flags whose intent is now the default, and the `--shutdown-timeout` llmserve added.
   */
  droppableFlags: string[];
}

/** The Ray head this node runs before vLLM (`--role head`). */
export interface RayHeadPlan {
  /** `ray start --head --block ...`. */
  argv: string[];
  env: NodeJS.ProcessEnv;
  /** `ray status` and `ray stop`. */
  statusArgv: string[];
  stopArgv: string[];
  /** Nodes (head included) and GPUs per node to wait for. */
  nodes: number;
  gpusPerNode: number;
}

/** Everything the supervisor runs, fully resolved before it starts. */
export interface SupervisorPlan {
  /** One per model, at least one. */
  backends: BackendPlan[];
  /** With several models: ready and healthy when `all` are, or `any` one is. */
  require: 'all' | 'any';
  /** A Ray head to start (and wait for its nodes) before vLLM; absent without --role head. */
  ray?: RayHeadPlan;
  proxy: {
    file: string;
    args: string[];
    env: NodeJS.ProcessEnv;
    settings: unknown;
    port: number;
    publicUrl: string;
    insecureTls: boolean;
    /** proxy.keys_file, which SIGHUP re-reads; null without one. */
    keysFile: string | null;
    /** proxy.tls's certificate file, which SIGHUP re-reads too (a renewed certificate); null without TLS. */
    tlsCert: string | null;
  };
  /** Seconds. */
  healthInterval: number;
  startupTimeout: number;
  stallTimeout: number;
  /** Requests waiting this long on a vLLM that shows no progress restart it; 0: off (engine-stall.ts). */
  engineStallTimeout: number;
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
  httpGet: (url: string, options: { timeoutMs: number; insecure?: boolean; maxBodyBytes?: number }) => Promise<HttpCheckResult>;
  isPortFree: (port: number, host: string) => Promise<boolean>;
  /**
   * Pids holding GPU memory (nvidia-smi --query-compute-apps); null without nvidia-smi; `{ failed }` saying why when
   * it ran and gave no answer (a hang, an error).
   */
  gpuMemoryHolders: (signal?: AbortSignal) => Promise<number[] | null | { failed: string }>;
  now: () => number;
  /**
   * What a keys file holds as it is now: the variables it reads its keys from (`os.environ/NAME`) and its raw key
   * values (to redact); none when it does not load (the proxy reports that). Absent: not looked at.
   */
  keysFileSecrets?: (file: string) => Promise<{ envNames: string[]; values: string[] }>;
  /** Runs a short command (`ray status`, `ray stop`); needed only with a Ray plan. */
  run?: RunCommand;
  /** Names the process listening on a port (`pid N (cmd)`), or null when unknown; for port-in-use messages. */
  describePortHolder?: (port: number) => string | null;
  /**
   * Listeners on a port that none of `pids` holds, and one's holder described; null when nothing can be told.
   * Absent: not looked at.
   */
  otherListeners?: (port: number, pids: readonly number[]) => { count: number; holder: string | null } | null;
  /** A progress display for one vLLM start-up (phases from its log), its lines named by `label`; absent: every line is printed. */
  startProgress?: (label: string) => StartupProgress;
}

/** The life-cycle states of DESIGN.md. */
export type SupervisorState = 'starting' | 'ready' | 'unhealthy' | 'restarting' | 'draining' | 'stopping';
