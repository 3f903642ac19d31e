// vLLM's own metrics, fetched from the backend's /metrics and passed through: only the `vllm:` families.
import { mergeExpositions } from './merge.js';
import { labelModel } from './model-label.js';

/** A vLLM whose metrics are read: its base URL and its served name (vLLM's own `model_name` label). */
export interface MetricsBackend {
  url: string;
  name: string;
}

/**
 * The vLLMs read for a scrape. `several`: llmserve serves several models, so each page's unlabelled samples get their
 * model's name; said apart from the list, since a model that gave up leaves one backend to read, whose series must
 * keep the labels they had (a series that changes labels is a new one to Prometheus: queries and alerts lose it).
 */
export interface MetricsSources {
  backends: readonly MetricsBackend[];
  several: boolean;
}

/** Keeps the `vllm:*` samples and their HELP/TYPE lines of a Prometheus text page. */
export function vllmOnly(text: string): string {
  const out: string[] = [];
  for (const line of text.split('\n')) {
    if (line.startsWith('vllm:') || line.startsWith('# HELP vllm:') || line.startsWith('# TYPE vllm:')) out.push(line);
  }
  return out.length > 0 ? out.join('\n') + '\n' : '';
}

/** Fetches the backend's metrics within `timeoutMs`; null when it cannot be read. */
export async function fetchBackendMetrics(backendUrl: string, timeoutMs = 2000): Promise<string | null> {
  try {
    const res = await fetch(`${backendUrl}/metrics`, { signal: AbortSignal.timeout(timeoutMs) });
    if (!res.ok) {
      await res.body?.cancel();
      return null;
    }
    return vllmOnly(await res.text());
  } catch {
    return null;
  }
}

/**
 * Every backend's metrics, read concurrently (each within `timeoutMs`) and merged into one page, each page's samples
 * without a `model_name` label given their model's; `up`: all were read.
 */
export async function fetchAllBackendMetrics({ backends, several }: MetricsSources, timeoutMs = 2000): Promise<{ text: string; up: boolean }> {
  if (!several && backends.length === 1) {
    // One model: its page as it is, nothing to merge.
    const text = await fetchBackendMetrics(backends[0]!.url, timeoutMs);
    return { text: text ?? '', up: text !== null };
  }
  const pages = await Promise.all(backends.map((b) => fetchBackendMetrics(b.url, timeoutMs)));
  const read = pages.flatMap((page, i) => (page === null ? [] : [labelModel(page, backends[i]!.name)]));
  return { text: mergeExpositions(read), up: read.length > 0 && read.length === pages.length };
}
