// The route allowlist, compiled once: a Map for exact paths, a short list of prefixes, no regex per request.

/** Paths the proxy answers itself, without a key. */
export const healthPaths = {
  liveness: '/health/liveness',
  liveliness: '/health/liveliness',
  readiness: '/health/readiness',
} as const;

/** Forwarded to vLLM with a valid key, whatever the allowlist says. */
export const metricsPath = '/metrics';

/** Methods per known route; a configured route missing here accepts any method. */
const knownMethods: Readonly<Record<string, readonly string[]>> = {
  '/v1/chat/completions': ['POST'],
  '/v1/completions': ['POST'],
  '/v1/responses': ['POST'],
  '/v1/responses/*': ['GET', 'POST', 'DELETE'],
  '/v1/embeddings': ['POST'],
  '/v1/models': ['GET'],
  '/v1/audio/*': ['POST'],
  '/tokenize': ['POST'],
  '/detokenize': ['POST'],
  '/v1/rerank': ['POST'],
  '/v1/score': ['POST'],
  [metricsPath]: ['GET'],
};

/**
 * Routes that run the model on the request (generate, embed, score): a success that reports no usage gets an estimate.
 * Why not every route: a model list or `/tokenize` costs no inference, and an estimate from its body charged a budget.
 */
const estimatedExact: ReadonlySet<string> = new Set(['/v1/chat/completions', '/v1/completions', '/v1/responses', '/v1/embeddings', '/v1/rerank', '/v1/score']);
const estimatedPrefix = '/v1/audio/';

/** True when a successful answer without usage on this (normalised, /v1) path is charged estimated tokens. */
export function estimatesTokens(path: string): boolean {
  return estimatedExact.has(path) || (path.length > estimatedPrefix.length && path.startsWith(estimatedPrefix));
}

/** A matched route: the allowed methods, null meaning any. */
export interface RouteMatch {
  methods: readonly string[] | null;
}

/** The compiled allowlist. */
export interface RouteTable {
  /** The route for a normalised path, or null when it is not allowed. */
  match(path: string): RouteMatch | null;
}

/** Compiles the allowlist (`/x` exact, `/x/*` prefix); /metrics is always included. */
export function compileRoutes(routes: readonly string[]): RouteTable {
  const exact = new Map<string, RouteMatch>();
  const prefixes: { prefix: string; route: RouteMatch }[] = [];
  for (const route of [...routes, metricsPath]) {
    const methods = knownMethods[route] ?? null;
    if (route.endsWith('/*')) prefixes.push({ prefix: route.slice(0, -1), route: { methods } });
    else exact.set(route, { methods });
  }
  // Longest prefix first, so that a narrower rule wins.
  prefixes.sort((a, b) => b.prefix.length - a.prefix.length);
  return {
    match(path) {
      const hit = exact.get(path);
      if (hit !== undefined) return hit;
      for (const p of prefixes) if (path.length > p.prefix.length && path.startsWith(p.prefix)) return p.route;
      return null;
    },
  };
}

/** OpenAI's routes that LiteLLM also serves without `/v1` (exact paths, and prefixes ending in `/`). */
const unprefixedExact: ReadonlySet<string> = new Set(['/chat/completions', '/completions', '/embeddings', '/models', '/responses']);
const unprefixedPrefixes: readonly string[] = ['/responses/', '/audio/'];

/**
 * The `/v1` path for an OpenAI route spelt without it (`/chat/completions`), or null. LiteLLM answers both spellings
 * and its documentation gives clients a base URL without `/v1`: such clients keep working after the migration.
 */
export function withV1(path: string): string | null {
  if (unprefixedExact.has(path)) return '/v1' + path;
  for (const prefix of unprefixedPrefixes) if (path.length > prefix.length && path.startsWith(prefix)) return '/v1' + path;
  return null;
}

/**
 * A request target in absolute-form (`http://host/path?q`) as origin-form (`/path?q`); any other target as it is.
 * RFC 9112 section 3.2.2: a server must accept absolute-form (a client told to use llmserve as a forward proxy sends
 * it; nginx serves it), where the allowlist saw no leading `/` and answered 404.
 */
export function originForm(url: string): string {
  const m = /^https?:\/\/[^/?#]*/i.exec(url);
  if (m === null) return url;
  const rest = url.slice(m[0].length);
  return rest.charCodeAt(0) === 47 /* / */ ? rest : `/${rest}`;
}

/**
 * The path of a request URL, decoded and checked, or null when it must be refused: not origin-form, a fragment,
 * `.`/`..` segments, empty segments (`//`), backslashes, encoded slashes or bad percent-encoding. A refused path is a
 * 404, so that nothing like `/v1/models/../../scale_elastic_ep` can reach a route outside the allowlist.
 */
export function normalisePath(url: string | undefined): string | null {
  if (url === undefined || url.charCodeAt(0) !== 47 /* / */) return null;
  // A fragment has no place in a request target (RFC 9112 origin-form), and the forwarder sends the target as it
  // came: refusing it keeps what was checked and what vLLM gets the same path.
  if (url.includes('#')) return null;
  const q = url.indexOf('?');
  let path = q >= 0 ? url.slice(0, q) : url;
  if (path.includes('%')) {
    const lower = path.toLowerCase();
    if (lower.includes('%2f') || lower.includes('%5c')) return null;
    try {
      path = decodeURIComponent(path);
    } catch {
      return null;
    }
  }
  if (path.includes('\\') || path.includes('//') || path.includes('\0')) return null;
  if (path.includes('/.')) {
    for (const segment of path.split('/')) if (segment === '.' || segment === '..') return null;
  }
  return path;
}
