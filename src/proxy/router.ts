// Several models behind one proxy: which backend serves a request's `model`, and each backend's state.
import { createBackendHealth, type BackendHealth, type HeardFrom } from './health.js';
import { multipartModel } from './multipart.js';
import { parseJsonObject, withMember } from '../util/json-edit.js';
import type { BackendState, ProxySettings } from './settings.js';
import type { MetricsSources } from '../metrics/backend.js';

/** One model's vLLM as the proxy sees it. */
export interface RouteTarget {
  /** Its served name (vLLM's --served-model-name). */
  name: string;
  /** The LoRA adapters its vLLM serves (`--lora-modules`), sent to it by name, as they are. */
  loras: string[];
  url: string;
  state: BackendState;
  health: BackendHealth;
}

/** The routing table; built only when the settings list more than one backend. */
export interface Router {
  targets: RouteTarget[];
  /** Public name -> served name: the configured aliases plus every served name and LoRA adapter mapped to itself. */
  names: Record<string, string>;
  /** The target for a public name, the first one for null (a request without a model); undefined when unknown. */
  find(model: string | null): RouteTarget | undefined;
  /** The proxy-wide state: `ready` when `all` (or `any`) targets are ready, `failed` when all gave up, else restarting or starting. */
  overall(): BackendState;
}

/** What a routed JSON body comes to. */
export type RouteDecision =
  | { kind: 'forward'; target: RouteTarget; body: Buffer | null; model: string }
  | { kind: 'unknown'; model: string }
  | { kind: 'invalid'; model: string; why: string };

/** Builds the router from the settings; null with one backend (the single-model path stays untouched). */
export function createRouter(settings: ProxySettings, now: () => number, heardFrom?: HeardFrom): Router | null {
  const backends = settings.backends;
  if (backends === undefined || backends.length < 2) return null;
  const targets: RouteTarget[] = backends.map((b) => ({
    name: b.name,
    loras: b.loras ?? [],
    url: b.url,
    state: settings.backendStates?.[b.name] ?? settings.state,
    health: createBackendHealth(b.url, now, heardFrom),
  }));
  const byName = new Map(targets.map((t) => [t.name, t]));
  // A LoRA adapter goes to the vLLM that serves it, by its own name; a served name or an alias of the same name wins.
  const names: Record<string, string> = {};
  for (const t of targets) {
    for (const lora of t.loras) {
      if (byName.has(lora)) continue;
      byName.set(lora, t);
      names[lora] = lora;
    }
  }
  Object.assign(names, settings.modelAliases);
  for (const t of targets) names[t.name] = t.name;
  const requireAll = settings.require !== 'any';
  return {
    targets,
    names,
    find(model) {
      if (model === null) return targets[0];
      const served = Object.hasOwn(names, model) ? names[model] : undefined;
      return served === undefined ? undefined : byName.get(served);
    },
    overall() {
      const ready = requireAll ? targets.every((t) => t.state === 'ready') : targets.some((t) => t.state === 'ready');
      if (ready) return 'ready';
      if (targets.every((t) => t.state === 'failed')) return 'failed';
      return targets.some((t) => t.state === 'restarting') ? 'restarting' : 'starting';
    },
  };
}

/** Reads a JSON body's `model` and picks its backend, rewriting an alias to the served name. */
export function routeBody(raw: Buffer, router: Router): RouteDecision {
  const first = router.targets[0]!;
  const parsed = parseJsonObject(raw);
  if (parsed === null) return { kind: 'forward', target: first, body: null, model: '-' };
  const { text, obj } = parsed;
  if (typeof obj.model !== 'string') return { kind: 'forward', target: first, body: null, model: '-' };
  const model = obj.model;
  const target = router.find(model);
  if (target === undefined) return { kind: 'unknown', model };
  // A served name or a LoRA adapter goes as it is; only an alias is rewritten.
  if (router.names[model] === model) return { kind: 'forward', target, body: null, model };
  return { kind: 'forward', target, body: Buffer.from(withMember(text, 'model', JSON.stringify(target.name)), 'utf8'), model };
}

/**
 * Picks the backend of a multipart upload (OpenAI's audio endpoints) by its `model` form field, rewriting an alias
 * to the served name; without that field it goes to the first model, as a body without a model does.
 */
export function routeMultipart(raw: Buffer, contentType: string, router: Router): RouteDecision {
  const field = multipartModel(raw, contentType);
  if (field === null) return { kind: 'forward', target: router.targets[0]!, body: null, model: '-' };
  if ('refused' in field) return { kind: 'invalid', model: '-', why: field.refused };
  const model = field.value;
  const target = router.find(model);
  if (target === undefined) return { kind: 'unknown', model };
  if (router.names[model] === model) return { kind: 'forward', target, body: null, model };
  const body = Buffer.concat([raw.subarray(0, field.start), Buffer.from(target.name, 'utf8'), raw.subarray(field.end)]);
  return { kind: 'forward', target, body, model };
}

/**
 * The vLLMs whose own metrics /metrics passes through: the one backend, or every model's but those that gave up
 * (stopped for good, they would hold llmserve_backend_metrics_up at 0 for as long as llmserve runs).
 */
export function metricsBackends(settings: ProxySettings, router: Router | null): MetricsSources {
  if (router === null) return { backends: [{ url: settings.backendUrl, name: settings.servedModelName }], several: false };
  return { backends: router.targets.filter((t) => t.state !== 'failed').map((t) => ({ url: t.url, name: t.name })), several: true };
}
