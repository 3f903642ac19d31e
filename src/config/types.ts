// The resolved configuration: built once from flags > environment > file > defaults, then read everywhere.
import type { KeyPolicy } from './key-policy.js';
import type { UsageConfig } from './usage-settings.js';

/** One API key the proxy accepts. Only the digest is kept in memory after loading. */
export interface KeyEntry {
  /** Name used in logs and metrics; never the key itself. `master` for the master key. */
  name: string;
  /** SHA-256 digest of the key, 32 bytes. */
  sha256: Buffer;
  /** True when the config held only the digest (`key_sha256`): the raw key is unknown to llmserve. */
  digestOnly: boolean;
  /** True for keys read from `proxy.keys_file` (re-read on SIGHUP, so not fixed for the process's lifetime). */
  fromKeysFile?: boolean;
  /** Limits of this key (models, rpm, tpm, max_parallel, budget, expires, disabled); absent = unlimited. */
  policy?: KeyPolicy;
}

/** Where the key material comes from, so that vLLM's environment can be cleaned of it. */
export interface Secrets {
  /** Raw key values known to llmserve (master key and named keys), for log redaction and the `check` command. */
  values: string[];
  /** Environment variable names whose values are keys (LLMSERVE_MASTER_KEY, LITELLM_MASTER_KEY, os.environ/ refs). */
  envNames: string[];
  /**
   * The names among them that `proxy.keys_file` refers to: the proxy re-reads that file (at its start and on
   * SIGHUP), so its environment keeps these while vLLM's loses them.
   */
  keysFileEnvNames: string[];
}

/** The command-line options shared by start, probe and check (undefined = not given). */
export interface CliOptions {
  config?: string;
  model?: string;
  servedModelName?: string;
  port?: string;
  host?: string;
  backendPort?: string;
  tensorParallelSize?: string;
  probeDir?: string;
  healthInterval?: string;
  startupTimeout?: string;
  stopTimeout?: string;
  /** `--stall-timeout`, `--drain-delay`, `--drain-timeout` (seconds) and `--restart on-failure|never`. */
  stallTimeout?: string;
  /** `--engine-stall-timeout` (seconds, 0: off). */
  engineStallTimeout?: string;
  drainDelay?: string;
  drainTimeout?: string;
  restart?: string;
  logFormat?: string;
  /** `--role single|head|worker`, `--nodes N`, `--head ADDRESS` (multi-node on Ray). */
  role?: string;
  nodes?: string;
  head?: string;
  /** Extra vLLM args after `--`. */
  extraArgs?: string[];
}

/** `proxy.tls`: the certificate and key files the public port serves HTTPS with. */
export interface TlsConfig {
  cert: string;
  key: string;
}

/** The `proxy:` section as resolved: the public port and what it checks and forwards. */
export interface ProxyConfig {
  port: number;
  host: string;
  /** False only when `proxy.auth: false` was set explicitly. */
  auth: boolean;
  keys: KeyEntry[];
  /** `proxy.keys_file`, resolved to an absolute path; re-read on SIGHUP. */
  keysFile: string | null;
  /** Route allowlist (exact paths, or prefixes ending in `/*`). */
  routes: string[];
  /** Public name → served name rewrites. */
  modelAliases: Record<string, string>;
  maxBodyBytes: number;
  /** Seconds to wait for the backend's first response byte. */
  firstByteTimeout: number;
  /** Seconds a client has to send its headers / its body. */
  headersTimeout: number;
  bodyTimeout: number;
  /** Seconds an idle client connection is kept open for its next request. */
  keepAliveTimeout: number;
  tls: TlsConfig | null;
  /** Log health probes in the access log. */
  logHealth: boolean;
  /** `proxy.metrics_port`: a second listener on 127.0.0.1 serving only /metrics without a key; null = none. */
  metricsPort: number | null;
  /** `proxy.workers`: proxy processes sharing the port (Node cluster), resolved from `auto` (the default); > 1 only without key limits. */
  workers: number;
}

/** The restart policy of vLLM and of the proxy (seconds; fractions allowed). */
export interface RestartConfig {
  /** `never`: the first unrequested exit gives up (exit 1). Any exit not asked for is a failure, code 0 included. */
  policy: 'on-failure' | 'never';
  /** The Nth failure within `windowS` gives up (both probe files, exit 1). */
  maxFailures: number;
  windowS: number;
  /** Exponential backoff: the first delay, doubled per consecutive failure up to the max. */
  backoffInitialS: number;
  backoffMaxS: number;
  /** Healthy this long after a restart: the backoff starts again from the initial delay. */
  resetAfterS: number;
}

/** The graceful drain on SIGTERM/SIGINT (seconds). */
export interface DrainConfig {
  /** Keep serving this long after the signal (covers the load balancer's endpoint removal). */
  delay: number;
  /** Then refuse new requests and wait at most this long for in-flight ones (streams included). */
  timeout: number;
}

/** One model served by its own vLLM: the single-model settings, or one `models:` entry resolved. */
export interface ModelConfig {
  model: string;
  servedModelName: string;
  /** nvidia-smi indices, a count allocated in order, or null = every visible GPU (the single-model form). */
  gpus: number[] | number | null;
  /** Its vLLM's port on 127.0.0.1. */
  port: number;
  tensorParallelSize: number | 'auto';
  /** Extra vLLM flags (the shared `vllm.args` first, then the entry's, then those after `--`). */
  args: string[];
  /** Extra environment (the shared `vllm.env` overridden by the entry's). */
  env: Record<string, string>;
}

/** Where this process sits in a Ray cluster: `single` (no Ray), `head` (Ray head + vLLM) or `worker` (Ray only). */
export interface ClusterConfig {
  role: 'single' | 'head' | 'worker';
  /** Nodes in the cluster, the head included (1 unless head). */
  nodes: number;
  /** The head's address (HOST:PORT) for a worker; null otherwise. */
  head: string | null;
}

/** The whole configuration, resolved from flags, environment and file: what every command works from. */
export interface Config {
  /** Absolute path of the config file read, or null. */
  configFile: string | null;
  /** Which format the file was in. */
  configFormat: 'llmserve' | 'litellm' | null;
  /** Model path or hub id, exactly as vLLM gets it. */
  model: string;
  /** Public name = vLLM's --served-model-name. */
  servedModelName: string;
  vllm: {
    /** The command, split into argv (default ["vllm", "serve"]). */
    command: string[];
    /** Backend port on 127.0.0.1. */
    port: number;
    tensorParallelSize: number | 'auto';
    /** Extra flags from the file and from after `--`, in that order. */
    args: string[];
    /** Extra environment for vLLM (already resolved: os.environ/ read). */
    env: Record<string, string>;
    /** Leave vLLM's uvicorn access log on (default off: llmserve adds --disable-uvicorn-access-log). */
    accessLog: boolean;
  };
  /**
   * Every model to serve, at least one; the first is also `model`, `servedModelName` and `vllm` (port, size, args,
   * env) above, so single-model code keeps reading those.
   */
  models: ModelConfig[];
  cluster: ClusterConfig;
  ray: { command: string[] };
  proxy: ProxyConfig;
  probes: {
    dir: string;
    /** True when the directory came from a flag, env or file (then an unwritable one is fatal). */
    dirExplicit: boolean;
    /** Health loop interval, seconds (may be a fraction). */
    interval: number;
    /** With several models: ready (and healthy) when `all` of them are, or when `any` one is. */
    require: 'all' | 'any';
  };
  timeouts: {
    /** Hard start-up deadline for vLLM, seconds. */
    startup: number;
    /** Grace between SIGTERM and SIGKILL when stopping a child, seconds. */
    stop: number;
    /** Start-up stall timeout: vLLM printed nothing (not even a progress frame) for this long, seconds. */
    stall: number;
    /**
     * Run-time engine stall: requests waited on vLLM this long while it sent nothing and its engine's figures stood
     * still, seconds; 0: off (the default).
     */
    engineStall: number;
  };
  restart: RestartConfig;
  drain: DrainConfig;
  /** The usage store and token accounting (`usage:`). */
  usage: UsageConfig;
  log: { format: 'text' | 'json' };
  /** `environment_variables` of a LiteLLM config: applied to llmserve's own environment and vLLM's. */
  environment: Record<string, string>;
  secrets: Secrets;
  /** Things worth one line at start (ignored LiteLLM sections, weak keys, ...). */
  notes: string[];
  /**
   * Top-level keys reserved for later versions (`models`),
   * accepted as written (os.environ/ already read) so that newer configs do not break this version.
   */
  extra: Record<string, unknown>;
}
