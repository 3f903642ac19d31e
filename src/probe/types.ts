// What `probe` finds out besides the plan, and the report it prints (the `--json` shape).
import type { DrainConfig, ProxyConfig, RestartConfig } from '../config/types.js';
import type { Gpu } from '../gpu/types.js';
import type { RuntimeInfo } from '../supervisor/runtime-file.js';

/** Result of `vllm --version`. */
export interface VllmVersionFact {
  /** The program run (vllm.command[0]). */
  command: string;
  found: boolean;
  /** The version number, or null when the output could not be read as one. */
  version: string | null;
  /** The raw output (trimmed, at most 400 characters), for an unknown version. */
  raw: string;
  exitCode: number | null;
}

/** Whether a port can be bound now; `error` is the errno code when it cannot (EADDRINUSE, EACCES). */
export interface PortFact {
  host: string;
  port: number;
  free: boolean;
  error: string | null;
}

/** Whether the probe directory can hold probe files. */
export interface ProbeDirFact {
  dir: string;
  explicit: boolean;
  exists: boolean;
  writable: boolean;
  /** Why not (errno code), or null. */
  error: string | null;
}

/** A running `start` found through the runtime file in the probe directory. */
export interface RunningFact {
  pid: number;
  alive: boolean;
  /** The runtime file when its llmserve owns the directory now (supervisor/runtime-file.ts runningOwner): start stops. */
  owner: RuntimeInfo | null;
}

/** Everything `probe` measured on the machine, apart from the plan. */
export interface ProbeFacts {
  vllm: VllmVersionFact;
  proxyPort: PortFact;
  backendPort: PortFact;
  probeDir: ProbeDirFact;
  /** `proxy.tls.cert` / `proxy.tls.key` that cannot be read: [what, file, errno]. */
  tlsUnreadable: [string, string, string][];
  /** Readable TLS files that start would still refuse (not PEM, a key of another certificate): the message; absent when fine. */
  tlsInvalid?: string;
  /** The fix start gives for it (the generic TLS fix when absent). */
  tlsInvalidFix?: string;
  /** The certificate's dates as start would warn about them (expired, not yet valid, expiring soon); absent when fine. */
  tlsWarning?: string;
  running: RunningFact | null;
  /** Every model's backend port (the first is `backendPort`); absent = only `backendPort`. */
  backendPorts?: PortFact[];
  /** A Ray head's own port (6379), which start checks too; absent without --role head. */
  rayPort?: PortFact;
  /** Whether `ray.command` can be run (head or worker); absent without --role. */
  rayFound?: boolean;
  /** Why `ray.command` cannot be run when it exists (EACCES: ...); absent otherwise. */
  rayUnrunnable?: string;
  /** `proxy.metrics_port` on 127.0.0.1; absent when none is set. */
  metricsPort?: PortFact;
  /** Why start could not open its log file (`LLMSERVE_LOG_FILE`), as start says it; absent when fine or unset. */
  logFileError?: string;
  /** Whether the usage store's directory can be written; absent for a worker or without one. */
  usageDir?: ProbeDirFact;
  /** start's warning about a low open-file limit; absent when the limit is fine. */
  openFilesWarning?: string;
}

/** A model's weights against the memory of the GPUs that load them. */
export interface WeightFit {
  /** Bytes of weight files; null when not local. */
  weightBytes: number | null;
  /** Total memory of those GPUs, in bytes; null when unknown. */
  gpuMemoryBytes: number | null;
  /** weightBytes / gpuMemoryBytes, rounded to 3 decimals; null when either is unknown. */
  weightShare: number | null;
}

/** One model in the `probe --json` report: what start would give its vLLM, and its weights against its own GPUs. */
export interface ProbeModelEntry extends WeightFit {
  name: string;
  path: string;
  /** nvidia-smi indices of its GPUs (-1 for a MIG instance, which has none); null when they could not be assigned. */
  gpus: number[] | null;
  /** Their UUIDs (`GPU-...`, `MIG-...`; '' when unknown), in the same order; null when they could not be assigned. */
  gpuUuids: string[] | null;
  cudaVisibleDevices: string | null;
  tensorParallelSize: number | null;
  pipelineParallelSize: number | null;
  /**
   * `env`: the configured variables (environment_variables, its vllm.env) as its vLLM gets them, secret-looking ones
   * redacted, CUDA_VISIBLE_DEVICES as its gpus set it; `envRemoved`: those llmserve leaves out (VLLM_PORT, VLLM_API_KEY, key variables).
   */
  vllm: { argv: string[]; commandLine: string; env: Record<string, string>; envRemoved: string[] };
  backend: PortFact;
}

/** One problem that stops `start`: the stable code, the message, and the fix lines. */
export interface ProblemEntry {
  code: string;
  message: string;
  details: string[];
}

/** The `probe --json` object (nested, never dotted keys). */
export interface ProbeReport {
  /** True when `start` would proceed (no problems). */
  ok: boolean;
  /** The GPUs llmserve would use (after CUDA_VISIBLE_DEVICES), with nvidia-smi's indices. */
  gpus: Gpu[];
  /** Every GPU found, with `selected` marking those CUDA_VISIBLE_DEVICES leaves visible. */
  allGpus: (Gpu & { selected: boolean })[];
  gpuSource: 'nvidia-smi' | 'systeminformation' | 'none' | null;
  cudaVisibleDevices: string | null;
  /** The size `start` would pass to vLLM; null when it could not be chosen (see problems). */
  tensorParallelSize: number | null;
  tensorParallel: { size: number; reason: string; requested: number | 'auto' } | null;
  model: {
    path: string;
    servedName: string;
    isLocalPath: boolean;
    exists: boolean;
    /** A file, not a directory: a single .gguf file, or a file given by mistake (a problem). */
    isFile: boolean;
    hasConfigJson: boolean;
    attentionHeads: number | null;
    /** `num_key_value_heads` (grouped-query attention); null when config.json has none. */
    keyValueHeads: number | null;
    weightBytes: number | null;
    /** Total memory of the GPUs the first model uses (all used ones for one model), in bytes; null when unknown. */
    gpuMemoryBytes: number | null;
    /** weightBytes / gpuMemoryBytes, rounded to 3 decimals; null when either is unknown. */
    weightShare: number | null;
  };
  /** `envRemoved`: configured variables vLLM does not get (VLLM_PORT, VLLM_API_KEY, key variables). */
  vllm: VllmVersionFact & { argv: string[]; commandLine: string; envRemoved: string[] };
  backend: PortFact;
  /** Every model (one entry without a models: list); the fields above describe the first. */
  models: ProbeModelEntry[];
  /** The Ray role (`single` without --role), the nodes a head waits for, and the `ray start` it runs (null without a role). */
  cluster: { role: 'single' | 'head' | 'worker'; nodes: number; head: string | null; ray: { argv: string[]; commandLine: string; found: boolean; port: PortFact | null } | null };
  proxy: PortFact & { tls: boolean; auth: boolean };
  probes: ProbeDirFact & { intervalSeconds: number };
  config: RedactedConfig;
  warnings: string[];
  /** Each problem as one string: the message followed by its fix. */
  problems: string[];
  problemDetails: ProblemEntry[];
}

/** The resolved configuration as `probe` shows it: key names only, values `[redacted]`. */
export interface RedactedConfig {
  file: string | null;
  format: 'llmserve' | 'litellm' | null;
  model: string;
  servedModelName: string;
  vllm: { command: string[]; port: number; tensorParallelSize: number | 'auto'; args: string[]; env: Record<string, string> };
  /** The proxy's settings as resolved, keys replaced by their names and kinds. */
  proxy: Pick<ProxyConfig, 'host' | 'port' | 'auth' | 'keysFile' | 'routes' | 'modelAliases' | 'maxBodyBytes' | 'firstByteTimeout' | 'headersTimeout' | 'bodyTimeout' | 'keepAliveTimeout' | 'tls' | 'workers'> & {
    keys: { name: string; kind: 'key' | 'key_sha256'; value: '[redacted]' }[];
  };
  probes: { dir: string; explicit: boolean; interval: number };
  /** Seconds; `engineStall` 0: the engine-stall watchdog is off. */
  timeouts: { startup: number; stop: number; stall: number; engineStall: number };
  drain: DrainConfig;
  restart: RestartConfig;
  log: { format: 'text' | 'json' };
  environment: Record<string, string>;
  notes: string[];
}
