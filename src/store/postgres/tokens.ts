// OTP tokens in PostgreSQL: sealed seeds bound to the serial, and the single-statement replay
// guards (TOTP high-water mark, HOTP counter) that make a code usable once, whichever node or
// connection runs them: the UPDATE's row lock makes a second writer re-check `last_step < ?`
// against the committed value (READ COMMITTED re-evaluates the WHERE clause), so exactly one wins.

import type { HashAlgorithm, NewToken, Token, TokenKind, TokenRepo, TokenState } from "../types.ts";
import { StoreError } from "../types.ts";
import { tokenSecretContext } from "../sqlite/tokens.ts";
import { BatchedRead } from "./batch.ts";
import { conflictingValue, pgPrep, rethrow, valuesList, type PgStoreContext } from "./context.ts";

/** Tokens per multi-row INSERT (12 parameters each, well below the protocol's 65,535). */
const INSERT_CHUNK = 1000;
const INSERT_CASTS = ["text", "bigint", "text", "text", "text", "integer", "integer", "text", "bigint", "bigint", "bigint", "integer"] as const;

export interface TokenRow {
  id: number;
  serial: string;
  user_id: number | null;
  kind: string;
  secret: string;
  algorithm: string;
  digits: number;
  period: number;
  counter: number;
  last_step: number;
  drift: number;
  state: string;
  created_at: number;
}

const COLUMNS =
  "t.id AS id, t.serial AS serial, t.user_id AS user_id, t.kind AS kind, t.secret AS secret, t.algorithm AS algorithm, " +
  "t.digits AS digits, t.period AS period, m.counter AS counter, m.last_step AS last_step, m.drift AS drift, t.state AS state, t.created_at AS created_at";
const FROM = "tokens t JOIN token_marks m ON m.token_id = t.id";
/** High-water-mark writes per statement. */
const MARKS_MAX = 256;

interface PendingMark {
  id: number;
  step: number;
  drift: number;
  resolve(advanced: boolean): void;
  reject(err: unknown): void;
}

export class PgTokenRepo implements TokenRepo {
  private readonly sList;
  private readonly sListForUser;
  private readonly sFindById;
  private readonly sFindBySerial;
  private readonly sActiveForUser;
  private readonly sInsert;
  private readonly sAssign;
  private readonly sSetState;
  private readonly sDelete;
  private readonly sAdvanceTOTP;
  private readonly sAdvanceHOTP;
  private readonly sAdvanceMany;
  private readonly sResync;
  private readonly activeBatch: BatchedRead<TokenRow>;

  constructor(private readonly ctx: PgStoreContext) {
    const { db } = ctx;
    this.sList = pgPrep<TokenRow>(db, `SELECT ${COLUMNS} FROM ${FROM} ORDER BY t.id`);
    this.sListForUser = pgPrep<TokenRow>(db, `SELECT ${COLUMNS} FROM ${FROM} WHERE t.user_id = ? ORDER BY t.id`);
    this.sFindById = pgPrep<TokenRow>(db, `SELECT ${COLUMNS} FROM ${FROM} WHERE t.id = ?`);
    this.sFindBySerial = pgPrep<TokenRow>(db, `SELECT ${COLUMNS} FROM ${FROM} WHERE t.serial = ?`);
    this.sActiveForUser = pgPrep<TokenRow>(db, `SELECT ${COLUMNS} FROM ${FROM} WHERE t.user_id = ? AND t.state = 'active' ORDER BY t.id`);
    // The token row and its marks in one statement (a data-modifying CTE is one atomic statement).
    this.sInsert = pgPrep<{ id: number }>(
      db,
      `WITH t AS (
         INSERT INTO tokens (serial, user_id, kind, secret, algorithm, digits, period, state, created_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id)
       INSERT INTO token_marks (token_id, counter, last_step, drift) SELECT id, ?, ?, ? FROM t RETURNING token_id AS id`,
    );
    this.sAssign = pgPrep(db, "UPDATE tokens SET user_id = ? WHERE id = ?");
    this.sSetState = pgPrep(db, "UPDATE tokens SET state = ? WHERE id = ?");
    this.sDelete = pgPrep(db, "DELETE FROM tokens WHERE id = ?");
    // The replay guards: one statement each, so the check and the write are one atomic step, and
    // the change count says whether this caller won (DESIGN "TOTP high-water mark").
    this.sAdvanceTOTP = pgPrep(db, "UPDATE token_marks SET last_step = ?1, drift = ?2 WHERE token_id = ?3 AND last_step < ?1");
    // The same guard for many tokens in one statement: each row is updated only if its own mark is lower.
    // The `= ANY (ARRAY(…))` condition lets the planner use the primary key instead of scanning the table
    // (a function's rows are estimated at 100, which otherwise makes a hash join over all marks).
    this.sAdvanceMany = pgPrep<{ token_id: number }>(
      db,
      `UPDATE token_marks m SET last_step = v.step, drift = v.drift
       FROM jsonb_to_recordset(?1::text::jsonb) AS v(token_id bigint, step bigint, drift integer)
       WHERE m.token_id = ANY (ARRAY(SELECT (jsonb_array_elements(?1::text::jsonb) ->> 'token_id')::bigint))
         AND m.token_id = v.token_id AND m.last_step < v.step
       RETURNING m.token_id`,
    );
    this.sAdvanceHOTP = pgPrep(db, "UPDATE token_marks SET counter = ?1 WHERE token_id = ?2 AND counter < ?1");
    this.sResync = pgPrep(
      db,
      "UPDATE token_marks SET counter = COALESCE(?::bigint, counter), last_step = COALESCE(?::bigint, last_step), drift = COALESCE(?::integer, drift) WHERE token_id = ?",
    );
    this.activeBatch = new BatchedRead<TokenRow>(
      db,
      `SELECT ${COLUMNS} FROM ${FROM} WHERE t.user_id = ANY (ARRAY(SELECT (jsonb_array_elements_text(?::text::jsonb))::bigint)) AND t.state = 'active' ORDER BY t.id`,
      (r) => String(r.user_id),
      (...p) => this.sActiveForUser.all(...p),
    );
  }

  /** @internal Also used by the login reads (login-reads.ts). */
  toToken(row: TokenRow): Token {
    return {
      id: row.id,
      serial: row.serial,
      userId: row.user_id,
      kind: row.kind as TokenKind,
      secret: this.ctx.sealer.open(row.secret, tokenSecretContext(row.serial)),
      algorithm: row.algorithm as HashAlgorithm,
      digits: row.digits as 6 | 8,
      period: row.period,
      counter: row.counter,
      lastStep: row.last_step,
      drift: row.drift,
      state: row.state as TokenState,
      createdAt: row.created_at,
    };
  }

  /**
   * @internal Inserts one token (inside the caller's transaction when there is one).
   * Throws StoreError("conflict") for a duplicate serial, StoreError("not_found") for a missing user.
   */
  async insert(token: NewToken): Promise<Token> {
    const createdAt = this.ctx.now();
    const counter = token.counter ?? 0;
    const lastStep = token.lastStep ?? -1;
    const drift = token.drift ?? 0;
    try {
      const sealed = this.ctx.sealer.seal(token.secret, tokenSecretContext(token.serial));
      const row = await this.ctx.db.atomic(() => this.sInsert.get(token.serial, token.userId, token.kind, sealed, token.algorithm, token.digits, token.period, token.state, createdAt, counter, lastStep, drift));
      return { ...token, id: row!.id, counter, lastStep, drift, createdAt };
    } catch (err) {
      rethrow(err, { conflict: `token '${token.serial}' exists`, missing: `user ${token.userId} not found` });
    }
  }

  /**
   * @internal Inserts many tokens with one statement per thousand (inside the caller's transaction
   * when there is one). Throws StoreError("conflict") naming a duplicate serial, StoreError("not_found")
   * for a missing user.
   */
  async insertMany(tokens: readonly NewToken[]): Promise<Token[]> {
    const createdAt = this.ctx.now();
    const out: Token[] = [];
    for (let start = 0; start < tokens.length; start += INSERT_CHUNK) {
      const chunk = tokens.slice(start, start + INSERT_CHUNK);
      const params: (string | number | null)[] = [];
      for (const t of chunk) {
        const sealed = this.ctx.sealer.seal(t.secret, tokenSecretContext(t.serial));
        params.push(t.serial, t.userId, t.kind, sealed, t.algorithm, t.digits, t.period, t.state, createdAt, t.counter ?? 0, t.lastStep ?? -1, t.drift ?? 0);
      }
      let rows: { id: number; serial: string }[];
      try {
        ({ rows } = await this.ctx.db.query<{ id: number; serial: string }>(
          `WITH v (serial, user_id, kind, secret, algorithm, digits, period, state, created_at, counter, last_step, drift) AS (VALUES ${valuesList(chunk.length, INSERT_CASTS)}),
           t AS (INSERT INTO tokens (serial, user_id, kind, secret, algorithm, digits, period, state, created_at)
                 SELECT serial, user_id, kind, secret, algorithm, digits, period, state, created_at FROM v RETURNING id, serial)
           INSERT INTO token_marks (token_id, counter, last_step, drift) SELECT t.id, v.counter, v.last_step, v.drift FROM t JOIN v USING (serial)
           RETURNING token_id AS id, (SELECT serial FROM t WHERE t.id = token_marks.token_id) AS serial`,
          params,
        ));
      } catch (err) {
        rethrow(err, { conflict: `token '${conflictingValue(err) ?? chunk[0]!.serial}' exists`, missing: "user not found" });
      }
      const ids = new Map(rows.map((r) => [r.serial, r.id]));
      for (const t of chunk) out.push({ ...t, id: ids.get(t.serial)!, counter: t.counter ?? 0, lastStep: t.lastStep ?? -1, drift: t.drift ?? 0, createdAt });
    }
    return out;
  }

  async list(userId?: number): Promise<Token[]> {
    try {
      const rows = userId === undefined ? await this.sList.all() : await this.sListForUser.all(userId);
      return rows.map((r) => this.toToken(r));
    } catch (err) {
      rethrow(err);
    }
  }

  async findById(id: number): Promise<Token | undefined> {
    try {
      const row = await this.sFindById.get(id);
      return row ? this.toToken(row) : undefined;
    } catch (err) {
      rethrow(err);
    }
  }

  async findBySerial(serial: string): Promise<Token | undefined> {
    try {
      const row = await this.sFindBySerial.get(serial);
      return row ? this.toToken(row) : undefined;
    } catch (err) {
      rethrow(err);
    }
  }

  async activeForUser(userId: number): Promise<Token[]> {
    try {
      return (await this.activeBatch.load(String(userId), String(userId), [userId])).map((r) => this.toToken(r));
    } catch (err) {
      rethrow(err);
    }
  }

  async add(token: NewToken): Promise<Token> {
    const added = await this.insert(token);
    this.ctx.bumpGeneration();
    return added;
  }

  /** All or nothing; throws like add for the first failing token. */
  async addMany(tokens: NewToken[]): Promise<Token[]> {
    try {
      const added = await this.ctx.db.transaction(() => this.insertMany(tokens));
      this.ctx.bumpGeneration();
      return added;
    } catch (err) {
      rethrow(err);
    }
  }

  async assign(id: number, userId: number | null): Promise<void> {
    let changes: number;
    try {
      changes = await this.ctx.db.atomic(() => this.sAssign.run(userId, id));
    } catch (err) {
      rethrow(err, { missing: `user ${userId} not found` });
    }
    if (changes === 0) throw new StoreError("not_found", `token ${id} not found`);
    this.ctx.bumpGeneration();
  }

  async setState(id: number, state: TokenState): Promise<void> {
    let changes: number;
    try {
      changes = await this.ctx.db.atomic(() => this.sSetState.run(state, id));
    } catch (err) {
      rethrow(err);
    }
    if (changes === 0) throw new StoreError("not_found", `token ${id} not found`);
    this.ctx.bumpGeneration();
  }

  async remove(id: number): Promise<boolean> {
    try {
      const removed = (await this.ctx.db.atomic(() => this.sDelete.run(id))) > 0;
      if (removed) this.ctx.bumpGeneration();
      return removed;
    } catch (err) {
      rethrow(err);
    }
  }

  /**
   * True when this call moved the high-water mark to `step`; resolves after the commit. Calls of
   * one event-loop turn share one guarded UPDATE (each row's `last_step < step` is checked under
   * its row lock, as with one statement per call); a token appears at most once per statement, so
   * a second call for the same token waits for the next one and then meets the new mark.
   */
  advanceTOTP(id: number, step: number, drift: number): Promise<boolean> {
    if (this.ctx.db.inTransaction()) return this.advanceOne(id, step, drift);
    return new Promise<boolean>((resolve, reject) => {
      this.pendingMarks.push({ id, step, drift, resolve, reject });
      if (!this.marksScheduled) {
        this.marksScheduled = true;
        setImmediate(this.flushMarks);
      }
    });
  }

  private async advanceOne(id: number, step: number, drift: number): Promise<boolean> {
    try {
      return (await this.sAdvanceTOTP.run(step, drift, id)) === 1;
    } catch (err) {
      rethrow(err);
    }
  }

  private pendingMarks: PendingMark[] = [];
  private marksScheduled = false;

  private readonly flushMarks = (): void => {
    this.marksScheduled = false;
    const all = this.pendingMarks;
    this.pendingMarks = [];
    const seen = new Set<number>();
    const batch: PendingMark[] = [];
    for (const w of all) {
      if (seen.has(w.id) || batch.length >= MARKS_MAX) this.pendingMarks.push(w);
      else {
        seen.add(w.id);
        batch.push(w);
      }
    }
    if (this.pendingMarks.length > 0 && !this.marksScheduled) {
      this.marksScheduled = true;
      // The rest go once this statement has committed, so that a repeated token meets the new mark.
      void this.runMarks(batch).finally(() => setImmediate(this.flushMarks));
      return;
    }
    void this.runMarks(batch);
  };

  private async runMarks(batch: PendingMark[]): Promise<void> {
    if (batch.length === 0) return;
    try {
      const won =
        batch.length === 1
          ? new Set((await this.sAdvanceTOTP.run(batch[0]!.step, batch[0]!.drift, batch[0]!.id)) === 1 ? [batch[0]!.id] : [])
          : new Set((await this.sAdvanceMany.all(JSON.stringify(batch.map((w) => ({ token_id: w.id, step: w.step, drift: w.drift }))))).map((r) => r.token_id));
      for (const w of batch) w.resolve(won.has(w.id));
    } catch (err) {
      for (const w of batch) {
        try {
          rethrow(err);
        } catch (mapped) {
          w.reject(mapped);
        }
      }
    }
  }

  /** True when this call moved the HOTP counter to `next`; resolves after the commit. */
  async advanceHOTP(id: number, next: number): Promise<boolean> {
    try {
      return (await this.sAdvanceHOTP.run(next, id)) === 1;
    } catch (err) {
      rethrow(err);
    }
  }

  async resync(id: number, values: { counter?: number; lastStep?: number; drift?: number }): Promise<void> {
    let changes: number;
    try {
      changes = await this.ctx.db.atomic(() => this.sResync.run(values.counter ?? null, values.lastStep ?? null, values.drift ?? null, id));
    } catch (err) {
      rethrow(err);
    }
    if (changes === 0) throw new StoreError("not_found", `token ${id} not found`);
    this.ctx.bumpGeneration();
  }
}
