// The proxy's answers when a key's policy refuses a request, in OpenAI's error shape (what OpenAI itself sends).

/** Why a request was refused by a policy; also the `reason` label of llmserve_rejected_total. */
export type RejectReason = 'disabled' | 'expired' | 'model' | 'budget' | 'rpm' | 'tpm' | 'parallel';

/** One refusal: same fields as the proxy's ProxyError, so `sendError` writes it. */
export interface LimitError {
  status: number;
  type: string;
  code: string;
  message: string;
  param?: string | null;
  headers?: Record<string, string>;
}

/** 401: the key is disabled. */
export function disabledKey(): LimitError {
  return { status: 401, type: 'invalid_request_error', code: 'invalid_api_key', message: 'This API key has been disabled.', headers: { 'www-authenticate': 'Bearer' } };
}

/** 401: the key expired (the date is the config's, never the key). */
export function expiredKey(expiresAt: number): LimitError {
  return {
    status: 401,
    type: 'invalid_request_error',
    code: 'invalid_api_key',
    message: `This API key expired at ${new Date(expiresAt).toISOString()}.`,
    headers: { 'www-authenticate': 'Bearer' },
  };
}

/**
 * 404: the key may not use this model. Same status, code and wording as OpenAI for a model the key cannot
 * access, so a key does not learn which other models exist.
 */
export function modelNotAllowed(model: string): LimitError {
  const shown = model.length > 200 ? model.slice(0, 200) + '...' : model;
  return { status: 404, type: 'invalid_request_error', code: 'model_not_found', param: 'model', message: `The model \`${shown}\` does not exist or you do not have access to it.` };
}

/**
 * 429 insufficient_quota: the token budget of the period is spent. Why `x-should-retry: false`: OpenAI's SDKs retry
 * every 429 by themselves (twice by default), and the JavaScript SDK sleeps for the whole Retry-After, which for a
 * rolling budget is hours: the caller's request would hang that long, twice. Both SDKs obey this header and raise
 * the RateLimitError at once; Retry-After stays for clients that schedule their own retry.
 */
export function budgetSpent(tokens: number, period: string, headers: Record<string, string>): LimitError {
  const span = period === 'total' ? 'in total' : `per ${period === '1d' ? 'day' : period === '7d' ? '7 days' : '30 days'}`;
  return {
    status: 429,
    type: 'insufficient_quota',
    code: 'insufficient_quota',
    message: `You exceeded your current quota: this key's budget is ${tokens} tokens ${span}.`,
    headers: { ...headers, 'x-should-retry': 'false' },
  };
}

/** 429 rate_limit_exceeded for requests or tokens per minute (OpenAI's message shape). */
export function rateLimited(kind: 'requests' | 'tokens', limit: number, used: number, waitS: string, headers: Record<string, string>): LimitError {
  const what = kind === 'requests' ? 'requests per min (RPM)' : 'tokens per min (TPM)';
  return {
    status: 429,
    type: kind,
    code: 'rate_limit_exceeded',
    message: `Rate limit reached for this key on ${what}: Limit ${limit}, Used ${Math.floor(used)}. Please try again in ${waitS}s.`,
    headers,
  };
}

/** 429: too many requests of this key in flight at once (`headers`: the key's x-ratelimit-* headers, if any). */
export function tooManyParallel(limit: number, headers: Record<string, string> | null = null): LimitError {
  return {
    status: 429,
    type: 'requests',
    code: 'rate_limit_exceeded',
    message: `Too many parallel requests for this key: the limit is ${limit} at once. Retry when one of them finished.`,
    headers: { ...headers, 'retry-after': '1' },
  };
}
