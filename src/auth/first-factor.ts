// The first factor: one password check of the subject's source (a directory bind, or argon2id
// against the store's hash), and a check of the same cost for a name no source knows, so that
// neither timing nor the answer tells whether the user exists (DESIGN "Generic rejects").

import type { AuthFailureReason } from "../audit/events.ts";
import { Directories, LOCAL_SOURCE } from "../directory/registry.ts";
import type { BindFailure } from "../directory/types.ts";
import { dummyVerify, verifyPassword } from "../runtime/password.ts";
import type { Channel } from "./attempt.ts";
import type { Subject } from "./resolve.ts";

/** Every first-factor check costs exactly one of these calls, whether or not the user exists. */
export interface PasswordVerifier {
  verify(plain: string, hash: string): Promise<boolean>;
  /** Same cost as verify, for unknown users and users without a local password. */
  dummy(plain: string): Promise<void>;
}

/** runtime/password: argon2id or bcrypt, with bounded concurrency (PasswordOverloadedError beyond it). */
export const RUNTIME_PASSWORDS: PasswordVerifier = { verify: verifyPassword, dummy: async (plain) => void (await dummyVerify(plain)) };

/**
 * The outcome of a first-factor check. `change`: the password is right but expired or to be changed
 * (the change flow). `proven`: the reason comes only with a right password (messages.ts may show a
 * clear text). `counts`: a failure of Portcullis's own password counter (only a wrong password).
 */
export type PasswordOutcome =
  | { ok: true; change?: "password_expired" | "must_change" }
  | { ok: false; reason: AuthFailureReason; proven: boolean; counts: boolean; detail?: string };

/** AD bind sub-codes (directory/types.ts BindFailure) → reject reasons; `proven`: AD returns it only for a right password. */
const BIND_FAILURES: Record<Exclude<BindFailure, "password_expired" | "must_change">, { reason: AuthFailureReason; proven: boolean }> = {
  bad_credentials: { reason: "bad_password", proven: false }, // 52e
  not_permitted_time: { reason: "not_permitted", proven: true }, // 530
  not_permitted_workstation: { reason: "not_permitted", proven: true }, // 531
  disabled: { reason: "account_disabled", proven: true }, // 533
  account_expired: { reason: "account_expired", proven: true }, // 701
  locked: { reason: "account_locked", proven: false }, // 775: returned whatever the password
};

export class PasswordFactor {
  constructor(
    private readonly passwords: PasswordVerifier,
    private readonly directories: Directories,
  ) {}

  /** One password check of the subject's source: a directory bind, or argon2id (a dummy when there is no hash). */
  async check(subject: Subject, password: string): Promise<PasswordOutcome> {
    if (subject.dir) {
      const { directory, entry } = subject.dir;
      if (password === "") {
        await directory.dummyBind(password);
        return { ok: false, reason: "bad_password", proven: false, counts: true };
      }
      const bind = await directory.verifyPassword(entry, password);
      if (!bind.ok) {
        if (bind.reason === "password_expired" || bind.reason === "must_change") return { ok: true, change: bind.reason };
        const mapped = BIND_FAILURES[bind.reason];
        // Only a wrong password counts for Portcullis's own lockout.
        return { ok: false, reason: mapped.reason, proven: mapped.proven, counts: bind.reason === "bad_credentials", detail: bind.detail };
      }
      // The bind proved the password; the entry's own state still applies (read without a bind).
      switch (entry.status) {
        case "ok":
          return { ok: true };
        case "password_expired":
        case "must_change":
          return { ok: true, change: entry.status };
        case "disabled":
          return { ok: false, reason: "account_disabled", proven: true, counts: false, detail: "directory account status" };
        case "locked":
          return { ok: false, reason: "account_locked", proven: true, counts: false, detail: "directory account status" };
        case "account_expired":
          return { ok: false, reason: "account_expired", proven: true, counts: false, detail: "directory account status" };
      }
    }
    const user = subject.record;
    if (user.passwordHash === null || password === "") {
      await this.passwords.dummy(password);
      return { ok: false, reason: "bad_password", proven: false, counts: true };
    }
    return (await this.passwords.verify(password, user.passwordHash)) ? { ok: true } : { ok: false, reason: "bad_password", proven: false, counts: true };
  }

  /** The cost of a password check for a name no source knows: a bind on the first profile in the order, else argon2id. */
  async dummy(channel: Channel, password: string): Promise<void> {
    for (const source of this.directories.order(channel.directories)) {
      const directory = source === LOCAL_SOURCE ? undefined : this.directories.get(source);
      if (directory) return directory.dummyBind(password);
    }
    await this.passwords.dummy(password);
  }
}
