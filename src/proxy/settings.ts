// What the proxy needs to run: built by the supervisor from the Config and sent over IPC, never on argv.
import { DEFAULT_ROUTES } from '../config/defaults.js';
import type { KeyPolicy } from '../config/key-policy.js';
import type { ProxyConfig } from '../config/types.js';
import type { BackendActivity } from './backend-activity.js';
import type { UsageSettings } from './cost.js';

/**
 * The backend's lifecycle as the proxy sees it; only `ready` forwards requests. `failed`: a model whose restart
 * budget ran out while the others keep serving (several models, `probes.require: any`); it never comes back.
 */
export type BackendState = 'starting' | 'ready' | 'restarting' | 'draining' | 'failed';

/** The proxy's own configuration as resolved (config/types.ts), sent as it is: one definition for both. */
type ConfiguredProxy = Pick<
  ProxyConfig,
  'host' | 'port' | 'auth' | 'keysFile' | 'routes' | 'modelAliases' | 'maxBodyBytes' | 'firstByteTimeout' | 'headersTimeout' | 'bodyTimeout' | 'keepAliveTimeout' | 'tls' | 'logHealth'
>;

/** A key as the proxy gets it: its name, the SHA-256 of its value (never the value) and its limits. */
export interface KeyEntryDigest {
  name: string;
  sha256Hex: string;
  policy?: KeyPolicy;
}

/** Everything the proxy child needs, as sent in the IPC `start` message. Times are in seconds; port 0 = ephemeral. */
export interface ProxySettings extends ConfiguredProxy {
  /** Where vLLM listens, e.g. http://127.0.0.1:3000. */
  backendUrl: string;
  /** The public model name, equal to vLLM's --served-model-name by default. */
  servedModelName: string;
  /** Keys from the configuration itself (not from keysFile, which the proxy reads on its own), with their limits. */
  keys: KeyEntryDigest[];
  /**
   * keysFile's keys as last loaded (at config load, then as the last proxy reported them): what a proxy restarted
   * while the file is broken serves, instead of none of the file's. Absent = none known.
   */
  fileKeys?: KeyEntryDigest[];
  /**
   * The TLS certificate and key in force (PEM), as the last proxy reported them: what a proxy restarted, or a worker
   * replaced, serves when the files on disk do not load now (a renewal caught half-written, a bad pair a SIGHUP
   * refused). Absent = none known yet.
   */
  tlsInForce?: TlsInForce;
  logFormat: 'text' | 'json';
  color: boolean;
  /** Initial backend state. */
  state: BackendState;
  /** Backend restarts so far (every model's), for llmserve_backend_restarts_total; absent = 0. */
  restarts?: number;
  /** The usage store and which keys are metered; absent = in memory, keys with a policy only. */
  usage?: UsageSettings;
  /** A second listener on 127.0.0.1 serving only GET /metrics, without a key; absent or null = none. */
  metricsPort?: number | null;
  /**
   * How long a connection to vLLM may stay idle in the pool, ms: below vLLM's keep-alive (VLLM_HTTP_TIMEOUT_KEEP_ALIVE,
   * upstream/idle.ts); 0 = a new connection per request; absent = 4000 (vLLM's default 5 s).
   */
  upstreamIdleMs?: number;
  /** Proxy processes sharing the port (Node cluster); absent or 1 = this process serves alone. */
  workers?: number;
  /**
   * A cluster worker (set by its primary): leaves the lines every worker would repeat (listening, keys loaded, backend
   * state) to the one worker that says them.
   */
  quiet?: boolean;
  /**
   * Several models: each one's served name and vLLM; requests are routed by their `model`. Absent (or one entry)
   * = the single-model path, which never reads a body to route.
   */
  backends?: { name: string; url: string; loras?: string[] }[];
  /**
   * The LoRA adapters vLLM serves (`--lora-modules`; every model's), by name: served names too, for the metrics and
   * the usage store (not counted as `other`). With several models each backend's own are in `backends[].loras`.
   */
  loraNames?: string[];
  /** Several models: each backend's initial state by served name (a restarted proxy learns them here). */
  backendStates?: Record<string, BackendState>;
  /** Several models: readiness needs `all` of them ready (default) or `any`. */
  require?: 'all' | 'any';
  /**
   * The origins vLLM's CORS middleware allows (its `--allowed-origins`; the first model's with several), which the
   * proxy's own answers follow too; absent = vLLM's default, every origin (`*`).
   */
  corsOrigins?: string[];
}

/** A certificate and its key, PEM text. */
export interface TlsInForce {
  cert: string;
  key: string;
}

/** Messages the proxy child sends to the supervisor. */
export type ChildMessage =
  | { type: 'listening'; port: number }
  | { type: 'fatal'; code: string; message: string }
  | { type: 'drained'; remaining: number }
  /** Every state message up to `seq` is applied (in every worker): the supervisor may now update the probe files. */
  | { type: 'state-applied'; seq: number }
  /** The keys file's keys now in force (at the proxy's start, after a reload): a restarted proxy gets them as fileKeys. */
  | { type: 'keys-loaded'; fromFile: KeyEntryDigest[] }
  /** The TLS material now served (at the proxy's start, after a reload): a restarted proxy gets it as tlsInForce. */
  | ({ type: 'tls-loaded' } & TlsInForce)
  /**
   * The answer to `activity`: per backend URL, ms since it last sent response bytes (null: never), the least of every
   * worker's; and the exchanges waiting on it (backend-activity.ts), every worker's summed.
   */
  | ({ type: 'activity'; seq: number } & BackendActivity);

/** Messages the supervisor sends to the proxy child. */
export type ParentMessage =
  | { type: 'start'; settings: ProxySettings }
  /** `seq` (increasing) asks for a `state-applied` answer once the state is in force. */
  | { type: 'state'; state: BackendState; model?: string; seq?: number; restarts?: number }
  | { type: 'reload-keys' }
  /** SIGHUP with proxy.tls: the certificate and key files are read again (a renewed certificate). */
  | { type: 'reload-tls' }
  /** SIGTERM arrived: /health/readiness answers 503 from now on, while requests are still served (drain.delay). */
  | { type: 'stopping' }
  | { type: 'drain'; timeoutMs: number }
  /** How recently each backend sent bytes (a slow /health: busy or hung?), how many exchanges wait on it (stalled?); answered by `activity` with the same seq. */
  | { type: 'activity'; seq: number }
  /** From a cluster primary to a quiet worker: the worker that spoke for all is gone, say it from now on. */
  | { type: 'speak' };

/** The default route allowlist: the configuration's own list, so the two cannot drift apart. */
export const defaultRoutes: readonly string[] = DEFAULT_ROUTES;

/** Settings with test-friendly defaults, overridden by `over`. */
export function proxySettings(over: Partial<ProxySettings> = {}): ProxySettings {
  return {
    host: '127.0.0.1',
    port: 0,
    backendUrl: 'http://127.0.0.1:3000',
    servedModelName: 'model',
    auth: true,
    keys: [],
    keysFile: null,
    routes: [...defaultRoutes],
    modelAliases: {},
    maxBodyBytes: 10 * 1024 * 1024,
    firstByteTimeout: 600,
    headersTimeout: 60,
    bodyTimeout: 300,
    keepAliveTimeout: 65,
    tls: null,
    logHealth: false,
    logFormat: 'text',
    color: false,
    state: 'ready',
    ...over,
  };
}

const states: ReadonlySet<string> = new Set(['starting', 'ready', 'restarting', 'draining', 'failed']);

/** True when a value names a backend state. */
export function isBackendState(value: unknown): value is BackendState {
  return typeof value === 'string' && states.has(value);
}
