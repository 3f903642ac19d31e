// Counts requests in memory (per hour, key, model) and writes them to the store in batches, off the request path.
import type { Logger } from '../log.js';
import { addCounts, type UsageRow, type UsageStore } from './types.js';

const HOUR_MS = 3_600_000;

/** Options of the recorder; the clock and timers are injectable. */
export interface RecorderOptions {
  store: UsageStore;
  logger: Logger;
  /** Ms between writes (0: only on flush()/close()). */
  flushMs: number;
  /**
   * Opens the store's file anew, for a store whose file was removed or replaced while open; throws when it cannot yet
   * (tried again at the next write). Absent: never reopened.
   */
  reopen?: () => Promise<UsageStore>;
  /** Wall clock, ms. */
  now?: () => number;
}

/** The in-memory side of the usage store. */
export class UsageRecorder {
  /** hour -> key -> model -> row: after the first request of a combination, recording allocates nothing. */
  private pending = new Map<number, Map<string, Map<string, UsageRow>>>();
  private readonly timer: NodeJS.Timeout | null;
  private readonly now: () => number;
  private failing = false;
  private closed = false;
  private current: UsageStore;
  /** A reopen under way: rows wait in memory until it is done. */
  private reopening = false;
  /** The store's file was replaced and the store closed; no new one opened yet (a reopen failed: tried again). */
  private stale = false;
  private reopenFailing = false;

  constructor(private readonly options: RecorderOptions) {
    this.current = options.store;
    this.now = options.now ?? Date.now;
    this.timer = options.flushMs > 0 ? setInterval(() => this.flush(), options.flushMs) : null;
    this.timer?.unref();
  }

  /** The store written to (a new one after a reopen). */
  get store(): UsageStore {
    return this.current;
  }

  /** Counts one finished request (positional arguments: this runs once per request, without allocating). */
  record(key: string, model: string, error: boolean, promptTokens: number, completionTokens: number, estimated: boolean): void {
    const hour = Math.floor(this.now() / HOUR_MS);
    let byKey = this.pending.get(hour);
    if (byKey === undefined) this.pending.set(hour, (byKey = new Map()));
    let byModel = byKey.get(key);
    if (byModel === undefined) byKey.set(key, (byModel = new Map()));
    let row = byModel.get(model);
    if (row === undefined) {
      row = { hour, key, model, requests: 0, promptTokens: 0, completionTokens: 0, errors: 0, estimated: 0 };
      byModel.set(model, row);
    }
    row.requests++;
    if (error) row.errors++;
    row.promptTokens += promptTokens;
    row.completionTokens += completionTokens;
    if (estimated) row.estimated++;
  }

  /** Rows not yet written. */
  unflushed(): UsageRow[] {
    const out: UsageRow[] = [];
    for (const byKey of this.pending.values()) for (const byModel of byKey.values()) for (const row of byModel.values()) out.push(row);
    return out;
  }

  /** Writes what was counted since the last write; on failure keeps it for the next try and warns once. */
  flush(): void {
    if (this.reopening) return;
    if (this.options.reopen !== undefined && (this.stale || this.current.replaced?.() === true)) return this.reopen(this.options.reopen);
    const rows = this.unflushed();
    if (rows.length === 0) return;
    const saved = this.pending;
    this.pending = new Map();
    try {
      this.current.add(rows);
      if (this.failing) this.options.logger.info('usage store writable again');
      this.failing = false;
    } catch (err) {
      // Put the rows back (merged with anything counted meanwhile) and try again next time.
      const fresh = this.pending;
      this.pending = saved;
      for (const byKey of fresh.values()) for (const byModel of byKey.values()) for (const r of byModel.values()) this.merge(r);
      if (!this.failing) this.options.logger.warn(`cannot write the usage store (${(err as Error).message}); keeping usage in memory and retrying`);
      this.failing = true;
    }
  }

  /**
   * The store's file was removed (a cleaner of usage.dir) or replaced: SQLite would go on writing into the removed file,
   * silently, until the next start, and `llmserve usage` would show nothing. A new store is opened at the same path and
   * gets what was counted since the last write; what the old file held is gone with it, and said so.
   */
  private reopen(open: () => Promise<UsageStore>): void {
    this.reopening = true;
    const old = this.current;
    if (!this.stale) {
      this.stale = true;
      this.options.logger.warn(`usage store ${old.file ?? ''} was removed or replaced while the proxy ran: the usage it held is gone with it; starting a new one there, with what was counted since its last write`);
      try {
        old.close();
      } catch {
        // the old file is gone anyway
      }
    }
    void open()
      .then(
        (next) => {
          this.current = next;
          this.stale = false;
          if (this.reopenFailing) this.options.logger.info(`usage store ${next.file ?? ''} opened again`);
          this.reopenFailing = false;
          // A store opened after the proxy stopped is closed at once (close() already said what it could not write).
          if (this.closed) next.close();
        },
        (err: Error) => {
          // Several proxy workers reopen the same file at once, and another's old connection may still hold the old
          // file's -wal and -shm for a moment: the rows wait in memory, and the next write tries again.
          if (!this.reopenFailing) this.options.logger.warn(`cannot open a new usage store at ${old.file ?? ''} yet (${err.message}); keeping usage in memory and trying again at each write`);
          this.reopenFailing = true;
        },
      )
      .finally(() => {
        this.reopening = false;
        if (!this.closed && !this.stale) this.flush();
      });
  }

  private merge(r: UsageRow): void {
    let byKey = this.pending.get(r.hour);
    if (byKey === undefined) this.pending.set(r.hour, (byKey = new Map()));
    let byModel = byKey.get(r.key);
    if (byModel === undefined) byKey.set(r.key, (byModel = new Map()));
    const row = byModel.get(r.model);
    if (row === undefined) byModel.set(r.model, r);
    else addCounts(row, r);
  }

  /** Writes the rest and closes the store. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.timer !== null) clearInterval(this.timer);
    // The last write: worth waiting for a lock, nothing is served any more. Not with a reopen under way: the old store
    // is closed, the new one not there yet; what is left is said as lost below.
    if (!this.reopening && !this.stale) {
      this.current.patient?.();
      this.flush();
    }
    // No later try: what the last write could not store is lost, and said so (the warning above said "retrying").
    const lost = this.unflushed();
    if (lost.length > 0) {
      const requests = lost.reduce((n, r) => n + r.requests, 0);
      this.options.logger.error(`the usage store could not take the last ${requests} request${requests === 1 ? '' : 's'} (${lost.length} row${lost.length === 1 ? '' : 's'}) before the proxy stopped: they are not recorded`);
    }
    try {
      if (!this.reopening && !this.stale) this.current.close();
    } catch {
      // closing a broken store is not worth a warning after the one already given
    }
  }
}
