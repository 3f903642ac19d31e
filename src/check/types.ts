// What `check` probes and what it reports (the `--json` shape).

/** Where the running service is, as `check` resolved it. */
export interface CheckTargets {
  proxy: { host: string; port: number; tls: boolean };
  backend: { host: string; port: number };
  /** Several models (from the runtime file): every backend with its model; absent = only `backend`. */
  backends?: { host: string; port: number; model: string }[];
  /** With several backends, `probes.require`: `any` is healthy while one model's vLLM passes (as start's probe files). */
  require?: 'all' | 'any';
  /** The public model name the /v1/models lists must contain; null when unknown (status only). */
  model: string | null;
  /** The raw key for the authenticated check; null when none is known or auth is off. */
  key: string | null;
  /** Keys of the keys file to try, in order, when the proxy answers 401 to `key` (not loaded yet); absent: none. */
  fallbackKeys?: string[];
  /** False only when `proxy.auth: false`: then /v1/models through the proxy is checked without a key. */
  auth: boolean;
  /** Why the authenticated check is skipped, or null when it runs. */
  skipAuthenticated: string | null;
  /** A `--role worker` runs in the probe directory (its runtime file says so): no HTTP to check, its probe files say. */
  worker?: { pid: number; head: string };
  /** The runtime file read (`llmserve.json` in the probe directory), or null when there was none. */
  runtimeFile: string | null;
  /** The probe directory the runtime file was looked for in. */
  probeDir: string;
}

/** One check to run. */
export interface CheckSpec {
  name: string;
  url: string;
  headers?: Record<string, string>;
  /** A model id the response's `data[].id` must contain. */
  expectModel?: string;
  /** Model ids of which the response's `data[].id` must contain one (several models under `probes.require: any`). */
  expectOneOf?: string[];
  /** Several models: the model whose vLLM this check probes. */
  backendOf?: string;
  /** vLLM answers it: late when saturated, so a timeout is judged by what the proxy says (busy or not). */
  saturable?: boolean;
}

/** One check's outcome, as printed. */
export interface CheckResult {
  name: string;
  url: string;
  ok: boolean;
  status: number | null;
  ms: number;
  error: string | null;
  /** Only on a check that timed out while the proxy reported vLLM busy (saturated, not hung): why it passed. */
  busy?: string;
}

/** The `check --json` object. */
export interface CheckReport {
  /** Every check passed; with `probes.require: any`, the vLLM checks of at least one model (the others' still listed). */
  healthy: boolean;
  checks: CheckResult[];
  /** Checks that were not run, and why. */
  skipped: { name: string; reason: string }[];
}
