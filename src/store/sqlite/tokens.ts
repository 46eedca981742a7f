// OTP tokens in SQLite: sealed seeds bound to the serial, and the single-statement replay guards
// (TOTP high-water mark, HOTP counter) that make a code usable once.

import type { SealContext } from "../seal.ts";
import type { HashAlgorithm, NewToken, Token, TokenKind, TokenRepo, TokenState } from "../types.ts";
import { StoreError } from "../types.ts";
import { prep, rethrow, type StoreContext } from "./context.ts";

interface TokenRow {
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

/**
 * A group commit closes at the end of the event-loop turn, or as soon as it holds this many
 * writes. Under a burst (a whole receive buffer of requests in one turn), the first logins are
 * then committed and answered while the rest of the burst is still being decoded, instead of
 * every reply waiting for the last request of the burst; 32 keeps most of the batching's saving
 * (a commit of 32 costs about 0.9 µs a write against 0.7 µs for 80, 14.7 µs for 1).
 */
export const GROUP_COMMIT_MAX = 32;

/** A high-water-mark write waiting for the next group commit. */
interface PendingAdvance {
  totp: boolean;
  id: number;
  /** TOTP: the step; HOTP: the next counter. */
  value: number;
  drift: number;
  resolve(advanced: boolean): void;
  reject(err: unknown): void;
}

/** A token row joined with its replay guards (token_marks). */
const COLUMNS =
  "t.id AS id, t.serial AS serial, t.user_id AS user_id, t.kind AS kind, t.secret AS secret, t.algorithm AS algorithm, " +
  "t.digits AS digits, t.period AS period, m.counter AS counter, m.last_step AS last_step, m.drift AS drift, t.state AS state, t.created_at AS created_at";
const FROM = "tokens t JOIN token_marks m ON m.token_id = t.id";

/** Where a token's seed is sealed: the AD binds it to the serial. */
export function tokenSecretContext(serial: string): SealContext {
  return { table: "tokens", column: "secret", rowKey: serial };
}

export class SqliteTokenRepo implements TokenRepo {
  private readonly sList;
  private readonly sListForUser;
  private readonly sFindById;
  private readonly sFindBySerial;
  private readonly sActiveForUser;
  private readonly sInsert;
  private readonly sInsertMarks;
  private readonly txInsert;
  private readonly sAssign;
  private readonly sSetState;
  private readonly sDelete;
  private readonly sAdvanceTOTP;
  private readonly sAdvanceHOTP;
  private readonly sResync;
  private readonly txAddMany;
  private readonly txAdvance;

  constructor(private readonly ctx: StoreContext) {
    const { db } = ctx;
    this.sList = prep<TokenRow>(db, `SELECT ${COLUMNS} FROM ${FROM} ORDER BY t.id`);
    this.sListForUser = prep<TokenRow>(db, `SELECT ${COLUMNS} FROM ${FROM} WHERE t.user_id = ? ORDER BY t.id`);
    this.sFindById = prep<TokenRow>(db, `SELECT ${COLUMNS} FROM ${FROM} WHERE t.id = ?`);
    this.sFindBySerial = prep<TokenRow>(db, `SELECT ${COLUMNS} FROM ${FROM} WHERE t.serial = ?`);
    // No ORDER BY on the hot path: it costs a sorter per call (5 µs against 0.6 µs), and the index
    // (user_id, state) already yields rows by rowid in SQLite; order carries no meaning here.
    this.sActiveForUser = prep<TokenRow>(db, `SELECT ${COLUMNS} FROM ${FROM} WHERE t.user_id = ? AND t.state = 'active'`);
    this.sInsert = prep(
      db,
      `INSERT INTO tokens (serial, user_id, kind, secret, algorithm, digits, period, state, created_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    );
    this.sInsertMarks = prep(db, "INSERT INTO token_marks (token_id, counter, last_step, drift) VALUES (?, ?, ?, ?)");
    this.sAssign = prep(db, "UPDATE tokens SET user_id = ? WHERE id = ?");
    this.sSetState = prep(db, "UPDATE tokens SET state = ? WHERE id = ?");
    this.sDelete = prep(db, "DELETE FROM tokens WHERE id = ?");
    // The replay guards: one statement each, so the check and the write are one atomic step, and
    // the change count says whether this caller won (DESIGN "TOTP high-water mark").
    this.sAdvanceTOTP = prep(db, "UPDATE token_marks SET last_step = ?, drift = ? WHERE token_id = ? AND last_step < ?");
    this.sAdvanceHOTP = prep(db, "UPDATE token_marks SET counter = ? WHERE token_id = ? AND counter < ?");
    this.sResync = prep(
      db,
      "UPDATE token_marks SET counter = COALESCE(?, counter), last_step = COALESCE(?, last_step), drift = COALESCE(?, drift) WHERE token_id = ?",
    );
    this.txAddMany = db.transaction((tokens: NewToken[]) => tokens.map((t) => this.insert(t)));
    this.txInsert = db.transaction((token: NewToken) => this.insert(token));
    this.txAdvance = db.transaction((batch: PendingAdvance[]) => batch.map((w) => this.applyAdvance(w)));
  }

  private toToken(row: TokenRow): Token {
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
   * @internal Inserts one token synchronously (inside the caller's transaction when there is one).
   * Throws StoreError("conflict") for a duplicate serial, StoreError("not_found") for a missing user.
   */
  insert(token: NewToken): Token {
    const createdAt = this.ctx.now();
    const counter = token.counter ?? 0;
    const lastStep = token.lastStep ?? -1;
    const drift = token.drift ?? 0;
    try {
      const sealed = this.ctx.sealer.seal(token.secret, tokenSecretContext(token.serial));
      const { lastInsertRowid } = this.sInsert.run(
        token.serial,
        token.userId,
        token.kind,
        sealed,
        token.algorithm,
        token.digits,
        token.period,
        token.state,
        createdAt,
      );
      this.sInsertMarks.run(lastInsertRowid, counter, lastStep, drift);
      return { ...token, id: Number(lastInsertRowid), counter, lastStep, drift, createdAt };
    } catch (err) {
      rethrow(err, { conflict: `token '${token.serial}' exists`, missing: `user ${token.userId} not found` });
    }
  }

  /** All tokens, or those of one user. Throws StoreError("corrupt" | "key_mismatch") for a seed that cannot be opened. */
  async list(userId?: number): Promise<Token[]> {
    try {
      const rows = userId === undefined ? this.sList.all() : this.sListForUser.all(userId);
      return rows.map((r) => this.toToken(r));
    } catch (err) {
      rethrow(err);
    }
  }

  async findById(id: number): Promise<Token | undefined> {
    try {
      const row = this.sFindById.get(id);
      return row ? this.toToken(row) : undefined;
    } catch (err) {
      rethrow(err);
    }
  }

  async findBySerial(serial: string): Promise<Token | undefined> {
    try {
      const row = this.sFindBySerial.get(serial);
      return row ? this.toToken(row) : undefined;
    } catch (err) {
      rethrow(err);
    }
  }

  async activeForUser(userId: number): Promise<Token[]> {
    try {
      return this.sActiveForUser.all(userId).map((r) => this.toToken(r));
    } catch (err) {
      rethrow(err);
    }
  }

  /** Throws StoreError("conflict") when the serial exists, StoreError("not_found") when userId names no user. */
  async add(token: NewToken): Promise<Token> {
    let added: Token;
    try {
      added = this.txInsert.immediate(token); // the token row and its marks, together
    } catch (err) {
      rethrow(err);
    }
    this.ctx.bumpGeneration();
    return added;
  }

  /** All or nothing; throws like add for the first failing token. */
  async addMany(tokens: NewToken[]): Promise<Token[]> {
    try {
      const added = this.txAddMany.immediate(tokens);
      this.ctx.bumpGeneration();
      return added;
    } catch (err) {
      rethrow(err);
    }
  }

  /** Throws StoreError("not_found") when the token or the user does not exist. */
  async assign(id: number, userId: number | null): Promise<void> {
    let changes: number;
    try {
      changes = this.sAssign.run(userId, id).changes;
    } catch (err) {
      rethrow(err, { missing: `user ${userId} not found` });
    }
    if (changes === 0) throw new StoreError("not_found", `token ${id} not found`);
    this.ctx.bumpGeneration();
  }

  /** Throws StoreError("not_found") when the token does not exist. */
  async setState(id: number, state: TokenState): Promise<void> {
    let changes: number;
    try {
      changes = this.sSetState.run(state, id).changes;
    } catch (err) {
      rethrow(err);
    }
    if (changes === 0) throw new StoreError("not_found", `token ${id} not found`);
    this.ctx.bumpGeneration();
  }

  async remove(id: number): Promise<boolean> {
    try {
      const removed = this.sDelete.run(id).changes > 0;
      if (removed) this.ctx.bumpGeneration();
      return removed;
    } catch (err) {
      rethrow(err);
    }
  }

  /**
   * True when this call moved the high-water mark to `step`. Resolves only after the write has
   * committed. Writes arriving in the same event-loop turn share one transaction (group commit):
   * each UPDATE is still its own guarded statement, so two racing uses of one code still see
   * exactly one winner, and a failed commit rejects every caller in the batch.
   */
  advanceTOTP(id: number, step: number, drift: number): Promise<boolean> {
    return this.enqueue(true, id, step, drift);
  }

  /** True when this call moved the HOTP counter to `next`; committed before resolving, like advanceTOTP. */
  advanceHOTP(id: number, next: number): Promise<boolean> {
    return this.enqueue(false, id, next, 0);
  }

  private pending: PendingAdvance[] = [];
  private flushScheduled = false;

  private enqueue(totp: boolean, id: number, value: number, drift: number): Promise<boolean> {
    return new Promise<boolean>((resolve, reject) => {
      this.pending.push({ totp, id, value, drift, resolve, reject });
      if (this.pending.length >= GROUP_COMMIT_MAX) return this.commitPending();
      if (!this.flushScheduled) {
        this.flushScheduled = true;
        setImmediate(this.endOfTurn);
      }
    });
  }

  private readonly endOfTurn = (): void => {
    this.flushScheduled = false;
    this.commitPending();
  };

  /** Commits every pending write in one transaction and settles their promises. */
  private commitPending(): void {
    if (this.pending.length === 0) return;
    const batch = this.pending;
    this.pending = [];
    let results: boolean[];
    try {
      results = batch.length === 1 ? [this.applyAdvance(batch[0]!)] : this.txAdvance.immediate(batch);
    } catch (err) {
      for (const w of batch) {
        try {
          rethrow(err);
        } catch (mapped) {
          w.reject(mapped);
        }
      }
      return;
    }
    batch.forEach((w, i) => w.resolve(results[i]!));
  }

  private applyAdvance(w: Omit<PendingAdvance, "resolve" | "reject">): boolean {
    return w.totp ? this.sAdvanceTOTP.run(w.value, w.drift, w.id, w.value).changes === 1 : this.sAdvanceHOTP.run(w.value, w.id, w.value).changes === 1;
  }

  /** Throws StoreError("not_found") when the token does not exist. */
  async resync(id: number, values: { counter?: number; lastStep?: number; drift?: number }): Promise<void> {
    let changes: number;
    try {
      changes = this.sResync.run(values.counter ?? null, values.lastStep ?? null, values.drift ?? null, id).changes;
    } catch (err) {
      rethrow(err);
    }
    if (changes === 0) throw new StoreError("not_found", `token ${id} not found`);
    this.ctx.bumpGeneration();
  }
}
