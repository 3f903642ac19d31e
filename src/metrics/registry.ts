// A small Prometheus text-format registry: counters, gauges and histograms with up to three labels. After a label
// combination's first use, updating it allocates nothing (nested Maps keyed by the label values).

type Labels = readonly string[];

/** Escapes a label value for the text format. */
export function escapeLabel(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
}

function labelText(names: Labels, values: readonly string[], extra?: string): string {
  const parts = names.map((n, i) => `${n}="${escapeLabel(values[i] ?? '')}"`);
  if (extra !== undefined) parts.push(extra);
  return parts.length > 0 ? `{${parts.join(',')}}` : '';
}

/** Formats a sample value the way Prometheus reads it. */
function num(v: number): string {
  if (v === Infinity) return '+Inf';
  if (v === -Infinity) return '-Inf';
  return Number.isNaN(v) ? 'NaN' : String(v);
}

/** A tree of series by label values, at most three levels deep. */
class Series<T> {
  private readonly root = new Map<string, unknown>();
  readonly all: Array<{ values: string[]; item: T }> = [];
  constructor(
    private readonly depth: number,
    private readonly make: () => T,
  ) {}

  get(a = '', b = '', c = ''): T {
    // Walks one Map per label without building a key or an array: nothing is allocated once a series exists.
    let node = this.root;
    if (this.depth >= 2) node = this.child(node, a);
    if (this.depth >= 3) node = this.child(node, b);
    const last = this.depth === 0 ? '' : this.depth === 1 ? a : this.depth === 2 ? b : c;
    let item = node.get(last) as T | undefined;
    if (item === undefined) {
      item = this.make();
      node.set(last, item);
      this.all.push({ values: [a, b, c].slice(0, this.depth), item });
    }
    return item;
  }

  private child(node: Map<string, unknown>, k: string): Map<string, unknown> {
    let next = node.get(k) as Map<string, unknown> | undefined;
    if (next === undefined) node.set(k, (next = new Map()));
    return next;
  }
}

/** One metric's series as plain data (sent between proxy workers): counter `[values, v]`, histogram `[values, counts, sum, count]`. */
export type SeriesSnapshot = [string[], number] | [string[], number[], number, number];

/** Every metric of a registry as plain data, by name. */
export type RegistrySnapshot = Record<string, SeriesSnapshot[]>;

interface Metric {
  readonly name: string;
  render(out: string[]): void;
  snapshot(): SeriesSnapshot[];
  absorb(series: SeriesSnapshot[]): void;
}

/** A counter or gauge. */
export class Counter implements Metric {
  private readonly series: Series<{ v: number }>;
  constructor(
    readonly name: string,
    readonly help: string,
    readonly labels: Labels = [],
    readonly type: 'counter' | 'gauge' = 'counter',
    /** How the values of several proxy workers combine: summed, or the largest (what every worker sees alike). */
    readonly merge: 'sum' | 'max' = 'sum',
  ) {
    this.series = new Series(labels.length, () => ({ v: 0 }));
  }

  snapshot(): SeriesSnapshot[] {
    return this.series.all.map(({ values, item }) => [values, item.v]);
  }

  /** Adds another worker's series (or keeps the larger value, with merge 'max'). */
  absorb(series: SeriesSnapshot[]): void {
    for (const [values, v] of series) {
      if (typeof v !== 'number') continue;
      const item = this.series.get(values[0], values[1], values[2]);
      item.v = this.merge === 'max' ? Math.max(item.v, v) : item.v + v;
    }
  }

  /** Adds `n` (default 1) to the series of these label values. */
  inc(n = 1, a?: string, b?: string, c?: string): void {
    this.series.get(a, b, c).v += n;
  }

  /** Sets the series of these label values (gauges). */
  set(v: number, a?: string, b?: string, c?: string): void {
    this.series.get(a, b, c).v = v;
  }

  /** The current value of a series (tests). */
  value(a?: string, b?: string, c?: string): number {
    return this.series.get(a, b, c).v;
  }

  render(out: string[]): void {
    out.push(`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} ${this.type}`);
    if (this.labels.length === 0 && this.series.all.length === 0) this.series.get();
    for (const { values, item } of this.series.all) out.push(`${this.name}${labelText(this.labels, values)} ${num(item.v)}`);
  }
}

/**
 * Sums are kept in whole microseconds. Why: several proxy workers' snapshots are added up in an order that changes
 * from one scrape to the next (which answered first, a replaced worker's last one), and floating-point addition is
 * not associative: a seconds sum could come out a hair lower than the scrape before (0.447313682 then
 * 0.44731368199999993), which Prometheus takes for a counter reset. Integer sums add up alike in any order (exactly,
 * up to 285 years of request time).
 */
const SUM_UNITS_PER_SECOND = 1e6;

/** A histogram with fixed bucket bounds (seconds). */
export class Histogram implements Metric {
  /** `sum` in microseconds (SUM_UNITS_PER_SECOND), an integer. */
  private readonly series: Series<{ counts: Float64Array; sum: number; count: number }>;
  constructor(
    readonly name: string,
    readonly help: string,
    readonly labels: Labels,
    readonly bounds: readonly number[],
  ) {
    this.series = new Series(labels.length, () => ({ counts: new Float64Array(bounds.length), sum: 0, count: 0 }));
  }

  snapshot(): SeriesSnapshot[] {
    return this.series.all.map(({ values, item }) => [values, Array.from(item.counts), item.sum, item.count]);
  }

  /** Adds another worker's observations. */
  absorb(series: SeriesSnapshot[]): void {
    for (const entry of series) {
      if (entry.length !== 4 || entry[1].length !== this.bounds.length) continue;
      const [values, counts, sum, count] = entry;
      const item = this.series.get(values[0], values[1], values[2]);
      for (let i = 0; i < counts.length; i++) item.counts[i]! += counts[i]!;
      item.sum += sum;
      item.count += count;
    }
  }

  /** Records one observation. */
  observe(v: number, a?: string, b?: string, c?: string): void {
    const s = this.series.get(a, b, c);
    const bounds = this.bounds;
    for (let i = 0; i < bounds.length; i++) {
      if (v <= bounds[i]!) {
        s.counts[i]!++;
        break;
      }
    }
    s.sum += Math.round(v * SUM_UNITS_PER_SECOND);
    s.count++;
  }

  render(out: string[]): void {
    out.push(`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} histogram`);
    for (const { values, item } of this.series.all) {
      let cumulative = 0;
      this.bounds.forEach((le, i) => {
        cumulative += item.counts[i]!;
        out.push(`${this.name}_bucket${labelText(this.labels, values, `le="${num(le)}"`)} ${cumulative}`);
      });
      out.push(`${this.name}_bucket${labelText(this.labels, values, 'le="+Inf"')} ${item.count}`);
      out.push(`${this.name}_sum${labelText(this.labels, values)} ${num(item.sum / SUM_UNITS_PER_SECOND)}`);
      out.push(`${this.name}_count${labelText(this.labels, values)} ${item.count}`);
    }
  }
}

/** An ordered set of metrics rendered together. */
export class Registry {
  private readonly metrics: Metric[] = [];

  add<T extends Metric>(metric: T): T {
    this.metrics.push(metric);
    return metric;
  }

  /** Every series as plain data. */
  snapshot(): RegistrySnapshot {
    const out: RegistrySnapshot = {};
    for (const m of this.metrics) out[m.name] = m.snapshot();
    return out;
  }

  /**
   * The metrics whose values are not a sum over time and processes: gauges (values of now, which a process that is gone
   * no longer has) and max-merged series (what every process sees alike).
   */
  unsummedNames(): string[] {
    return this.metrics.filter((m) => m instanceof Counter && (m.type === 'gauge' || m.merge === 'max')).map((m) => m.name);
  }

  /** Adds a snapshot of a registry with the same metrics (another proxy worker's); unknown names are ignored. */
  absorb(snapshot: RegistrySnapshot): void {
    for (const m of this.metrics) {
      const series = snapshot[m.name];
      if (Array.isArray(series)) m.absorb(series);
    }
  }

  /** The whole registry in the Prometheus text format (version 0.0.4). */
  render(): string {
    const out: string[] = [];
    for (const m of this.metrics) m.render(out);
    return out.join('\n') + '\n';
  }
}

/** The content type of the text format. */
export const PROMETHEUS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';
