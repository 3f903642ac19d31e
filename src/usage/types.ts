// The usage store's rows and interface: per key, per model, per hour.

/** One row: what a key did with a model in one hour (or, for a delta, what to add to it). */
export interface UsageRow {
  /** Epoch hour: floor(ms / 3 600 000). */
  hour: number;
  /** The key's name, never the key. */
  key: string;
  /** Public model name, `-` when the request's model was not read. */
  model: string;
  requests: number;
  promptTokens: number;
  completionTokens: number;
  errors: number;
  /** Requests whose tokens were estimated (the backend reported no usage). */
  estimated: number;
}

/** Which rows to read. */
export interface UsageFilter {
  /** First epoch hour included. */
  sinceHour?: number;
  key?: string;
}

/** The embedded store behind one small interface: node:sqlite, better-sqlite3, or memory. */
export interface UsageStore {
  readonly kind: 'node:sqlite' | 'better-sqlite3' | 'memory';
  /** The database file, or null in memory. */
  readonly file: string | null;
  /** Adds deltas to their rows, all in one transaction. */
  add(deltas: readonly UsageRow[]): void;
  /** Hourly rows, oldest first. */
  rows(filter?: UsageFilter): UsageRow[];
  /** Tokens (prompt + completion) per key over all time. */
  totalsByKey(): Map<string, number>;
  /** From now on a write may wait for another process's lock (the last flush at shutdown); absent: nothing to do. */
  patient?(): void;
  close(): void;
}

/** Adds a delta's counts into a row of the same hour, key and model. */
export function addCounts(row: UsageRow, delta: UsageRow): void {
  row.requests += delta.requests;
  row.promptTokens += delta.promptTokens;
  row.completionTokens += delta.completionTokens;
  row.errors += delta.errors;
  row.estimated += delta.estimated;
}
