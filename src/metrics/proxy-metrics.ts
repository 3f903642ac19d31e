// The llmserve_* metrics of the proxy. Labels carry key NAMES (from the config), never keys.
import { fetchAllBackendMetrics, type MetricsSources } from './backend.js';
import { WORKER_REPLACEMENTS_METRIC } from '../proxy/worker-metrics.js';
import { Counter, Histogram, Registry, type RegistrySnapshot } from './registry.js';

/** Seconds: from fast local answers to 10-minute generations. */
export const LATENCY_BUCKETS: readonly number[] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600];

const STATES = ['starting', 'ready', 'restarting', 'draining', 'failed'] as const;

/** Every metric of the proxy, with the updates the proxy makes. */
export class ProxyMetrics {
  readonly registry = new Registry();
  readonly requests = this.registry.add(new Counter('llmserve_requests_total', 'Requests answered, by key name, model and HTTP status (499: the client left; 502: the backend broke the response mid-way; 503: cut at the end of the drain).', ['key', 'model', 'status']));
  readonly duration = this.registry.add(new Histogram('llmserve_request_duration_seconds', 'Time from request to the end of the response.', ['key', 'model'], LATENCY_BUCKETS));
  readonly ttfb = this.registry.add(new Histogram('llmserve_time_to_first_byte_seconds', 'Time from request to the response headers (for streams: the prefill).', ['key', 'model'], LATENCY_BUCKETS));
  readonly tokens = this.registry.add(new Counter('llmserve_tokens_total', 'Tokens counted from the backend\'s usage reports, by key name, model and kind (prompt, completion).', ['key', 'model', 'kind']));
  readonly estimated = this.registry.add(new Counter('llmserve_estimated_requests_total', 'Requests whose tokens were estimated because the backend reported no usage.', ['key', 'model']));
  readonly inflight = this.registry.add(new Counter('llmserve_requests_in_flight', 'Requests being handled now.', [], 'gauge'));
  readonly streams = this.registry.add(new Counter('llmserve_active_streams', 'Streamed responses (server-sent events) open now.', [], 'gauge'));
  readonly rejected = this.registry.add(new Counter('llmserve_rejected_total', 'Requests refused by the proxy itself, by reason.', ['reason']));
  // Every proxy worker sees the same restarts and state: with several workers these are the largest, not the sum.
  readonly restarts = this.registry.add(new Counter('llmserve_backend_restarts_total', 'Backend restarts (every model\'s vLLM started again after a failure).', [], 'counter', 'max'));
  readonly state = this.registry.add(new Counter('llmserve_backend_state', 'The backend state as the proxy sees it: 1 for the current state.', ['state'], 'gauge', 'max'));
  // Counted by the cluster primary (worker-metrics.ts): 0 in every worker's own registry.
  readonly workerReplacements = this.registry.add(new Counter(WORKER_REPLACEMENTS_METRIC, 'Proxy worker processes (proxy.workers above 1) that died and were replaced while the others served.'));
  readonly backendUp = this.registry.add(new Counter('llmserve_backend_metrics_up', '1 when the backends\' own metrics (vllm:*) could be read for this scrape (with several models: every one\'s).', [], 'gauge'));
  private readonly statusText = new Map<number, string>();
  /**
   * In a proxy worker (`proxy.workers` > 1): every worker's snapshot, this one's included, gathered through the
   * cluster primary, so that a scrape, whichever worker it reaches, shows the whole proxy.
   */
  gather: (() => Promise<RegistrySnapshot[]>) | null = null;

  /** `initialState` null: no state set (a registry that only sums other workers' snapshots). */
  constructor(initialState: string | null = 'starting') {
    if (initialState !== null) this.setState(initialState);
  }

  /** Counts one finished request (positional arguments: no allocation per request). */
  request(key: string, model: string, statusCode: number, durationMs: number, ttfbMs: number | null): void {
    let status = this.statusText.get(statusCode);
    if (status === undefined) this.statusText.set(statusCode, (status = String(statusCode)));
    this.requests.inc(1, key, model, status);
    this.duration.observe(durationMs / 1000, key, model);
    if (ttfbMs !== null) this.ttfb.observe(ttfbMs / 1000, key, model);
  }

  /** Counts the tokens of a request. */
  countTokens(key: string, model: string, prompt: number, completion: number, estimated: boolean): void {
    if (prompt > 0) this.tokens.inc(prompt, key, model, 'prompt');
    if (completion > 0) this.tokens.inc(completion, key, model, 'completion');
    if (estimated) this.estimated.inc(1, key, model);
  }

  /** Follows the backend state (restarts are counted by the supervisor: see setRestarts). */
  setState(next: string): void {
    for (const s of STATES) this.state.set(s === next ? 1 : 0, s);
  }

  /**
   * Takes the supervisor's count of backend restarts. Why not count entries into `restarting` here: with several
   * models the proxy-wide state stays `ready` while one model restarts, and a vLLM that fails while loading again
   * restarts without leaving `restarting`. A lower total (a stale message) never lowers the counter.
   */
  setRestarts(total: number): void {
    if (total > this.restarts.value()) this.restarts.set(total);
  }

  /** The page: llmserve's metrics, then vLLM's own (`vllm:*`), read from every backend (one per model) for this scrape. */
  async render(sources: MetricsSources): Promise<string> {
    const [backend, snapshots] = await Promise.all([fetchAllBackendMetrics(sources), this.gather === null ? null : this.gather()]);
    let page: ProxyMetrics = this;
    if (snapshots !== null) {
      page = new ProxyMetrics(null);
      for (const s of snapshots) page.registry.absorb(s);
    }
    page.backendUp.set(backend.up ? 1 : 0);
    return page.registry.render() + backend.text;
  }

  /** This process's series as plain data (for the worker that answers a scrape). */
  snapshot(): RegistrySnapshot {
    return this.registry.snapshot();
  }

  /** Its gauges and max-merged series (left out of a gone worker's last snapshot: see Registry.unsummedNames). */
  unsummedNames(): string[] {
    return this.registry.unsummedNames();
  }
}
