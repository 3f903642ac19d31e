// The configuration module's public surface.
export type { CliOptions, Config, KeyEntry, ProxyConfig, Secrets, TlsConfig } from './types.js';
export { loadConfig, parseConfigText, type LoadConfigDeps } from './load.js';
export { DEFAULT_ROUTES, DEFAULTS, MASTER_KEY_ENV, RESERVED_TOP_KEYS } from './defaults.js';
export { hashKey, weakKeyNote } from './keys.js';
export { loadKeysFile, readKeysFile, type KeysFileDeps } from './keys-file.js';
export { checkExtraArgs } from './extra-args.js';
export { resolveEnvRef, resolveEnvRefs, isEnvRef } from './env-ref.js';
export { didYouMean, editDistance } from './did-you-mean.js';
export { FLAGS, nameFromModel } from './resolve.js';
