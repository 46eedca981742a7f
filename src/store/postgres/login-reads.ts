// The reads of a code-only login in one statement: whether a code failure counter exists for the
// identity from this source or across every source, the user record named, that user's active
// tokens with their marks, and this source's known-source record. The logins of one event-loop
// turn share the statement (BatchedRead), so a turn of logins costs one read round trip instead of
// about six. Everything is read from the database in the request, as by the repositories one at a
// time (one snapshot instead of several): the high-water-mark UPDATE, the counter upserts and the
// known-source upsert still decide.
//
// The login cache (on in `serve` with `[store] cache`): the user record and active tokens of each
// local user read here are remembered, and a later login of that name may decide from them, but
// only through a high-water-mark UPDATE that revalidates, in the same statement, every input taken
// from memory (the token still active and the user's, the user's name, enabled flag, directory
// link, type and expiry unchanged, the token's drift unchanged, no code failure counter) and reads
// the known-source record. When that statement does not write (a replay, a change made by any node,
// a counter), the entry is forgotten and the login is decided from fresh reads. So a stale entry
// costs a second statement, never a wrong decision, and no notification is needed for correctness.

import type { AdvanceOutcome, CachedLogin, FailureKind, Token, User, WarmReads } from "../types.ts";
import { BatchedRead } from "./batch.ts";
import { numbered, rethrow, type PgStoreContext } from "./context.ts";
import type { PgTokenRepo, TokenRow } from "./tokens.ts";
import type { AdvanceResult, PgTurnStatement } from "./turn-statement.ts";
import { toUser, type UserRow } from "./users.ts";

interface LoginRow {
  k_name: string;
  k_source: string;
  counted: boolean;
  known: number | null;
  u_id: number | null;
  u_username: string;
  u_password_hash: string | null;
  u_type: string | null;
  u_phone: string | null;
  u_email: string | null;
  u_disabled: number;
  u_expires_at: number | null;
  u_directory: string | null;
  u_external_id: string | null;
  u_directory_phone: string | null;
  u_created_at: number;
  t_id: number | null;
  t_serial: string;
  t_user_id: number | null;
  t_kind: string;
  t_secret: string;
  t_algorithm: string;
  t_digits: number;
  t_period: number;
  t_counter: number;
  t_last_step: number;
  t_drift: number;
  t_state: string;
  t_created_at: number;
}

// The `= ANY (ARRAY(…))` conditions let the planner look each name up in its index instead of
// hashing the whole table (jsonb_to_recordset's rows are estimated at 100).
const SQL = `
WITH k AS (SELECT * FROM jsonb_to_recordset(?1::text::jsonb) AS k(name text, source text))
SELECT k.name AS k_name, k.source AS k_source,
  EXISTS (SELECT 1 FROM lockouts l WHERE l.subject = k.name AND l.kind = 'code' AND l.source IN (k.source, '')) AS counted,
  (SELECT s.last_success_at FROM known_sources s WHERE s.subject = k.name AND s.source = k.source) AS known,
  u.id AS u_id, u.username AS u_username, u.password_hash AS u_password_hash, u.type AS u_type, u.phone AS u_phone,
  u.email AS u_email, u.disabled AS u_disabled, u.expires_at AS u_expires_at, u.directory AS u_directory,
  u.external_id AS u_external_id, u.directory_phone AS u_directory_phone, u.created_at AS u_created_at,
  t.id AS t_id, t.serial AS t_serial, t.user_id AS t_user_id, t.kind AS t_kind, t.secret AS t_secret,
  t.algorithm AS t_algorithm, t.digits AS t_digits, t.period AS t_period, m.counter AS t_counter,
  m.last_step AS t_last_step, m.drift AS t_drift, t.state AS t_state, t.created_at AS t_created_at
FROM k
LEFT JOIN users u ON u.username = k.name AND u.username = ANY (ARRAY(SELECT jsonb_array_elements(?1::text::jsonb) ->> 'name'))
LEFT JOIN tokens t ON t.user_id = u.id AND t.state = 'active'
LEFT JOIN token_marks m ON m.token_id = t.id
ORDER BY t.id`;

function userOf(r: LoginRow): UserRow {
  return {
    id: r.u_id!,
    username: r.u_username,
    password_hash: r.u_password_hash,
    type: r.u_type,
    phone: r.u_phone,
    email: r.u_email,
    disabled: r.u_disabled,
    expires_at: r.u_expires_at,
    directory: r.u_directory,
    external_id: r.u_external_id,
    directory_phone: r.u_directory_phone,
    created_at: r.u_created_at,
  };
}

function tokenOf(r: LoginRow): TokenRow {
  return {
    id: r.t_id!,
    serial: r.t_serial,
    user_id: r.t_user_id,
    kind: r.t_kind,
    secret: r.t_secret,
    algorithm: r.t_algorithm,
    digits: r.t_digits,
    period: r.t_period,
    counter: r.t_counter,
    last_step: r.t_last_step,
    drift: r.t_drift,
    state: r.t_state,
    created_at: r.t_created_at,
  };
}

/** What one login's statement row(s) found, answered for that name and source only. */
class LoginSnapshot implements WarmReads {
  constructor(
    private readonly key: string,
    private readonly source: string,
    private readonly user: User | null,
    private readonly tokens: Token[],
    private readonly hasCounter: boolean,
    private readonly known: number | null,
  ) {}
  userByName(username: string): User | null | undefined {
    return username === this.key ? this.user : undefined;
  }
  activeTokens(userId: number): Token[] | undefined {
    return this.user !== null && userId === this.user.id ? this.tokens : undefined;
  }
  counted(key: string, kind: FailureKind, source: string): boolean | undefined {
    return key === this.key && kind === "code" && source === this.source ? this.hasCounter : undefined;
  }
  knownSource(key: string, source: string): number | null | undefined {
    return key === this.key && source === this.source ? this.known : undefined;
  }
}

// Each row is written only if its own mark is lower and every remembered input still holds (see the
// header); the statement (turn-statement.ts, ADVANCE_CTE) also returns the source's known-source
// record, and carries the turn's idempotency-record lookups and records.

/** Remembered users before the cache is emptied (bounds memory). */
const CACHE_MAX = 262_144;

interface Remembered {
  user: User;
  tokens: Token[];
}

export class PgLoginReads {
  private readonly batch: BatchedRead<LoginRow>;
  /** name → the record and active tokens last read; undefined while the cache is off. */
  private cache: Map<string, Remembered> | undefined;

  constructor(
    private readonly ctx: PgStoreContext,
    private readonly tokens: PgTokenRepo,
    private readonly turn: PgTurnStatement,
  ) {
    const text = numbered(SQL);
    this.batch = new BatchedRead<LoginRow>(
      ctx.db,
      SQL,
      (r) => JSON.stringify([r.k_name, r.k_source]),
      async (json) => (await ctx.db.query<LoginRow>(text, [json])).rows,
    );
  }

  async read(key: string, source: string): Promise<WarmReads> {
    let rows: LoginRow[];
    try {
      const one = { name: key, source };
      rows = await this.batch.load(JSON.stringify([key, source]), one, [JSON.stringify([one])]);
    } catch (err) {
      rethrow(err);
    }
    const first = rows[0];
    if (!first) throw new Error("login reads: no row for the name"); // k always yields a row
    const user = first.u_id === null ? null : toUser(userOf(first));
    const tokens: Token[] = [];
    for (const r of rows) if (r.t_id !== null) tokens.push(this.tokens.toToken(tokenOf(r)));
    if (this.cache) {
      if (user !== null && user.directory === null && tokens.length > 0) {
        if (this.cache.size >= CACHE_MAX && !this.cache.has(key)) this.cache.clear();
        // copies: the decision may hold these objects; the cache moves its own marks
        this.cache.set(key, { user, tokens: tokens.map((t) => ({ ...t })) });
      } else this.cache.delete(key);
    }
    return new LoginSnapshot(key, source, user, tokens, first.counted, first.known);
  }

  /** Turns the login cache on (serve with `[store] cache`). */
  enableCache(): void {
    this.cache ??= new Map();
  }

  cached(key: string, source: string): CachedLogin | undefined {
    const hit = this.cache?.get(key);
    if (!hit) return undefined;
    return {
      user: hit.user,
      tokens: hit.tokens,
      advance: (token, step, drift, record) => {
        const row: Record<string, unknown> = {
          token_id: token.id,
          step,
          drift,
          was_drift: token.drift,
          user_id: hit.user.id,
          name: key,
          source,
          type: hit.user.type,
          expires_at: hit.user.expiresAt,
        };
        if (record) {
          row.key = record.key;
          row.reply = Buffer.from(record.reply.buffer, record.reply.byteOffset, record.reply.byteLength).toString("base64");
          row.until = record.expiresAt;
          row.now = record.now;
          row.known_since = record.knownSince;
        }
        return this.advance(row, token.id).then((r): AdvanceOutcome => {
          if (r.existing) return { won: false, known: null, existing: new Uint8Array(Buffer.from(r.existing.reply, "base64")) };
          if (!r.won) {
            if (this.cache?.get(key) === hit) this.cache.delete(key);
          } else if (token.lastStep < step) {
            token.lastStep = step;
            token.drift = drift;
          }
          return record ? { won: r.won, known: r.known, recorded: r.recorded } : { won: r.won, known: r.known };
        });
      },
    };
  }

  /** A guarded write, in the next statement of the turn (one per token and statement). */
  private async advance(json: Record<string, unknown>, tokenId: number): Promise<AdvanceResult> {
    try {
      return await this.turn.advance(json, tokenId);
    } catch (err) {
      rethrow(err);
    }
  }
}
