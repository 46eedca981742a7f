// Code-only logins (`--first-factor none`): the NAS checked the password itself, and User-Password
// is the code alone.
//
//   lockout (code) ─► resolve ─► codeOnlyRefusal ─► groups ─► code matched and consumed ─► accept
//
// Two paths decide them with one core. The full path reads through the repositories (promises);
// the warm path reads the store's memory copy (store.warm) without a promise, for the RADIUS hot
// path, and answers only what memory can: a local user with no code counter for this source or
// the identity, whose code is right, wrong or replayed, or a name no local user has. Both take the
// same checks from this module, in the same order: codeOnlyRefusal for the account, OTPCodes.match
// and refusedMatch (codes.ts) for the code, failure() for a counted failure, Decisions for the
// accept. Where the core would refuse, or memory cannot answer, the warm path returns undefined and
// the full path decides; test/unit/auth/engine-warm.test.ts runs every scenario through both and
// compares decisions, audit events and what the store holds afterwards.

import type { AuthFailureReason } from "../audit/events.ts";
import { Directories, LOCAL_SOURCE } from "../directory/registry.ts";
import type { AuthType } from "../domain/auth-types.ts";
import { normalizeUsername } from "../domain/identity.ts";
import type { CachedLogin, Store, Token, User, WarmReads } from "../store/types.ts";
import { accountStatus, directoryStatus, groups } from "./account.ts";
import type { Attempt, Decision, Guarded, ReplyGuard } from "./attempt.ts";
import { refusedMatch, type CodeMatch, type OTPCodes } from "./codes.ts";
import { NO_ATTRIBUTES, OTP_ONLY, type Decisions } from "./decisions.ts";
import { notImplemented, phoneChain, type Refusal } from "./factors.ts";
import type { Lockout } from "./lockout.ts";
import type { Resolver } from "./resolve.ts";
import { sourceOf } from "./sources.ts";

const PASSWORD_ONLY: Refusal = Object.freeze({ reason: "type_not_allowed", detail: "a code-only client needs a second factor" });
const PHONE_TYPE: Refusal = Object.freeze({ reason: "type_not_allowed", detail: "a code-only client takes a TOTP/HOTP code; phone factors start after a password checked here" });

/**
 * The refusals of a code-only login on a resolved account, in order, before its code is looked at:
 * the record's status; the directory entry's status (`entryStatus`, directoryStatus "all": no bind
 * happens here, so every state but "ok" is refused, an expired password included); a type without
 * a second factor; a type this release cannot complete. Nothing is proven yet: no refusal may show
 * a clear text. undefined: go on to the code.
 */
export function codeOnlyRefusal(record: User, type: AuthType | null, entryStatus: AuthFailureReason | undefined, now: number): Refusal | undefined {
  const status = accountStatus(record, now);
  if (status) return { reason: status };
  if (entryStatus) return { reason: entryStatus, detail: "directory account status" };
  if (type === "password") return PASSWORD_ONLY;
  if (phoneChain(type) !== undefined) return PHONE_TYPE;
  return notImplemented(type);
}

export class CodeOnly {
  /** No directory profile is configured: local users are every client's only source. */
  private readonly noDirectories: boolean;

  constructor(
    private readonly store: Store,
    private readonly realms: "strip" | "keep",
    private readonly directories: Directories,
    private readonly lockout: Lockout,
    private readonly out: Decisions,
    private readonly resolver: Resolver,
    private readonly codes: OTPCodes,
  ) {
    this.noDirectories = directories.names().length === 0;
  }

  /** The full path, for a non-empty `code` and the normalised name `key`. */
  async run(attempt: Attempt, key: string, code: string): Promise<Decision> {
    const { now } = attempt;
    const source = sourceOf(attempt);
    const codeLock = await this.lockout.check(key, source, "code", now);
    if (codeLock.locked) return this.out.lockedOut(attempt, key, "code", codeLock);
    const resolved = await this.resolver.resolve(attempt, key);
    if (resolved.kind === "rejected") return resolved.decision;
    if (resolved.kind === "unknown") return this.failure(attempt, key, source, undefined, "unknown_user");
    const subject = resolved.subject;
    const user = subject.record;
    const refusal = codeOnlyRefusal(user, subject.type, directoryStatus(subject, "all"), now);
    if (refusal) return this.out.refuse(attempt, refusal, user);
    const member = await groups(subject);
    if (!member.ok) return this.out.reject(attempt, "not_in_group", user, member.detail);
    const result = await this.codes.verify(user, code, now);
    if (result !== "ok") return this.failure(attempt, key, source, user, result);
    await this.lockout.succeed(key, source, "code", codeLock);
    return this.out.completed(attempt, key, user, OTP_ONLY, member.attributes);
  }

  /**
   * The warm path: the same decision as run() from memory, with the store's high-water-mark commit
   * (and a failure's counter write, or a new known source's write) as the only asynchronous steps;
   * undefined where run() must decide. Its promise never rejects: failures map to Decisions.failed.
   * Undefined for: a read memory cannot answer, any code counter of this source or the identity
   * (run() checks, fails or clears it), a refusal of codeOnlyRefusal, no active token, a linked
   * directory record, or a client whose first source is a directory.
   */
  warm(attempt: Attempt): Promise<Decision> | undefined {
    const warm = this.store.warm;
    const start = warm ? this.start(attempt) : undefined;
    if (!warm || !start) return undefined;
    return this.decide(attempt, warm, start.key, start.source, start.sources);
  }

  /**
   * The warm path on a store without a memory copy that fetches a login's reads together
   * (Store.loginReads, one statement on PostgreSQL): the same decision from those reads, or
   * undefined (at once, or as the promise's value) where run() must decide. Undefined at once when
   * the store has no loginReads or the attempt is not one the warm path can answer. The promise
   * rejects only when the reads fail.
   */
  fetched(attempt: Attempt): Promise<Decision | undefined> | undefined {
    const store = this.store;
    const loginReads = store.loginReads?.bind(store);
    const start = loginReads ? this.start(attempt) : undefined;
    if (!loginReads || !start) return undefined;
    const fresh = () => loginReads(start.key, start.source).then((reads) => this.decide(attempt, reads, start.key, start.source, start.sources));
    const memory = store.cachedLogin?.(start.key, start.source);
    const remembered = memory ? this.revalidated(attempt, memory, start.key) : undefined;
    return remembered ? remembered.then((decision) => decision ?? fresh()) : fresh();
  }

  /**
   * An accept decided from what the store remembers (Store.cachedLogin), or undefined (at once, or
   * as the promise's value) where fresh reads must decide: memory only ever accepts, and only when
   * the write that consumes the code revalidated every input taken from memory (the user record's
   * status and type, the token, no code failure counter); a refusal, a wrong or replayed code, a
   * HOTP token or a write that did not happen is decided again from the store.
   */
  private revalidated(attempt: Attempt, memory: CachedLogin, key: string): Promise<Decision | undefined> | undefined {
    const match = this.memoryMatch(attempt, memory);
    if (!match) return undefined;
    const { user } = memory;
    const { now } = attempt;
    return memory.advance(match.token, match.step!, match.drift!).then(({ won, known }) => {
      if (!won) return undefined;
      // No counter existed (the write checked); a source recorded as known within a day costs no write.
      if (!this.lockout.needsRecord(known, now)) return this.out.accept(attempt, user, OTP_ONLY, NO_ATTRIBUTES);
      return this.out.completed(attempt, key, user, OTP_ONLY, NO_ATTRIBUTES);
    });
  }

  /**
   * The fresh TOTP match memory may accept: a local user that codeOnlyRefusal lets through and a
   * code that matches one of its remembered TOTP tokens above its mark; undefined otherwise (a
   * refusal, a wrong or replayed code, a HOTP token), which fresh reads decide.
   */
  private memoryMatch(attempt: Attempt, memory: CachedLogin): CodeMatch | undefined {
    const { user } = memory;
    if ((user.directory ?? null) !== null || codeOnlyRefusal(user, user.type, undefined, attempt.now)) return undefined;
    const match = this.codes.match(memory.tokens as Token[], attempt.secret!, attempt.now);
    return !match || refusedMatch(match) || match.token.kind !== "totp" ? undefined : match;
  }

  /**
   * revalidated() for a request whose idempotency record has not been looked up: the one statement
   * that consumes the code also looks the record up (nothing is written when one exists) and
   * records the accept. Undefined at once where that cannot be done (no memory entry, a code memory
   * cannot accept, an accept that cannot be sent): the caller looks the record up, then
   * authenticates. The promise settles undefined when nothing was written and no record exists
   * (the caller authenticates without a second lookup); it never rejects.
   */
  guarded(attempt: Attempt, guard: ReplyGuard): Promise<Guarded | undefined> | undefined {
    const store = this.store;
    if (store.warm || !store.loginReads || !store.cachedLogin) return undefined;
    const start = this.start(attempt);
    if (!start) return undefined;
    const memory = store.cachedLogin(start.key, start.source);
    if (!memory) return undefined;
    const match = this.memoryMatch(attempt, memory);
    if (!match) return undefined;
    const { user } = memory;
    const { now } = attempt;
    // the decision below is this accept: no reply attributes (as revalidated() gives)
    const reply = guard.accept();
    if (!reply) return undefined;
    const record = { key: guard.key, reply, expiresAt: guard.expiresAt, now, knownSince: this.lockout.knownSince(now) };
    return memory.advance(match.token, match.step!, match.drift!, record).then(
      (r): Guarded | undefined | Promise<Guarded> => {
        if (r.existing) return { kind: "recorded", reply: r.existing };
        if (!r.won) return undefined;
        try {
          if (r.recorded) return { kind: "decided", decision: this.out.accept(attempt, user, OTP_ONLY, NO_ATTRIBUTES), recorded: reply };
          // The source's known-source record is new or stale: written first, as completed() does; the reply is recorded after.
          return this.out.completed(attempt, start.key, user, OTP_ONLY, NO_ATTRIBUTES).then(
            (decision): Guarded => ({ kind: "decided", decision }),
            (err: unknown): Guarded => ({ kind: "decided", decision: this.out.failed(attempt, err) }),
          );
        } catch (err) {
          return { kind: "decided", decision: this.out.failed(attempt, err) };
        }
      },
      // The statement failed as a whole: nothing was written and nothing looked up.
      (err: unknown): Guarded => ({ kind: "decided", decision: this.out.failed(attempt, err) }),
    );
  }

  /** The name and source of an attempt the warm path may answer; undefined when local users are not asked first. */
  private start(attempt: Attempt): { key: string; source: string; sources: "only" | "first" } | undefined {
    const sources = this.localSources(attempt.channel.directories);
    if (sources === "none") return undefined;
    const key = normalizeUsername(attempt.username, { realms: this.realms });
    if (key === "") return undefined;
    return { key, source: sourceOf(attempt), sources };
  }

  private decide(attempt: Attempt, warm: WarmReads, key: string, source: string, sources: "only" | "first"): Promise<Decision> | undefined {
    if (warm.counted(key, "code", source) !== false) return undefined;
    const user = warm.userByName(key);
    if (user === undefined) return undefined;
    const { now } = attempt;
    if (user === null && sources === "first") return undefined; // a directory is asked next
    if (user === null) return this.failure(attempt, key, source, undefined, "unknown_user");
    if ((user.directory ?? null) !== null || codeOnlyRefusal(user, user.type, undefined, now)) return undefined;
    const tokens = warm.activeTokens(user.id);
    if (tokens === undefined || tokens.length === 0) return undefined;
    const match = this.codes.match(tokens, attempt.secret!, now);
    const refused = refusedMatch(match);
    if (refused) return this.failure(attempt, key, source, user, refused);
    // OTPCodes.consume without its own promise step: the commit's answer decides directly
    return this.codes.advance(match!).then(
      (advanced) => {
        try {
          if (!advanced) return this.failure(attempt, key, source, user, "replayed_code");
          // No counter to clear (there was none). A source already recorded as known (within a day)
          // costs no write: the accept is immediate.
          if (!this.lockout.needsRecord(warm.knownSource(key, source), now)) return this.out.accept(attempt, user, OTP_ONLY, NO_ATTRIBUTES);
          return this.out.completed(attempt, key, user, OTP_ONLY, NO_ATTRIBUTES).catch((err: unknown) => this.out.failed(attempt, err));
        } catch (err) {
          return this.out.failed(attempt, err); // as the full path's error handling would
        }
      },
      (err: unknown) => this.out.failed(attempt, err),
    );
  }

  /**
   * A failed code-only attempt, on both paths: the code counters of `source` and the identity count
   * it, then the reject (or Decisions.failed if that write fails). Never rejects.
   */
  private failure(attempt: Attempt, key: string, source: string, user: User | undefined, reason: "unknown_user" | "bad_code" | "replayed_code" | "no_token"): Promise<Decision> {
    return this.lockout.fail(key, source, "code", attempt.now).then(
      () => {
        try {
          return this.out.reject(attempt, reason, user);
        } catch (err) {
          return this.out.failed(attempt, err);
        }
      },
      (err: unknown) => this.out.failed(attempt, err),
    );
  }

  /** Where local users stand in this channel's lookup order: the only source, the first, or behind a directory. */
  private localSources(clientDirectories: string[] | null): "only" | "first" | "none" {
    if (clientDirectories === null) return this.noDirectories ? "only" : "none";
    const order = this.directories.order(clientDirectories);
    return order[0] !== LOCAL_SOURCE ? "none" : order.length === 1 ? "only" : "first";
  }
}
