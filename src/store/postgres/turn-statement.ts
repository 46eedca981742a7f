// One statement per event-loop turn for the RADIUS hot path's batched work on PostgreSQL: the
// guarded high-water-mark UPDATE of the logins decided from the login cache, the idempotency-record
// lookups of new Access-Requests and the idempotency records of replies about to be sent. Each part
// was a statement of its own per turn; most of a statement's cost (the client protocol and promise
// chain on the server, parse/bind/execute and the transaction on the database) does not depend on
// how much it carries, so a turn now pays it once.
//
// Each part keeps its meaning inside the shared statement: the UPDATE and the INSERT are
// data-modifying CTEs of one implicit transaction, so a record is committed (and visible to every
// node) before its put() resolves, and an accepted mark likewise before its advance() resolves. A
// lookup reads the records committed before the statement (never one inserted by the same
// statement: that would be this node's own reply, which its retransmission cache answers). A
// failure fails every part of the statement: each caller handles it as it handled its own
// statement's failure (a login rejected as a store error, a reply sent unrecorded, a request
// evaluated without a lookup).

import type { PgDatabase } from "../../runtime/postgres.ts";

/** Items of one kind per statement; more wait for the next statement. */
const PART_MAX = 256;

/** A record found by a lookup. */
export interface RecordRow {
  key: string;
  reply: string;
  expires_at: number;
}

interface Waiting<T> {
  resolve(value: T): void;
  reject(err: unknown): void;
}

interface CombinedRow {
  part: string;
  id: number | null;
  n: number | null;
  key: string | null;
  reply: string | null;
}

// The guarded UPDATE of store/postgres/login-reads.ts (see there for what each condition
// revalidates), as CTEs over the parameter `$A`, parsed once (`v`). The checks against other tables
// run once per row in `ok`, before the join with the marks: inside the UPDATE's WHERE, a generic
// plan that scanned the rows once per mark re-ran them for every pair (1,024 times for 32 rows;
// measured at 30 times the backend CPU once statistics said the records were few). `OFFSET 0` keeps
// each EXISTS a subplan run per row (primary-key lookups): as a semi-join, the generic plan hashed
// every active token and its user (6,000 buffers for a batch of 7 rows with 2,000 users). The checks
// read the statement's snapshot, as they did inside the WHERE; the mark's own conditions stay in
// the UPDATE, which re-checks them on the newest row version after waiting for a concurrent writer.
const ADVANCE_CTE = `v AS MATERIALIZED (
SELECT * FROM jsonb_to_recordset($A::text::jsonb) AS v(token_id bigint, step bigint, drift integer, was_drift integer, user_id bigint,
  name text, source text, type text, expires_at bigint, key text, reply text, until bigint, now bigint, known_since bigint)),
ok AS MATERIALIZED (
SELECT v.* FROM v
WHERE EXISTS (SELECT 1 FROM tokens t JOIN users u ON u.id = t.user_id
              WHERE t.id = v.token_id AND t.state = 'active' AND t.user_id = v.user_id AND u.username = v.name
                AND u.disabled = 0 AND u.directory IS NULL AND u.type IS NOT DISTINCT FROM v.type
                AND u.expires_at IS NOT DISTINCT FROM v.expires_at OFFSET 0)
  AND NOT EXISTS (SELECT 1 FROM lockouts l WHERE l.subject = v.name AND l.kind = 'code' AND l.source IN (v.source, '') OFFSET 0)
  AND (v.key IS NULL OR NOT EXISTS (SELECT 1 FROM radius_replies r WHERE r.key = v.key AND r.expires_at > v.now OFFSET 0))),
a AS (
UPDATE token_marks m SET last_step = ok.step, drift = ok.drift
FROM ok
WHERE m.token_id = ANY (ARRAY(SELECT token_id FROM ok))
  AND m.token_id = ok.token_id AND m.last_step < ok.step AND m.drift = ok.was_drift
RETURNING m.token_id AS token_id, (SELECT s.last_success_at FROM known_sources s WHERE s.subject = ok.name AND s.source = ok.source) AS known,
  ok.key AS key, ok.reply AS reply, ok.until AS until, ok.known_since AS known_since),
f AS (
INSERT INTO radius_replies (key, reply, expires_at)
SELECT a.key, a.reply, a.until FROM a WHERE a.key IS NOT NULL AND a.known > a.known_since
ON CONFLICT (key) DO NOTHING
RETURNING key)`;

// The first record of a key stands: one already there (another node answered the same packet
// first), or an earlier row of the same statement, is kept.
const RECORD_CTE = `w AS (
INSERT INTO radius_replies (key, reply, expires_at)
SELECT v.key, v.reply, v.expires_at FROM jsonb_to_recordset($W::text::jsonb) AS v(key text, reply text, expires_at bigint)
ON CONFLICT (key) DO NOTHING)`;

// A won row names its record when the statement wrote it; the records found are those committed
// before the statement (read from its snapshot), under the keys of its guarded rows.
const ADVANCE_SELECT = `SELECT 'a'::text AS part, a.token_id AS id, a.known AS n, f.key AS key, NULL::text AS reply FROM a LEFT JOIN f ON f.key = a.key
UNION ALL
SELECT 'e'::text AS part, NULL::bigint AS id, r.expires_at AS n, r.key AS key, r.reply AS reply FROM radius_replies r
WHERE r.key = ANY (ARRAY(SELECT v.key FROM v))`;
const LOOKUP_SELECT = `SELECT 'g'::text AS part, NULL::bigint AS id, r.expires_at AS n, r.key AS key, r.reply AS reply FROM radius_replies r
WHERE r.key = ANY (ARRAY(SELECT jsonb_array_elements_text($G::text::jsonb)))`;

/** The statement text for the parts present (at most 7 texts, each prepared once per connection). */
export function statementText(advance: boolean, lookup: boolean, record: boolean): string {
  const ctes: string[] = [];
  const selects: string[] = [];
  let n = 0;
  const params = new Map<string, string>();
  const param = (name: string) => {
    if (!params.has(name)) params.set(name, `$${++n}`);
    return params.get(name)!;
  };
  if (advance) {
    const p = param("A");
    ctes.push(ADVANCE_CTE.replaceAll("$A", p));
    selects.push(ADVANCE_SELECT.replaceAll("$A", p));
  }
  if (record) {
    const p = param("W");
    ctes.push(RECORD_CTE.replaceAll("$W", p));
  }
  if (lookup) {
    const p = param("G");
    selects.push(LOOKUP_SELECT.replaceAll("$G", p));
  }
  // A data-modifying CTE runs to completion whether or not the query reads it.
  if (selects.length === 0) selects.push(`SELECT 'w'::text AS part, NULL::bigint AS id, NULL::bigint AS n, NULL::text AS key, NULL::text AS reply WHERE false`);
  return `${ctes.length > 0 ? `WITH ${ctes.join(",\n")}\n` : ""}${selects.join("\nUNION ALL\n")}`;
}

/**
 * While a statement is in flight, the work of the following turns waits and goes into the next one:
 * a statement then carries the next step of many logins in progress instead of whatever one turn
 * produced. Another statement starts beside it only once FULL_BATCH items wait (so that a slow
 * round trip on a busy machine does not hold every login back), at most MAX_IN_FLIGHT at once.
 */
const MAX_IN_FLIGHT = 3;
export const FULL_BATCH = 8;

/** What a guarded write did (see PgTurnStatement.advance). */
export interface AdvanceResult {
  won: boolean;
  known: number | null;
  /** With a record: the statement wrote it beside the mark. */
  recorded: boolean;
  /** With a record: a live record of that key was already there, so nothing was written. */
  existing?: { reply: string; expiresAt: number };
}

interface PendingAdvance extends Waiting<AdvanceResult> {
  row: Record<string, unknown>;
  tokenId: number;
  key: string | undefined;
}

export class PgTurnStatement {
  private advances: PendingAdvance[] = [];
  private lookups: Array<{ key: string } & Waiting<RecordRow | undefined>> = [];
  private records: Array<{ row: { key: string; reply: string; expires_at: number } } & Waiting<void>> = [];
  private scheduled = false;
  private inFlight = 0;
  private readonly texts = new Map<number, string>();

  constructor(private readonly db: PgDatabase) {}

  /**
   * A guarded high-water-mark write (a row of ADVANCE_CTE's recordset for `tokenId`): `won` when
   * the mark was written, with the source's known-source record. A token appears at most once per
   * statement: a second write for it waits for the next statement, and so meets the new mark.
   *
   * A row with `key` (and `reply`, `until`, `now`, `known_since`) also stands for the request's
   * idempotency record: the mark is written only while no live record of that key exists (else
   * `existing` is that record, and nothing is written), and a won write records `reply` under
   * `key` in the same statement when the source's known-source record is newer than
   * `known_since` (`recorded`); otherwise the caller records the reply once it is decided.
   */
  advance(row: Record<string, unknown>, tokenId: number): Promise<AdvanceResult> {
    const key = typeof row.key === "string" ? row.key : undefined;
    return new Promise((resolve, reject) => {
      this.advances.push({ row, tokenId, key, resolve, reject });
      this.schedule();
    });
  }

  /** The record under `key`, if any (expired ones included: the caller compares). */
  lookup(key: string): Promise<RecordRow | undefined> {
    return new Promise((resolve, reject) => {
      this.lookups.push({ key, resolve, reject });
      this.schedule();
    });
  }

  /** Records a reply; resolves once the record is committed. */
  record(key: string, reply: string, expiresAt: number): Promise<void> {
    return new Promise((resolve, reject) => {
      this.records.push({ row: { key, reply, expires_at: expiresAt }, resolve, reject });
      this.schedule();
    });
  }

  private pendingCount(): number {
    return this.advances.length + this.lookups.length + this.records.length;
  }

  /** Whether the work waiting may go now (else a statement in flight schedules it when it ends). */
  private mayStart(): boolean {
    return this.inFlight === 0 || (this.inFlight < MAX_IN_FLIGHT && this.pendingCount() >= FULL_BATCH);
  }

  /** At the end of this turn, if the work waiting may go then. */
  private schedule(): void {
    if (this.scheduled || !this.mayStart()) return;
    this.scheduled = true;
    setImmediate(this.endOfTurn);
  }

  private readonly endOfTurn = (): void => {
    this.scheduled = false;
    if (this.mayStart()) this.flush();
  };

  private readonly settled = (): void => {
    this.inFlight--;
    // the end of the turn in which the callers' continuations queue their next steps
    if (this.pendingCount() > 0) this.schedule();
  };

  private flush(): void {
    const seen = new Set<number>();
    const advances: PendingAdvance[] = [];
    const later: PendingAdvance[] = [];
    for (const w of this.advances) {
      if (seen.has(w.tokenId) || advances.length >= PART_MAX) later.push(w);
      else {
        seen.add(w.tokenId);
        advances.push(w);
      }
    }
    this.advances = later;
    const lookups = this.lookups.splice(0, PART_MAX);
    const records = this.records.splice(0, PART_MAX);
    if (advances.length === 0 && lookups.length === 0 && records.length === 0) return;
    const shape = (advances.length > 0 ? 1 : 0) | (lookups.length > 0 ? 2 : 0) | (records.length > 0 ? 4 : 0);
    let text = this.texts.get(shape);
    if (text === undefined) {
      text = statementText(advances.length > 0, lookups.length > 0, records.length > 0);
      this.texts.set(shape, text);
    }
    const params: string[] = [];
    if (advances.length > 0) params.push(JSON.stringify(advances.map((w) => w.row)));
    if (records.length > 0) params.push(JSON.stringify(records.map((r) => r.row)));
    if (lookups.length > 0) params.push(JSON.stringify(lookups.map((l) => l.key)));
    this.inFlight++;
    let query: Promise<{ rows: CombinedRow[] }>;
    try {
      query = this.db.query<CombinedRow>(text, params);
    } catch (err) {
      query = Promise.reject(err);
    }
    query
      .then(
        ({ rows }) => {
          const won = new Map<number, CombinedRow>();
          const found = new Map<string, RecordRow>();
          let existing: Map<string, CombinedRow> | undefined;
          for (const r of rows) {
            if (r.part === "a") won.set(r.id!, r);
            else if (r.part === "g") found.set(r.key!, { key: r.key!, reply: r.reply!, expires_at: r.n! });
            else if (r.part === "e") (existing ??= new Map()).set(r.key!, r);
          }
          for (const w of advances) {
            const a = won.get(w.tokenId);
            if (a) w.resolve({ won: true, known: a.n ?? null, recorded: a.key !== null && a.key === w.key });
            else {
              const e = w.key === undefined ? undefined : existing?.get(w.key);
              // an expired record (not yet purged) does not stand: the write was guarded by live ones only
              w.resolve(e && e.n! > (w.row.now as number) ? { won: false, known: null, recorded: false, existing: { reply: e.reply!, expiresAt: e.n! } } : { won: false, known: null, recorded: false });
            }
          }
          for (const l of lookups) l.resolve(found.get(l.key));
          for (const w of records) w.resolve();
        },
        (err: unknown) => {
          for (const w of advances) w.reject(err);
          for (const l of lookups) l.reject(err);
          for (const w of records) w.reject(err);
        },
      )
      .finally(this.settled);
  }
}
