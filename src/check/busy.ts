// A saturated vLLM answers late but is not hung: what the proxy's readiness says of it, for `check`.

/**
 * Which backends the proxy's `/health/readiness` answer calls busy (its /health timed out while its responses flowed
 * through the proxy): `single` when the proxy has one backend, else the busy models by name. Null when the answer
 * says no such thing, or is not the proxy's.
 */
export function busyInReadiness(body: string): { single: boolean; models: Set<string> } | null {
  let backend: unknown;
  try {
    backend = (JSON.parse(body) as { backend?: unknown } | null)?.backend;
  } catch {
    return null;
  }
  if (typeof backend !== 'string') return null;
  // One backend: `busy: ...`. Several: `alpha: busy: ...; beta: healthy` (proxy/handler.ts routedHealth), always
  // two parts or more: `busy: ...; beta: ...` is a model named "busy", not the one backend busy.
  if (backend.startsWith('busy: ') && !backend.includes('; ')) return { single: true, models: new Set() };
  const models = new Set<string>();
  for (const part of backend.split('; ')) {
    const at = part.indexOf(': busy: ');
    if (at > 0) models.add(part.slice(0, at));
  }
  return models.size > 0 ? { single: false, models } : null;
}

/** Whether a readiness verdict covers this check: its model's vLLM (or, for a check of no known model, any vLLM). */
export function coversCheck(busy: { single: boolean; models: Set<string> }, model: string | undefined): boolean {
  if (busy.single) return true;
  return model === undefined ? busy.models.size > 0 : busy.models.has(model);
}
