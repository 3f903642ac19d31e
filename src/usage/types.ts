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

/** A key's use of a model summed over the rows read: a row without its hour. */
export type UsageTotal = Omit<UsageRow, 'hour'>;

/** Tokens (prompt + completion) of a key in one hour. */
export interface KeyHourTokens {
  key: string;
  hour: number;
  tokens: number;
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
  /** Hourly rows as stored, oldest first (the tests read what was written through it; reports use the sums below). */
  rows(filter?: UsageFilter): UsageRow[];
  /**
   * The rows `filter` selects summed per key and model, in no set order. Why not rows(): a report over months of a
   * busy store read every hourly row into memory (240,000 rows: about 1 s and 200-400 MB for `llmserve usage`).
   */
  totals(filter?: UsageFilter): UsageTotal[];
  /** Tokens (prompt + completion) per UTC day (days since the epoch) over the rows `filter` selects, oldest first. */
  tokensByDay(filter?: UsageFilter): Array<{ day: number; tokens: number }>;
  /** Tokens per key and hour from `sinceHour` on, of the keys named (null: every key), in no set order. */
  tokensByKeyHour(sinceHour: number, keys: readonly string[] | null): KeyHourTokens[];
  /** Tokens (prompt + completion) per key over all time, of the keys named (null or absent: every key). */
  totalsByKey(keys?: readonly string[] | null): Map<string, number>;
  /** From now on a write may wait for another process's lock (the last flush at shutdown); absent: nothing to do. */
  patient?(): void;
  /**
   * True when the file at its path is no longer the one it has open (removed or replaced while open): what it writes
   * then goes to a file no one can read. Absent (a store in memory): never.
   */
  replaced?(): boolean;
  close(): void;
}

/** Adds a delta's counts into a row (or a total) of the same hour, key and model. */
export function addCounts(row: UsageTotal, delta: UsageTotal): void {
  row.requests += delta.requests;
  row.promptTokens += delta.promptTokens;
  row.completionTokens += delta.completionTokens;
  row.errors += delta.errors;
  row.estimated += delta.estimated;
}
