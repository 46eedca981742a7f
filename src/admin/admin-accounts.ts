// Admin operations on the accounts of the admin web UI (`portcullis admin add|list|remove|reset-totp`),
// and the sign-in check: argon2id password plus a TOTP code above the account's high-water mark,
// behind the lockout back-off. The web UI (http/ui) and the CLI call these; neither hashes or checks anything itself.

import { usernameHash } from "../domain/identity.ts";
import { Lockout, type LockoutPolicy } from "../auth/lockout.ts";
import { generateSecret, otpauthURI, verifyTOTP } from "../otp/index.ts";
import { dummyVerify, hashPassword, verifyPassword } from "../runtime/password.ts";
import { adminAccountsOf, StoreError, type AdminAccount, type Store } from "../store/types.ts";
import type { AdminRole } from "./audit.ts";
import type { AdminContext } from "./context.ts";
import { AdminError, invalid } from "./errors.ts";
import { NAME } from "./validate.ts";

export const ADMIN_ROLES: readonly AdminRole[] = ["operator", "admin", "root"];
/** Shortest admin password accepted. */
export const ADMIN_PASSWORD_MIN = 12;
/** Longest admin password accepted (argon2 input; anything longer is a paste error). */
export const ADMIN_PASSWORD_MAX = 256;
/** The TOTP parameters of admin accounts: what every authenticator app supports. */
const TOTP = { algorithm: "SHA1", digits: 6, period: 30 } as const;

/** An account as listed: never the hash or the secret. */
export interface AdminAccountView {
  name: string;
  role: AdminRole;
  createdAt: string;
  lastSignInAt: string | null;
}

export function describeAdminAccount(a: AdminAccount): AdminAccountView {
  return { name: a.name, role: a.role, createdAt: new Date(a.createdAt).toISOString(), lastSignInAt: a.lastSignInAt === null ? null : new Date(a.lastSignInAt).toISOString() };
}

function accountName(raw: string): string {
  const name = raw.trim();
  if (!NAME.test(name)) throw new AdminError("invalid", "{name} must be 1-64 letters, digits, '.', '_' or '-'", { field: "name", expose: "1-64 letters, digits, '.', '_' or '-'" });
  return name;
}

function checkPassword(password: string): void {
  if (password.length < ADMIN_PASSWORD_MIN) throw invalid("password", `must be at least ${ADMIN_PASSWORD_MIN} characters`);
  if (password.length > ADMIN_PASSWORD_MAX) throw invalid("password", `must be at most ${ADMIN_PASSWORD_MAX} characters`);
}

function totpURI(ctx: Pick<AdminContext, "config">, name: string, secret: Uint8Array): string {
  return otpauthURI({ kind: "totp", issuer: `${ctx.config.otp.issuer} admin`, account: name, secret, ...TOTP });
}

/**
 * Creates an admin account with an argon2id password and a new TOTP secret, and records
 * admin.account_added. Returns the otpauth:// URI (it holds the secret: show it once). Throws
 * AdminError: "invalid" (field `name`, `role` or `password`), "conflict" when the name exists.
 */
export async function addAdminAccount(ctx: AdminContext, input: { name: string; role: string; password: string }): Promise<{ account: AdminAccountView; uri: string }> {
  const name = accountName(input.name);
  if (!(ADMIN_ROLES as readonly string[]).includes(input.role)) throw invalid("role", "must be root, admin or operator");
  const role = input.role as AdminRole;
  checkPassword(input.password);
  const passwordHash = await hashPassword(input.password);
  const totpSecret = generateSecret({ random: ctx.random });
  const repo = adminAccountsOf(ctx.store);
  try {
    const account = await ctx.audit.change(() => repo.add({ name, role, passwordHash, totpSecret }), () => ({ type: "admin.account_added", account: name, role }));
    return { account: describeAdminAccount(account), uri: totpURI(ctx, name, totpSecret) };
  } catch (err) {
    if (err instanceof StoreError && err.code === "conflict") throw new AdminError("conflict", `admin account ${name} exists`, { field: "name", expose: "exists" });
    throw err;
  }
}

export async function listAdminAccounts(ctx: Pick<AdminContext, "store">): Promise<AdminAccountView[]> {
  return (await adminAccountsOf(ctx.store).list()).map(describeAdminAccount);
}

/** The name of the row that stands for a directory user signed in by group: `ldap:<profile>:<user>`. */
const DIRECTORY_ACCOUNT = /^ldap:[A-Za-z0-9][A-Za-z0-9._-]{0,63}:[^\x00-\x1f\x7f]{1,256}$/;

/**
 * Removes an account (its sessions end) and records admin.account_removed; also the row of a
 * directory user (`ldap:<profile>:<user>`), which ends that user's sessions until their next
 * sign-in. Throws AdminError("not_found").
 */
export async function removeAdminAccount(ctx: AdminContext, raw: string): Promise<string> {
  const name = DIRECTORY_ACCOUNT.test(raw.trim()) ? raw.trim() : accountName(raw);
  const repo = adminAccountsOf(ctx.store);
  const removed = await ctx.audit.change(() => repo.remove(name), (gone) => (gone ? { type: "admin.account_removed", account: name } : null));
  if (!removed) throw new AdminError("not_found", `no admin account named ${name}`, { field: "name", expose: "no such admin account" });
  return name;
}

/** Gives an account a new TOTP secret (its sessions end), records admin.account_totp_reset, and returns the new URI. Throws AdminError("not_found"). */
export async function resetAdminTotp(ctx: AdminContext, raw: string): Promise<string> {
  const name = accountName(raw);
  const secret = generateSecret({ random: ctx.random });
  const repo = adminAccountsOf(ctx.store);
  const done = await ctx.audit.change(() => repo.setTotp(name, secret), (ok) => (ok ? { type: "admin.account_totp_reset", account: name } : null));
  if (!done) throw new AdminError("not_found", `no admin account named ${name}`, { field: "name", expose: "no such admin account" });
  return totpURI(ctx, name, secret);
}

/** The lockout identity of an admin account: apart from every user's, whatever the names. */
export function adminLockoutKey(name: string): string {
  return `admin-ui:${name}`;
}

export type SignInResult =
  | { ok: true; account: AdminAccount }
  | { ok: false; reason: "unknown_account" | "bad_password" | "bad_code" | "replayed_code" | "locked_out"; account?: string; userHash?: string };

/**
 * Checks a sign-in: the lockout back-off of (account, source) first, then the password (a dummy
 * verification for an unknown name, so that timing does not tell), then the TOTP code, whose step
 * must be above the account's high-water mark (moved with `UPDATE … WHERE totp_last_step < ?`, so
 * that a code is accepted once even by two nodes at the same moment). Every failure counts; a
 * success clears the counters it found. The caller answers every failure the same way.
 */
export async function checkAdminSignIn(
  deps: { store: Store; now(): number; lockout: LockoutPolicy; window: number },
  input: { name: string; password: string; code: string; source: string },
): Promise<SignInResult> {
  const name = input.name.trim();
  const repo = adminAccountsOf(deps.store);
  const lockout = new Lockout(deps.store.lockouts, deps.lockout);
  const key = adminLockoutKey(name);
  const now = deps.now();
  const known = NAME.test(name) ? await repo.get(name) : undefined;
  const who = known ? { account: known.name } : { userHash: usernameHash(name) };
  const pw = await lockout.check(key, input.source, "password", now);
  const cd = await lockout.check(key, input.source, "code", now);
  if (pw.locked || cd.locked) return { ok: false, reason: "locked_out", ...who };
  if (!known) {
    await dummyVerify(input.password);
    await lockout.fail(key, input.source, "password", now);
    return { ok: false, reason: "unknown_account", ...who };
  }
  if (input.password.length > ADMIN_PASSWORD_MAX || !(await verifyPassword(input.password, known.passwordHash))) {
    await lockout.fail(key, input.source, "password", now);
    return { ok: false, reason: "bad_password", ...who };
  }
  const result = verifyTOTP({ secret: known.totpSecret, ...TOTP, lastStep: known.totpLastStep, drift: 0 }, input.code.trim(), { now, window: deps.window });
  if (!result.ok || !(await repo.advanceStep(known.id, result.step, now))) {
    await lockout.fail(key, input.source, "code", now);
    return { ok: false, reason: result.ok || result.reason === "replay" ? "replayed_code" : "bad_code", ...who };
  }
  await lockout.succeed(key, input.source, "password", pw);
  await lockout.succeed(key, input.source, "code", cd);
  return { ok: true, account: { ...known, totpLastStep: result.step, lastSignInAt: now } };
}

export type PasswordChangeResult = { ok: true; sessionsKept: boolean } | { ok: false; reason: "bad_password" | "bad_code" | "replayed_code" | "locked_out" | "unknown_account" };

/**
 * An account changes its own password: the current password and a TOTP code are checked as at
 * sign-in (the same lockout counters, the same high-water mark: a code used to sign in cannot be
 * used again here), the new one must follow addAdminAccount's rules and be typed twice alike. The
 * rules are checked first, so that a typing mistake does not consume a code. On success the hash is
 * replaced (argon2id) and every session of the account except `keepSession` (a token hash) ends;
 * records admin.account_password_changed. A failed check returns its reason (the caller shows one
 * text for all). Throws AdminError("invalid"), field `password` or `again`.
 */
export async function changeAdminPassword(
  ctx: AdminContext,
  check: { lockout: LockoutPolicy; window: number },
  input: { name: string; current: string; code: string; password: string; again: string; source: string; keepSession?: string },
): Promise<PasswordChangeResult> {
  checkPassword(input.password);
  if (input.again !== input.password) throw invalid("again", "must be the same new password typed again");
  const verdict = await checkAdminSignIn({ store: ctx.store, now: ctx.now, lockout: check.lockout, window: check.window }, { name: input.name, password: input.current, code: input.code, source: input.source });
  if (!verdict.ok) return { ok: false, reason: verdict.reason };
  if (input.password === input.current) throw invalid("password", "must differ from the current password");
  const passwordHash = await hashPassword(input.password);
  const repo = adminAccountsOf(ctx.store);
  const name = verdict.account.name;
  const done = await ctx.audit.change(
    () => repo.setPassword(name, passwordHash, input.keepSession !== undefined ? { keepSession: input.keepSession } : {}),
    (ok) => (ok ? { type: "admin.account_password_changed", account: name } : null),
  );
  if (!done) throw new AdminError("not_found", `no admin account named ${name}`, { field: "name", expose: "no such admin account" });
  return { ok: true, sessionsKept: input.keepSession !== undefined };
}
