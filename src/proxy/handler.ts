// The per-request decision: health, drain, auth, route, state, size, then forward (or answer locally).
import type { IncomingMessage, ServerResponse } from 'node:http';
import { authenticate } from './auth.js';
import { BodyTooLarge, declaredLength, readBody } from './body.js';
import * as errors from './errors.js';
import type { Exchange } from './exchange.js';
import type { Forwarder } from './forward.js';
import type { BackendHealth } from './health.js';
import type { KeyRing } from './keyring.js';
import { sharedBackendModelEntries, withBackendFields, type ModelEntry } from './backend-models.js';
import { decideModel, decideUploadModel, modelList, readUploadModel, retrievedModelId } from './models.js';
import { compileRoutes, estimatesTokens, healthPaths, normalisePath, withV1 } from './routes.js';
import type { BackendState, ProxySettings } from './settings.js';
import { modelNotAllowed } from '../limits/rejections.js';
import { PROMETHEUS_CONTENT_TYPE } from '../metrics/registry.js';
import { Meter } from '../usage/meter.js';
import { planBody, type BodyPlan } from '../usage/request.js';
import type { CostControl } from './cost.js';
import { isMultipart } from './multipart.js';
import { isPreflight } from './preflight.js';
import { metricsBackends, routeBody, routeMultipart, type RouteTarget, type Router } from './router.js';

/** What the handler reads and uses; the state is read through a function so changes apply at once. */
export interface HandlerDeps {
  settings: ProxySettings;
  state: () => BackendState;
  /** True once a stop was announced: readiness fails while requests are still served. */
  stopping?: () => boolean;
  keys: KeyRing;
  forwarder: Forwarder;
  health: BackendHealth;
  /** Unix seconds, for the `created` field of the local model list. */
  startedAt: number;
  /** Per-key limits, usage accounting and metrics. */
  cost: CostControl;
  /** Several models: routing by the request's model and per-model state; null with one model. */
  router: Router | null;
}

const getOnly: readonly string[] = ['GET', 'HEAD'];

/** Why a metered key's JSON body that does not parse is refused (vLLM's Python reader takes NaN, Infinity, UTF-16). */
const NOT_A_JSON_OBJECT = 'expected a JSON object in UTF-8 (NaN and Infinity are not JSON)';

/** Builds the request handler; `expectContinue` is true when Node gave the request to `checkContinue`. */
export function createHandler(deps: HandlerDeps): (req: IncomingMessage, res: ServerResponse, ex: Exchange, expectContinue: boolean) => void {
  const { settings, forwarder, health } = deps;
  const routes = compileRoutes(settings.routes);
  const { router } = deps;
  // With several models the name map also holds each served name: every request's model is looked up.
  const aliases = router === null ? settings.modelAliases : router.names;
  const rewriting = Object.keys(aliases).length > 0;
  // One model: its served name and its LoRA adapters (those aliases do not list already), as vLLM's own list has them.
  const served: string[] =
    router === null
      ? [settings.servedModelName, ...(settings.loraNames ?? []).filter((n) => n !== settings.servedModelName && !Object.hasOwn(settings.modelAliases, n))]
      : router.targets.map((t) => t.name);
  /**
   * The model list the proxy answers itself: with several models, only those still served (a model whose restart
   * budget ran out is gone for good) and the aliases of those; null while none is ready (a 503, as one model's
   * vLLM answers until it is up).
   */
  const currentModels = (): { data: { id: string }[] } | null => {
    if (router === null) return modelList(served, settings.modelAliases, deps.startedAt) as { data: { id: string }[] };
    if (!router.targets.some((t) => t.state === 'ready')) return null;
    const liveTargets = router.targets.filter((t) => t.state !== 'failed');
    const live = liveTargets.map((t) => t.name);
    const aliases = Object.fromEntries(Object.entries(settings.modelAliases).filter(([, target]) => live.includes(target)));
    // Each live model's LoRA adapters, as its vLLM lists them (an adapter named like a model or an alias is that one).
    const loras = liveTargets.flatMap((t) => t.loras).filter((name) => router.names[name] === name && !live.includes(name));
    return modelList([...live, ...loras], aliases, deps.startedAt) as { data: { id: string }[] };
  };
  // vLLM's model entries, asked once a second at most however many lists and retrieves come.
  const backendModels = sharedBackendModelEntries();
  /** The backends that may answer now: the one, or with several models those ready. */
  const readyBackendUrls = (): string[] => (router === null ? [settings.backendUrl] : router.targets.filter((t) => t.state === 'ready').map((t) => t.url));
  /** The proxy's entries given vLLM's own fields (max_model_len, ...), asked of every ready backend. */
  const withVllmFields = async (entries: ModelEntry[]): Promise<ModelEntry[]> => {
    if (entries.length === 0) return entries;
    return withBackendFields(entries, await backendModels(readyBackendUrls()), settings.modelAliases);
  };
  const sendModels = async (res: ServerResponse, ex: Exchange, allowlist: ReadonlySet<string> | null): Promise<void> => {
    const listed = currentModels();
    if (listed === null) {
      ex.rejected = 'unavailable';
      return errors.sendError(res, errors.unavailable(router?.overall() ?? deps.state()));
    }
    // Only the names this key may use (all of them without an allowlist).
    const entries = (allowlist === null ? listed.data : listed.data.filter((m) => allowlist.has(m.id))) as ModelEntry[];
    errors.sendJson(res, 200, { object: 'list', data: await withVllmFields(entries) });
  };

  /** True when the allowlist names the served model `name` itself or one of its aliases. */
  const mayUseByAnyName = (allowlist: ReadonlySet<string>, name: string): boolean => {
    if (allowlist.has(name)) return true;
    for (const allowed of allowlist) if (settings.modelAliases[allowed] === name) return true;
    return false;
  };

  /**
   * 404 for a model that is not served, for a key with an allowlist in the words of a refused one (OpenAI's "does not
   * exist or you do not have access to it"): whether a name it may not use exists is not the key's to learn.
   */
  const refuseUnknown = (res: ServerResponse, ex: Exchange, model: string, allowlist: ReadonlySet<string> | null): void => {
    if (allowlist === null) return errors.sendError(res, errors.unknownModel(model));
    ex.rejected = 'model';
    errors.sendError(res, modelNotAllowed(model));
  };

  /**
   * One entry of the model list (OpenAI's retrieve), for a key that may use it, with vLLM's own fields; a name only
   * vLLM lists (a LoRA adapter without aliases) too. 404 `model_not_found` otherwise, as OpenAI answers.
   */
  const sendModel = async (res: ServerResponse, ex: Exchange, id: string): Promise<void> => {
    ex.model = id;
    const state = deps.state();
    const listed = router !== null || state === 'ready' ? currentModels() : null;
    if (listed === null) {
      ex.rejected = 'unavailable';
      return errors.sendError(res, errors.unavailable(router?.overall() ?? state));
    }
    const allowlist = limiter.active() ? (limiter.policy(ex.keyName)?.models ?? null) : null;
    if (allowlist !== null && !allowlist.has(id)) return refuseUnknown(res, ex, id, allowlist);
    if (!admitKey(res, ex)) return;
    const byId = await backendModels(readyBackendUrls());
    const own = listed.data.find((m) => m.id === id) as ModelEntry | undefined;
    const entry = own === undefined ? byId.get(id) : withBackendFields([own], byId, settings.modelAliases)[0];
    if (entry === undefined) return refuseUnknown(res, ex, id, allowlist);
    errors.sendJson(res, 200, entry);
  };

  /** Several models: forwards to the model's backend, or answers 503 + Retry-After while that one is not ready. */
  const forwardTo = (req: IncomingMessage, res: ServerResponse, ex: Exchange, body: Buffer | null, target: RouteTarget) => {
    if (target.state !== 'ready') {
      ex.rejected = 'unavailable';
      return errors.sendError(res, errors.unavailable(target.state));
    }
    forwarder.forward(req, res, ex, body, target.url);
  };
  const { cost } = deps;
  const { limiter } = cost;

  /**
   * Admits a request of a key with a policy (budget, rpm, tpm, max_parallel: its slot is freed and its tokens counted
   * when it ends), answering a refusal itself; true at once for a key without one. Model lists and retrieves the
   * proxy answers itself are admitted too: they count toward rpm as vLLM's would, and each may ask vLLM.
   */
  const admitKey = (res: ServerResponse, ex: Exchange): boolean => {
    if (!limiter.active() || limiter.policy(ex.keyName) === undefined) return true;
    const admission = limiter.admit(ex.keyName);
    if (!admission.ok) {
      ex.rejected = admission.reason;
      errors.sendError(res, admission.error);
      return false;
    }
    ex.admitted = true;
    if (admission.headers !== null) for (const name in admission.headers) res.setHeader(name, admission.headers[name]!);
    return true;
  };

  /** 400 for a body the proxy must read and cannot (not a JSON object, an upload with two `model` fields). */
  const refuseBody = (res: ServerResponse, ex: Exchange, why: string): void => {
    ex.rejected = 'invalid_body';
    errors.sendError(res, errors.unreadableBody(why));
  };

  /** Reads a request body under the size cap; on failure answers 413 (or drops the connection) and returns null. */
  const readBodyOrAnswer = async (req: IncomingMessage, res: ServerResponse, ex: Exchange): Promise<Buffer | null> => {
    try {
      return await readBody(req, settings.maxBodyBytes);
    } catch (err) {
      if (err instanceof BodyTooLarge) {
        ex.rejected = 'too_large';
        errors.sendError(res, errors.tooLarge(settings.maxBodyBytes));
      } else res.destroy();
      return null;
    }
  };

  const serveMetrics = async (res: ServerResponse) => {
    // Every model's vLLM metrics, not only the first one's.
    const text = await cost.metrics.render(metricsBackends(settings, router));
    if (res.headersSent || res.destroyed) return;
    res.writeHead(200, { ...errors.requestIdHeader(res), 'content-type': PROMETHEUS_CONTENT_TYPE, 'content-length': Buffer.byteLength(text) });
    res.end(text);
  };

  /** The slow path of a metered key (a policy, or usage.track: all): read the body, check, count. */
  const forwardMetered = async (req: IncomingMessage, res: ServerResponse, ex: Exchange, expectContinue: boolean, path: string, method: string) => {
    // Disabled and expired keys were refused with the key check.
    const policy = limiter.policy(ex.keyName);
    const allowlist = policy?.models ?? null;
    if (path === '/v1/models' && (allowlist !== null || rewriting)) {
      if (!admitKey(res, ex)) return;
      return sendModels(res, ex, allowlist);
    }
    if (expectContinue) res.writeContinue();
    let plan: BodyPlan | null = null;
    let body: Buffer | null = null;
    let bodyBytes = declaredLength(req) ?? 0;
    if (method === 'POST' && isJson(req.headers['content-type'])) {
      const raw = await readBodyOrAnswer(req, res, ex);
      if (raw === null) return;
      bodyBytes = raw.length;
      plan = planBody(raw, path, settings.servedModelName, aliases);
      if (plan.unreadable) return refuseBody(res, ex, NOT_A_JSON_OBJECT);
      if (plan.model !== null) ex.model = plan.model;
      if (plan.unknown) return refuseUnknown(res, ex, plan.model ?? '-', allowlist);
      body = plan.body ?? raw;
    }
    let uploadModel: string | null = null;
    let uploadTarget: RouteTarget | undefined;
    if ((router !== null || rewriting || allowlist !== null) && method === 'POST' && isMultipart(req.headers['content-type'])) {
      // Several models (or aliases): an upload goes to the model its `model` form field names. With one model and no
      // aliases it is only read, for the allowlist: a LoRA adapter vLLM serves may be named there too.
      const raw = await readBodyOrAnswer(req, res, ex);
      if (raw === null) return;
      bodyBytes = raw.length;
      const type = req.headers['content-type']!;
      const routed = router !== null ? routeMultipart(raw, type, router) : null;
      const upload = routed ?? (rewriting ? decideUploadModel(raw, type, settings.servedModelName, aliases) : readUploadModel(raw, type));
      if (upload.kind === 'invalid') return refuseBody(res, ex, upload.why);
      if (upload.model !== '-') ex.model = uploadModel = upload.model;
      if (upload.kind === 'unknown') return refuseUnknown(res, ex, upload.model, allowlist);
      body = upload.body ?? raw;
      if (routed?.kind === 'forward') uploadTarget = routed.target;
    }
    if (allowlist !== null) {
      // The public name asked for, as with JSON (an alias is checked as the alias). Without a readable model (a
      // Responses follow-up, /tokenize, an upload without one) the request goes to the served (first) model: a key
      // may send it when it may use that model by any of its names.
      const asked = plan?.model ?? uploadModel ?? null;
      const model = asked ?? (router === null ? settings.servedModelName : router.targets[0]!.name);
      if (asked !== null ? !allowlist.has(model) : !mayUseByAnyName(allowlist, model)) {
        ex.rejected = 'model';
        return errors.sendError(res, modelNotAllowed(model));
      }
    }
    if (!admitKey(res, ex)) return;
    // Every route's reported usage counts; only a route that runs the model is charged an estimate without one.
    ex.meter = new Meter(plan?.injected ?? false, estimatesTokens(path) ? bodyBytes : null);
    if (router === null) return forwarder.forward(req, res, ex, body);
    const target = uploadTarget ?? router.find(plan?.model ?? null);
    if (target === undefined) return errors.sendError(res, errors.unknownModel(plan?.model ?? '-'));
    forwardTo(req, res, ex, body, target);
  };

  const readiness = async (res: ServerResponse) => {
    const state = deps.state();
    if (state !== 'ready') {
      errors.sendJson(res, 503, { status: state, backend: 'unknown' }, { 'retry-after': String(errors.retryAfterSeconds) });
      return;
    }
    const result = router === null ? await health.check() : await routedHealth(router, settings.require ?? 'all');
    if (result.ok && deps.state() === 'ready') errors.sendJson(res, 200, { status: 'healthy', state: 'ready', backend: result.detail });
    else errors.sendJson(res, 503, { status: 'unhealthy', state: deps.state(), backend: result.detail }, { 'retry-after': String(errors.retryAfterSeconds) });
  };

  const forwardRewritten = async (req: IncomingMessage, res: ServerResponse, ex: Exchange, multipart: boolean) => {
    const raw = await readBodyOrAnswer(req, res, ex);
    if (raw === null) return;
    const decision = multipart ? decideUploadModel(raw, req.headers['content-type']!, settings.servedModelName, aliases) : decideModel(raw, settings.servedModelName, aliases);
    if (decision.kind === 'invalid') return refuseBody(res, ex, decision.why);
    ex.model = decision.model;
    if (decision.kind === 'unknown') {
      errors.sendError(res, errors.unknownModel(decision.model));
      return;
    }
    forwarder.forward(req, res, ex, decision.body ?? raw);
  };

  /** Several models: read the body to find the model, then forward to its backend. */
  const forwardRouted = async (req: IncomingMessage, res: ServerResponse, ex: Exchange, r: Router, multipart: boolean) => {
    const raw = await readBodyOrAnswer(req, res, ex);
    if (raw === null) return;
    const decision = multipart ? routeMultipart(raw, req.headers['content-type']!, r) : routeBody(raw, r);
    if (decision.kind === 'invalid') return refuseBody(res, ex, decision.why);
    ex.model = decision.model;
    if (decision.kind === 'unknown') return errors.sendError(res, errors.unknownModel(decision.model));
    forwardTo(req, res, ex, decision.body ?? raw, decision.target);
  };

  /**
   * The allowlisted route of a normalised path and the path it stands for, or null. LiteLLM's spelling without /v1
   * (`/chat/completions`) is checked and forwarded as the /v1 route it stands for: req.url gets the /v1 prefix.
   */
  const matchRoute = (req: IncomingMessage, path: string | null): { route: NonNullable<ReturnType<typeof routes.match>>; path: string } | null => {
    if (path === null) return null;
    const route = routes.match(path);
    if (route !== null) return { route, path };
    const v1 = withV1(path);
    const viaV1 = v1 === null ? null : routes.match(v1);
    if (v1 === null || viaV1 === null) return null;
    req.url = '/v1' + req.url!;
    return { route: viaV1, path: v1 };
  };

  /** A CORS pre-flight on an allowlisted route, to the first ready backend (or 503 while none is). */
  const preflight = (req: IncomingMessage, res: ServerResponse, ex: Exchange, path: string | null) => {
    // A retrieve (`/v1/models/{id}`) is allowed with `/v1/models`: a page's pre-flight for it must pass too. It goes to
    // vLLM as `/v1/models` (vLLM's CORS layer answers alike for any path), so that no path outside the allowlist does.
    if (routes.match('/v1/models') !== null && retrievedModelId(req.url) !== null) req.url = '/v1/models';
    else if (matchRoute(req, path) === null) return errors.sendError(res, errors.unknownRoute('OPTIONS', ex.path));
    const state = deps.state();
    if (state === 'draining') {
      ex.rejected = 'unavailable';
      return errors.sendError(res, errors.unavailable('draining'));
    }
    if (router !== null) return forwardTo(req, res, ex, null, router.targets.find((t) => t.state === 'ready') ?? router.targets[0]!);
    if (state !== 'ready') {
      ex.rejected = 'unavailable';
      return errors.sendError(res, errors.unavailable(state));
    }
    forwarder.forward(req, res, ex, null);
  };

  const corsOrigins = settings.corsOrigins ?? ['*'];
  const corsAny = corsOrigins.includes('*');

  return (req, res, ex, expectContinue) => {
    const method = req.method ?? 'GET';
    let path = normalisePath(req.url);
    // A browser hands a cross-origin answer to the page only with this header. vLLM's answers carry their own (its
    // CORS middleware) or none, and the forwarder keeps exactly that; the proxy's own answers (401, 429, 503, ...) get
    // it here, by vLLM's policy, so that a page shows the error rather than a bare CORS failure.
    const origin = req.headers.origin;
    if (origin !== undefined && (corsAny || corsOrigins.includes(origin))) {
      res.setHeader('access-control-allow-origin', corsAny ? '*' : origin);
      if (!corsAny) res.setHeader('vary', 'Origin');
    }

    // RFC 9112 refuses an HTTP/1.1 request without Host; Node's own check is off (server.ts) so that the refusal is ours.
    if (req.httpVersionMajor === 1 && req.httpVersionMinor === 1 && req.headers.host === undefined) return errors.sendError(res, errors.missingHost);
    // An HTTP/1.1 request with an `Expect` that did not come through checkContinue came through checkExpectation
    // (server.ts): Node sends every other expectation there, and ignores Expect on HTTP/1.0.
    const expect = req.headers.expect;
    if (expect !== undefined && !expectContinue && req.httpVersionMajor === 1 && req.httpVersionMinor === 1) return errors.sendError(res, errors.expectationFailed(expect));
    if (path === healthPaths.liveness || path === healthPaths.liveliness) {
      ex.health = true;
      if (!getOnly.includes(method)) return errors.sendError(res, errors.methodNotAllowed(method, getOnly));
      return errors.sendJson(res, 200, "I'm alive!");
    }
    if (path === healthPaths.readiness) {
      ex.health = true;
      if (!getOnly.includes(method)) return errors.sendError(res, errors.methodNotAllowed(method, getOnly));
      if (deps.state() === 'draining' || deps.stopping?.() === true) return errors.sendError(res, errors.unavailable('draining'));
      void readiness(res);
      return;
    }

    // A browser's CORS pre-flight (before a cross-origin call) never carries a key, by the fetch standard: on an
    // allowlisted route it goes to vLLM as it is, and vLLM's CORS middleware answers it (`--allowed-origins`, every
    // origin by default) before any endpoint runs. Both headers, as that middleware requires to treat it as one, and as
    // vLLM will get them (preflight.ts).
    if (method === 'OPTIONS' && isPreflight(req)) {
      return preflight(req, res, ex, path);
    }

    // Auth before the draining check: a request without a valid key is a 401 in every state, never a 5xx.
    if (settings.auth) {
      const result = authenticate(req.headers, deps.keys.current());
      if (!result.ok) {
        ex.rejected = 'auth';
        return errors.sendError(res, result.reason === 'missing' ? errors.missingKey : errors.invalidKey);
      }
      ex.keyName = result.name;
      // A disabled or expired key is a 401 in every state too: not a 503 that an SDK would retry for nothing.
      const refused = limiter.active() ? limiter.checkKey(ex.keyName) : null;
      if (refused !== null) {
        ex.rejected = refused.reason;
        return errors.sendError(res, refused.error);
      }
    }
    if (deps.state() === 'draining') {
      ex.rejected = 'unavailable';
      return errors.sendError(res, errors.unavailable('draining'));
    }

    if (path === '/metrics') {
      if (!getOnly.includes(method)) return errors.sendError(res, errors.methodNotAllowed(method, getOnly));
      ex.counted = false;
      void serveMetrics(res);
      return;
    }

    // OpenAI's `models.retrieve(id)` (and LiteLLM's route for it): vLLM has none, the proxy answers from its list.
    if (getOnly.includes(method) && routes.match('/v1/models') !== null) {
      const id = retrievedModelId(req.url);
      if (id !== null) return void sendModel(res, ex, id);
    }

    const matched = matchRoute(req, path);
    if (matched === null) return errors.sendError(res, errors.unknownRoute(method, ex.path));
    const { route } = matched;
    path = matched.path;
    if (route.methods !== null && !route.methods.includes(method)) return errors.sendError(res, errors.methodNotAllowed(method, route.methods));

    // With several models the state is checked per model, once the request's model is known.
    const state = deps.state();
    if (state !== 'ready' && router === null) {
      ex.rejected = 'unavailable';
      return errors.sendError(res, errors.unavailable(state));
    }

    const length = declaredLength(req);
    if (length !== null && length > settings.maxBodyBytes) {
      ex.rejected = 'too_large';
      return errors.sendError(res, errors.tooLarge(settings.maxBodyBytes));
    }

    // Keys with a policy (or every key with usage.track: all) leave the fast path here; others never pay for it.
    if (cost.trackAll || (limiter.active() && limiter.policy(ex.keyName) !== undefined)) {
      void forwardMetered(req, res, ex, expectContinue, path, method);
      return;
    }

    if (rewriting && path === '/v1/models') return void sendModels(res, ex, null);

    // Every check passed: only now let the client send its body.
    if (expectContinue) res.writeContinue();

    if (router !== null) {
      // Several models: a JSON body or a multipart upload names its model; anything else (a GET) goes to the first.
      const type = req.headers['content-type'];
      if (method === 'POST' && (isJson(type) || isMultipart(type))) void forwardRouted(req, res, ex, router, isMultipart(type));
      else forwardTo(req, res, ex, null, router.targets[0]!);
      return;
    }
    const type = req.headers['content-type'];
    if (rewriting && method === 'POST' && (isJson(type) || isMultipart(type))) {
      // An upload names its model in a form field: an alias there is rewritten too (only when aliases exist).
      void forwardRewritten(req, res, ex, isMultipart(type));
      return;
    }
    forwarder.forward(req, res, ex, null);
  };
}

/** Readiness detail of a model whose restart budget ran out. */
const GAVE_UP = 'gave up (restart budget spent)';

/** Readiness with several models: the ready backends' /health, judged against `require`. */
async function routedHealth(router: Router, require: 'all' | 'any'): Promise<{ ok: boolean; detail: string }> {
  const ready = router.targets.filter((t) => t.state === 'ready');
  const results = await Promise.all(ready.map(async (t) => ({ name: t.name, ...(await t.health.check()) })));
  const healthy = results.filter((r) => r.ok);
  const ok = require === 'all' ? healthy.length === router.targets.length : healthy.length > 0;
  const detail = router.targets.map((t) => `${t.name}: ${results.find((r) => r.name === t.name)?.detail ?? (t.state === 'failed' ? GAVE_UP : t.state)}`).join('; ');
  return { ok, detail };
}

/** JSON bodies (or bodies with no declared type) are parsed; multipart uploads only for their `model` field. */
function isJson(type: string | undefined): boolean {
  // Media types are case-insensitive (RFC 9110 8.3.1): vLLM's FastAPI parses `Application/JSON` as JSON, so must we.
  // The media type only, before any parameter: a multipart boundary may hold "json" (WebKit's random ones do).
  // An empty Content-Type is no type: FastAPI then reads the body as JSON too.
  return type === undefined || type.trim() === '' || /^[^;]*json/i.test(type);
}
