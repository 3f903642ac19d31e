// Several Prometheus text pages (one vLLM per model) merged into one valid page: a family appearing twice, or with
// its samples split apart, makes Prometheus reject the whole scrape.

interface Family {
  help: string | null;
  type: string | null;
  samples: string[];
}

// The series a family's samples may carry after its name (histograms, summaries, counters, info).
const SUFFIXES = ['_bucket', '_sum', '_count', '_total', '_created', '_info', '_gsum', '_gcount'];

/** The metric name of a sample line: everything before its labels or its value. */
function sampleName(line: string): string {
  const end = line.search(/[{ \t]/);
  return end < 0 ? line : line.slice(0, end);
}

/** True when a sample called `name` belongs to family `family` (its own name or a suffixed series of it). */
function belongsTo(name: string, family: string): boolean {
  return name === family || (name.startsWith(family) && SUFFIXES.includes(name.slice(family.length)));
}

/** Merges Prometheus text pages into one: each family's HELP and TYPE once (the first page's), then all its samples, pages in order. */
export function mergeExpositions(pages: readonly string[]): string {
  const families = new Map<string, Family>();
  const family = (name: string): Family => {
    let f = families.get(name);
    if (f === undefined) families.set(name, (f = { help: null, type: null, samples: [] }));
    return f;
  };
  for (const page of pages) {
    let current: string | null = null;
    for (const line of page.split('\n')) {
      if (line === '') continue;
      if (line.startsWith('#')) {
        const meta = /^# (HELP|TYPE) (\S+)/.exec(line);
        if (meta === null) continue; // other comments carry no data
        current = meta[2]!;
        const f = family(current);
        if (meta[1] === 'HELP') f.help ??= line;
        else f.type ??= line;
        continue;
      }
      const name = sampleName(line);
      if (current === null || !belongsTo(name, current)) {
        // A sample without HELP/TYPE of its own: under a family another page described, or one of its own.
        const base = SUFFIXES.find((s) => name.endsWith(s) && families.has(name.slice(0, -s.length)));
        current = base === undefined ? name : name.slice(0, -base.length);
      }
      family(current).samples.push(line);
    }
  }
  const out: string[] = [];
  for (const f of families.values()) {
    if (f.help !== null) out.push(f.help);
    if (f.type !== null) out.push(f.type);
    out.push(...f.samples);
  }
  return out.length > 0 ? out.join('\n') + '\n' : '';
}
