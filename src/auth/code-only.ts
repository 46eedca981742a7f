// Code-only logins (`--first-factor none`): the NAS checked the password itself, and User-Password
// is the code alone.
//
//   lockout (code) ─► resolve ─► status and type ─► groups ─► code matched and consumed ─► accept
//
// Two paths decide them. The full path reads through the repositories (promises); the warm path
// reads the store's memory copy (store.warm) without a promise, for the RADIUS hot path, with the
// same checks in the same order; test/unit/auth/engine-warm.test.ts runs every scenario through
// both and compares decisions, audit events and what the store holds afterwards.

import { Directories, LOCAL_SOURCE } from "../directory/registry.ts";
import { normalizeUsername } from "../domain/identity.ts";
import type { Store, User } from "../store/types.ts";
import { accountStatus, directoryStatus, groups } from "./account.ts";
import type { Attempt, Decision } from "./attempt.ts";
import type { OTPCodes } from "./codes.ts";
import { NO_ATTRIBUTES, OTP_ONLY, type Decisions } from "./decisions.ts";
import { notImplemented } from "./factors.ts";
import type { Lockout } from "./lockout.ts";
import type { Resolver } from "./resolve.ts";
import { sourceOf } from "./sources.ts";

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
    if (resolved.kind === "unknown") {
      await this.lockout.fail(key, source, "code", now);
      return this.out.reject(attempt, "unknown_user", undefined);
    }
    const subject = resolved.subject;
    const user = subject.record;
    const status = accountStatus(user, now);
    if (status) return this.out.reject(attempt, status, user);
    // No bind happens here, so the directory's account status is the only check of it: every state
    // but "ok" is refused, an expired password included. Nothing is proven yet: the generic text only.
    const dirStatus = directoryStatus(subject, "all");
    if (dirStatus) return this.out.reject(attempt, dirStatus, user, "directory account status");
    if (subject.type === "password") return this.out.reject(attempt, "type_not_allowed", user, "a code-only client needs a second factor");
    const unimplemented = notImplemented(subject.type);
    if (unimplemented) return this.out.refuse(attempt, unimplemented, user);
    const member = await groups(subject);
    if (!member.ok) return this.out.reject(attempt, "not_in_group", user, member.detail);
    const result = await this.codes.verify(user, code, now);
    if (result !== "ok") {
      await this.lockout.fail(key, source, "code", now);
      return this.out.reject(attempt, result, user);
    }
    await this.lockout.succeed(key, source, "code", codeLock);
    return this.out.completed(attempt, key, user, OTP_ONLY, member.attributes);
  }

  /**
   * The warm path: the same decision as run() from memory, with the store's high-water-mark commit
   * (and a failure's counter write, or a new known source's write) as the only asynchronous steps;
   * undefined where run() must decide. Its promise never rejects: failures map to Decisions.failed.
   * Undefined for: a read memory cannot answer, any code counter of this source or the identity
   * (run() checks, fails or clears it), a disabled, expired, password-type or unimplemented-type
   * user, no active token, a linked directory record, or a client whose first source is a directory.
   */
  warm(attempt: Attempt): Promise<Decision> | undefined {
    const warm = this.store.warm;
    const sources = warm ? this.localSources(attempt.channel.directories) : "none";
    if (!warm || sources === "none") return undefined;
    const key = normalizeUsername(attempt.username, { realms: this.realms });
    if (key === "") return undefined;
    const source = sourceOf(attempt);
    if (warm.counted(key, "code", source) !== false) return undefined;
    const user = warm.userByName(key);
    if (user === undefined) return undefined;
    const { now } = attempt;
    if (user === null && sources === "first") return undefined; // a directory is asked next
    if (user === null) return this.failure(attempt, key, source, undefined, "unknown_user");
    if ((user.directory ?? null) !== null || accountStatus(user, now)) return undefined;
    if (user.type === "password" || notImplemented(user.type)) return undefined;
    const tokens = warm.activeTokens(user.id);
    if (tokens === undefined || tokens.length === 0) return undefined;
    const match = this.codes.match(tokens, attempt.secret!, now);
    if (!match) return this.failure(attempt, key, source, user, "bad_code");
    if (match.replay) return this.failure(attempt, key, source, user, "replayed_code");
    // OTPCodes.consume without its own promise step: the commit's answer decides directly
    return this.codes.advance(match).then(
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

  /** A failed warm attempt: the code counter's failure is recorded, then the reject (or failed() if that write fails). */
  private failure(attempt: Attempt, key: string, source: string, user: User | undefined, reason: "unknown_user" | "bad_code" | "replayed_code"): Promise<Decision> {
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
