// The configuration module's public surface.
export type { CliOptions, Config, DrainConfig, KeyEntry, ProxyConfig, RestartConfig, Secrets, TlsConfig } from './types.js';
export { DEFAULT_DRAIN, DEFAULT_RESTART, DEFAULT_STALL_TIMEOUT } from './reliability.js';
export { loadConfig, parseConfigText, type LoadConfigDeps } from './load.js';
export { DEFAULT_ROUTES, DEFAULTS, MASTER_KEY_ENV, RESERVED_TOP_KEYS } from './defaults.js';
export { hashKey, weakKeyNote } from './keys.js';
export { hasCountedLimits, hasPolicy, withoutCountedLimits, parseExpires, POLICY_FIELDS, type BudgetPeriod, type KeyPolicy } from './key-policy.js';
export { DEFAULT_USAGE_FLUSH_INTERVAL, USAGE_DIR_ENV, parseUsage, usageDir, type UsageConfig, type UsageFileSettings } from './usage-settings.js';
export { readKeysFile, type KeysFileDeps } from './keys-file.js';
export { checkExtraArgs } from './extra-args.js';
export { resolveEnvRef, resolveEnvRefs, isEnvRef } from './env-ref.js';
export { didYouMean, editDistance } from './did-you-mean.js';
export { FLAGS, nameFromModel } from './resolve.js';
