// Sign-in to the admin web UI by directory group (`[admin_ui] ldap_profile`, `root_group`,
// `admin_group`, `operator_group`). A name that is not a local admin account is looked up in that
// profile: the password is checked by a bind as the user, then the role groups (the highest role
// whose group holds the user wins), then a code of a TOTP token the user has in the store (the same
// record RADIUS logins use), consumed through the token's high-water mark. The same lockout counters
// as local accounts; every failure returns its reason for the audit log only.
//
// A signed-in directory user is represented by an admin account row named `ldap:<profile>:<user>`
// (a name `portcullis admin add` can never make, and that no sign-in form can type: names with ':'
// are refused before any lookup). Its password hash is unusable and its role is the one found at
// this sign-in: a row whose role differs is replaced, which ends the sessions of the old role.

import { OTPCodes } from "../auth/codes.ts";
import { Lockout, type LockoutPolicy } from "../auth/lockout.ts";
import type { Config } from "../config/schema.ts";
import { normalizeUsername, usernameHash } from "../domain/identity.ts";
import type { Directories } from "../directory/registry.ts";
import { DirectoryUnavailableError } from "../directory/types.ts";
import { adminAccountsOf, StoreError, type AdminAccount, type Store } from "../store/types.ts";
import { adminLockoutKey, checkAdminSignIn, type SignInResult } from "./admin-accounts.ts";
import type { AdminRole } from "./audit.ts";
import { NAME } from "./validate.ts";

/** The prefix of the account rows that stand for directory users. */
export const DIRECTORY_ACCOUNT_PREFIX = "ldap:";
/** Never a valid argon2 hash: a directory account's password is the directory's. */
const NO_LOCAL_PASSWORD = "!directory";

/** The account name of a directory user of `profile`. */
export function directoryAccountName(profile: string, username: string): string {
  return `${DIRECTORY_ACCOUNT_PREFIX}${profile}:${username}`;
}

/** Whether an account stands for a directory user (its password is the directory's). */
export function isDirectoryAccount(account: Pick<AdminAccount, "name">): boolean {
  return account.name.startsWith(DIRECTORY_ACCOUNT_PREFIX);
}

/** The role groups of `[admin_ui]`, highest role first; empty DNs left out. */
export function roleGroups(ui: Pick<Config["admin_ui"], "root_group" | "admin_group" | "operator_group">): { role: AdminRole; group: string }[] {
  const all: { role: AdminRole; group: string }[] = [
    { role: "root", group: ui.root_group.trim() },
    { role: "admin", group: ui.admin_group.trim() },
    { role: "operator", group: ui.operator_group.trim() },
  ];
  return all.filter((g) => g.group !== "");
}

/** The highest role whose group is among `memberOf` (DNs compared without case); undefined: none. */
export function roleFromGroups(groups: { role: AdminRole; group: string }[], memberOf: Iterable<string>): AdminRole | undefined {
  const member = new Set([...memberOf].map((dn) => dn.toLowerCase()));
  for (const g of groups) if (member.has(g.group.toLowerCase())) return g.role;
  return undefined;
}

export type DirectorySignInFailure = "unknown_account" | "bad_password" | "no_role" | "no_token" | "bad_code" | "replayed_code" | "locked_out" | "directory_unavailable";

export interface SignInDeps {
  store: Store;
  now(): number;
  lockout: LockoutPolicy;
  window: number;
  hotpLookAhead?: number;
  random(n: number): Uint8Array;
  ui: Pick<Config["admin_ui"], "ldap_profile" | "root_group" | "admin_group" | "operator_group">;
  directories?: Directories;
}

export type UiSignInResult =
  | { ok: true; account: AdminAccount; source: "local" | "ldap" }
  | { ok: false; reason: Extract<SignInResult, { ok: false }>["reason"] | DirectorySignInFailure; account?: string; userHash?: string };

/**
 * The sign-in of the admin web UI: a local account when one has that name (local accounts win),
 * else, with `[admin_ui] ldap_profile`, the directory user of that name; else the local check's
 * refusal (a dummy argon2 verification). The caller shows one text for every failure.
 */
export async function checkUiSignIn(deps: SignInDeps, input: { name: string; password: string; code: string; source: string }): Promise<UiSignInResult> {
  const name = input.name.trim();
  const directory = deps.ui.ldap_profile !== "" ? deps.directories?.get(deps.ui.ldap_profile) : undefined;
  const repo = adminAccountsOf(deps.store);
  // A local account wins over any spelling of its name that the directory would match too.
  const local = NAME.test(name) ? ((await repo.get(name)) ?? (await repo.get(normalizeUsername(name)))) : undefined;
  if (local || !directory || !NAME.test(name)) {
    const r = await checkAdminSignIn(deps, input);
    return r.ok ? { ok: true, account: r.account, source: "local" } : r;
  }
  return checkDirectorySignIn(deps, directory, { ...input, name });
}

async function checkDirectorySignIn(
  deps: SignInDeps,
  directory: NonNullable<ReturnType<Directories["get"]>>,
  input: { name: string; password: string; code: string; source: string },
): Promise<UiSignInResult> {
  const lockout = new Lockout(deps.store.lockouts, deps.lockout);
  // The directory matches names without case: so do the counters, or "Ada" and "ADA" would each get their own.
  const username = normalizeUsername(input.name);
  const key = adminLockoutKey(username);
  const now = deps.now();
  const userHash = usernameHash(input.name);
  const pw = await lockout.check(key, input.source, "password", now);
  const cd = await lockout.check(key, input.source, "code", now);
  if (pw.locked || cd.locked) return { ok: false, reason: "locked_out", userHash };
  const failPassword = async (reason: DirectorySignInFailure): Promise<UiSignInResult> => {
    await lockout.fail(key, input.source, "password", now);
    return { ok: false, reason, userHash };
  };
  try {
    const entry = await directory.findUser(username);
    if (!entry) {
      await directory.dummyBind(input.password);
      return failPassword("unknown_account");
    }
    const bind = await directory.verifyPassword(entry, input.password);
    if (!bind.ok || entry.status !== "ok") return failPassword("bad_password");
    const groups = roleGroups(deps.ui);
    const role = roleFromGroups(groups, await directory.memberOf(entry, groups.map((g) => g.group)));
    if (!role) return failPassword("no_role");
    const record = (await deps.store.users.findByExternal(directory.name, entry.id)) ?? (await deps.store.users.findByName(username).then((u) => (u && u.directory === directory.name ? u : undefined)));
    const tokens = record && !record.disabled ? (await deps.store.tokens.activeForUser(record.id)).filter((t) => t.kind === "totp") : [];
    const codes = new OTPCodes(deps.store, { window: deps.window, hotpLookAhead: deps.hotpLookAhead ?? 0, otpPrompt: "" });
    const verdict = tokens.length === 0 ? "no_token" : await codes.consume(codes.match(tokens, input.code.trim(), now));
    if (verdict !== "ok") {
      await lockout.fail(key, input.source, "code", now);
      return { ok: false, reason: verdict, userHash };
    }
    await lockout.succeed(key, input.source, "password", pw);
    await lockout.succeed(key, input.source, "code", cd);
    const account = await directoryAccount(deps, directoryAccountName(directory.name, entry.username || username), role);
    return { ok: true, account, source: "ldap" };
  } catch (err) {
    if (err instanceof DirectoryUnavailableError) return { ok: false, reason: "directory_unavailable", userHash };
    throw err;
  }
}

/** The account row of a directory user with `role`: kept when its role is that one, else replaced (its sessions end). */
async function directoryAccount(deps: Pick<SignInDeps, "store" | "random">, name: string, role: AdminRole): Promise<AdminAccount> {
  const repo = adminAccountsOf(deps.store);
  for (let attempt = 0; attempt < 3; attempt++) {
    const found = await repo.get(name);
    if (found && found.role === role) return found;
    if (found) await repo.remove(name);
    try {
      return await repo.add({ name, role, passwordHash: NO_LOCAL_PASSWORD, totpSecret: deps.random(20) });
    } catch (err) {
      // Another sign-in of the same user made the row at the same moment: read it again.
      if (!(err instanceof StoreError && err.code === "conflict")) throw err;
    }
  }
  throw new StoreError("conflict", `admin account ${name} keeps changing`);
}
