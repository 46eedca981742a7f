// Read batching for the login hot path: the same read from many concurrent logins in one event-loop
// turn becomes one statement (keys passed as one JSON parameter), instead of one round trip each.
// Each caller still gets exactly the rows for its own key; a read inside a transaction is never
// batched (it must see that transaction's writes). Each statement narrows by `key = ANY (ARRAY(…))`
// so that the planner looks the keys up in an index instead of hashing the whole table.

import type { PgDatabase, PgValue } from "../../runtime/postgres.ts";
import { numbered } from "./context.ts";

/** Keys per statement. */
const BATCH_MAX = 256;

interface Waiter<Row> {
  key: string;
  resolve(rows: Row[]): void;
  reject(err: unknown): void;
}

/**
 * `sql` takes the batch as `?` (a JSON array of key objects or values) and returns rows carrying
 * the key columns; `keyOfRow` and the caller's key must produce the same string.
 */
export class BatchedRead<Row> {
  private pending: Waiter<Row>[] = [];
  private scheduled = false;
  private readonly text: string;

  constructor(
    private readonly db: PgDatabase,
    sql: string,
    private readonly keyOfRow: (row: Row) => string,
    /** The statement for one key outside a batch (inside a transaction). */
    private readonly single: (...params: PgValue[]) => Promise<Row[]>,
  ) {
    this.text = numbered(sql);
  }

  /** The rows for `key`; `jsonKey` is its element of the JSON batch, `params` the single statement's parameters. */
  load(key: string, jsonKey: unknown, params: PgValue[]): Promise<Row[]> {
    if (this.db.inTransaction()) return this.single(...params);
    return new Promise<Row[]>((resolve, reject) => {
      this.pending.push({ key, resolve, reject, json: jsonKey } as Waiter<Row> & { json: unknown });
      if (this.pending.length >= BATCH_MAX) return void this.flush();
      if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(this.endOfTurn);
      }
    });
  }

  private readonly endOfTurn = (): void => {
    this.scheduled = false;
    void this.flush();
  };

  private async flush(): Promise<void> {
    if (this.pending.length === 0) return;
    const batch = this.pending as Array<Waiter<Row> & { json: unknown }>;
    this.pending = [];
    const keys = [...new Map(batch.map((w) => [w.key, w.json])).values()];
    try {
      const { rows } = await this.db.query<Row>(this.text, [JSON.stringify(keys)]);
      const byKey = new Map<string, Row[]>();
      for (const row of rows) {
        const k = this.keyOfRow(row);
        const list = byKey.get(k);
        if (list) list.push(row);
        else byKey.set(k, [row]);
      }
      for (const w of batch) w.resolve(byKey.get(w.key) ?? []);
    } catch (err) {
      for (const w of batch) w.reject(err);
    }
  }
}
