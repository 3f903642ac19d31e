// The defaults every resolved Config starts from, in one place.

/** Routes the proxy forwards when `proxy.routes` is not set (exact paths, or prefixes ending in `/*`). */
export const DEFAULT_ROUTES: readonly string[] = Object.freeze([
  '/v1/chat/completions',
  '/v1/completions',
  '/v1/responses',
  '/v1/responses/*',
  '/v1/embeddings',
  '/v1/models',
  '/v1/audio/*',
  '/tokenize',
  '/detokenize',
  '/v1/rerank',
  '/v1/score',
]);

/** Scalar defaults (seconds for every timeout and interval). */
export const DEFAULTS = Object.freeze({
  configFileName: 'llmserve.yaml',
  vllmCommand: Object.freeze(['vllm', 'serve']) as readonly string[],
  rayCommand: Object.freeze(['ray']) as readonly string[],
  /** The port `ray start --head` listens on (its GCS), as workers' --head ADDRESS names it. */
  rayPort: 6379,
  vllmPort: 3000,
  proxyPort: 8080,
  /** Public port when OPENBAYES_SERVING_PRODUCTION is non-empty. */
  proxyPortProduction: 80,
  proxyHost: '0.0.0.0',
  maxBodyBytes: 64 * 1024 * 1024,
  firstByteTimeout: 600,
  headersTimeout: 30,
  bodyTimeout: 300,
  /** Above the idle timeout of most load balancers (60 s), which must close an idle connection before the proxy does. */
  keepAliveTimeout: 65,
  probeDir: '/etc/probe',
  probeInterval: 10,
  startupTimeout: 1800,
  stopTimeout: 30,
  logFormat: 'text' as 'text' | 'json',
});

/** Top-level keys of later versions: accepted and kept in `Config.extra` (none at present). */
export const RESERVED_TOP_KEYS: readonly string[] = Object.freeze([]);

/** Environment variables that hold the master key, strongest first. */
export const MASTER_KEY_ENV: readonly string[] = Object.freeze(['LLMSERVE_MASTER_KEY', 'LITELLM_MASTER_KEY']);

/** Variables vLLM's environment never gets, whoever sets them, besides key variables (engine/command.ts buildVllmEnv says why). */
export const VLLM_ENV_DROPPED: readonly string[] = Object.freeze(['VLLM_PORT', 'VLLM_API_KEY']);

/** Key values that are published in examples and docs: as good as no key. */
export const PLACEHOLDER_KEYS: readonly string[] = Object.freeze(['your-master-key-here', 'sk-1234', 'sk-12345', 'changeme', 'change-me', 'password']);

/** Keys shorter than this get a warning note. */
export const MIN_KEY_LENGTH = 16;
