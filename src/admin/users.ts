// Admin operations on users: list, show, add (local or directory-linked), update, remove, unlock.
// Shared by `portcullis user …` and /api/admin/v1/users; bulk import is in user-import.ts.

import { AUTH_TYPES, authTypeNumber, parseAuthType, type AuthType } from "../domain/auth-types.ts";
import { hashPassword } from "../runtime/password.ts";
import { StoreError, type LockoutState, type NewUser, type Store, type User } from "../store/types.ts";
import { LEAST_ROLE, requireRole } from "./audit.ts";
import type { AdminContext } from "./context.ts";
import { AdminError, invalid } from "./errors.ts";
import { cleanUsername, isEmail, normalizePhone, parseExpiry, PHONE_RULE } from "./validate.ts";

/** A user as listed: never the password hash. */
export interface UserListItem {
  username: string;
  directory: string | null;
  externalId: string | null;
  type: AuthType | null;
  phone: string | null;
  email: string | null;
  password: boolean;
  disabled: boolean;
  tokens: number;
}

/** Every user with their token count. */
export async function listUsers(ctx: Pick<AdminContext, "store">): Promise<UserListItem[]> {
  const [users, tokens] = await Promise.all([ctx.store.users.list(), ctx.store.tokens.list()]);
  const count = new Map<number, number>();
  for (const t of tokens) if (t.userId !== null) count.set(t.userId, (count.get(t.userId) ?? 0) + 1);
  return users.map((u) => ({
    username: u.username,
    directory: u.directory,
    externalId: u.externalId,
    type: u.type,
    phone: u.phone,
    email: u.email,
    password: u.passwordHash !== null,
    disabled: u.disabled,
    tokens: count.get(u.id) ?? 0,
  }));
}

/** The normalised login name in `field`. Throws AdminError("invalid"). */
export function username(ctx: Pick<AdminContext, "config">, raw: string, field = "username"): string {
  const name = cleanUsername(raw, ctx.config.radius.realms);
  if (name === undefined) throw new AdminError("invalid", `{${field}} must not be empty (nor longer than 253 characters)`, { field, expose: "a login name of 1-253 characters without control characters" });
  return name;
}

/** The user named `raw` (normalised as the RADIUS path does). Throws AdminError "invalid" or "not_found" ("no user named …"). */
export async function findUser(ctx: Pick<AdminContext, "config" | "store">, raw: string, field = "username"): Promise<User> {
  const name = username(ctx, raw, field);
  const user = await ctx.store.users.findByName(name);
  if (!user) throw new AdminError("not_found", `no user named ${name}`, { field, expose: "no such user" });
  return user;
}

/**
 * `user show --json`'s view of a user, also the admin API's: never the password hash, never a seed.
 * Lockout counters are shown with their back-off end while it lies ahead of `now`: `password` and
 * `code` are the counters across every source (their end: until when unknown sources are refused),
 * `sources` each source's own, `knownSources` where the user logged in from (auth/lockout.ts).
 */
export async function userView(store: Store, user: User, now: number) {
  const [tokens, counters, known, pending] = await Promise.all([
    store.tokens.list(user.id),
    store.lockouts.list(user.username),
    store.lockouts.knownSources(user.username),
    store.approvals.pendingForUser(user.username, now),
  ]);
  const iso = (ms: number) => new Date(ms).toISOString();
  const until = (s: LockoutState) => (s.lockedUntil > now ? iso(s.lockedUntil) : null);
  const identity = (kind: "password" | "code") => {
    const s = counters.find((c) => c.kind === kind && c.source === "");
    return s ? { failures: s.failures, lockedUntil: until(s) } : { failures: 0, lockedUntil: null };
  };
  const sources = counters.filter((c) => c.source !== "").map((s) => ({ source: s.source, kind: s.kind, failures: s.failures, lockedUntil: until(s) }));
  const linked = user.directory !== null;
  return {
    username: user.username,
    directory: user.directory,
    /** The directory's stable ID (objectGUID / entryUUID); null until the first login links it. */
    externalId: user.externalId,
    type: user.type,
    typeNumber: user.type === null ? null : authTypeNumber(user.type),
    /** Which values of a directory-linked record override the directory's. */
    overrides: linked ? [...(user.type !== null ? ["type" as const] : []), ...(user.phone !== null ? ["phone" as const] : [])] : [],
    phone: user.phone,
    directoryPhone: user.directoryPhone,
    email: user.email,
    password: user.passwordHash !== null ? ("set" as const) : ("none" as const),
    disabled: user.disabled,
    expiresAt: user.expiresAt === null ? null : iso(user.expiresAt),
    createdAt: iso(user.createdAt),
    tokens: tokens.map((t) => ({ id: t.id, serial: t.serial, kind: t.kind, state: t.state, digits: t.digits, algorithm: t.algorithm })),
    lockout: {
      password: identity("password"),
      code: identity("code"),
      sources,
      knownSources: known.map((k) => ({ source: k.source, lastSuccessAt: iso(k.lastSuccessAt) })),
    },
    /** Approvals waiting for this user's answer now (a held RADIUS request, a challenge-mode leg, …); never the link. */
    pendingApprovals: pending.map((a) => ({ kind: a.kind, client: a.client, source: a.source, channel: a.channel, createdAt: iso(a.createdAt), expiresAt: iso(a.expiresAt) })),
  };
}

export type UserView = Awaited<ReturnType<typeof userView>>;

/** The view of the user named `raw`. Throws like findUser. */
export async function showUser(ctx: Pick<AdminContext, "config" | "store" | "now">, raw: string): Promise<{ user: User; view: UserView }> {
  const user = await findUser(ctx, raw);
  return { user, view: await userView(ctx.store, user, ctx.now()) };
}

function authType(input: string | number): AuthType {
  const type = parseAuthType(String(input));
  if (type === undefined) throw invalid("type", `must be one of ${AUTH_TYPES.join(", ")} or its number 1-${AUTH_TYPES.length}`);
  return type;
}

function phone(ctx: Pick<AdminContext, "config">, raw: string): string {
  const e164 = normalizePhone(raw, ctx.config.region);
  if (e164 === undefined) throw invalid("phone", PHONE_RULE);
  return e164;
}

function email(raw: string): string {
  const s = raw.trim();
  if (!isEmail(s)) throw invalid("email", "must be an e-mail address");
  return s;
}

export interface AddUserInput {
  username: string;
  /** Plaintext; stored as argon2id. Not for a directory user. */
  password?: string;
  /** A configured [[ldap]] profile: the directory checks the password (a "hybrid" user). */
  directory?: string;
  phone?: string;
  email?: string;
  /** A type name or Mideye number; default totp, or the directory's for a directory user. */
  type?: string | number;
}

/**
 * Adds a local or directory-linked user and records admin.user_added. A directory-linked record
 * holds the user's tokens and, where given, overrides the directory's type and phone. Throws
 * AdminError: "invalid" (field named), "conflict" when the name is taken.
 */
export async function addUser(ctx: AdminContext, input: AddUserInput): Promise<User> {
  const name = username(ctx, input.username);
  let directory: string | null = null;
  if (input.directory !== undefined) {
    const profiles = ctx.config.ldap.map((p) => p.name);
    if (!profiles.includes(input.directory)) {
      const known = profiles.length > 0 ? profiles.join(", ") : "none configured";
      throw new AdminError("invalid", `{directory} must name a configured [[ldap]] profile (${known})`, { field: "directory", expose: "a configured [[ldap]] profile" });
    }
    if (input.password !== undefined) {
      throw new AdminError("invalid", "{password} cannot be combined with {directory}: the directory checks the password", { field: "password", expose: "absent for a directory user: the directory checks the password" });
    }
    directory = input.directory;
  }
  const type: AuthType | null = input.type === undefined ? (directory === null ? "totp" : null) : authType(input.type);
  const e164 = input.phone === undefined ? null : phone(ctx, input.phone);
  const mail = input.email === undefined ? null : email(input.email);
  if (input.password === "") throw invalid("password", "must not be empty");
  const passwordHash = input.password === undefined ? null : await hashPassword(input.password);
  const record: NewUser = { username: name, passwordHash, type, phone: e164, email: mail, disabled: false, expiresAt: null, directory, externalId: null, directoryPhone: null };
  try {
    return await ctx.audit.change(
      () => ctx.store.users.add(record),
      (user) => ({ type: "admin.user_added", user: user.username }),
    );
  } catch (e) {
    if (e instanceof StoreError && e.code === "conflict") throw new AdminError("conflict", `user ${name} already exists`, { field: "username", expose: "a user with this name exists" });
    throw e;
  }
}

/** A change to a user; null clears (the directory's value for a directory user's type and phone). */
export interface UpdateUserInput {
  password?: string | null;
  phone?: string | null;
  email?: string | null;
  type?: string | number | null;
  disabled?: boolean;
  /** YYYY-MM-DD: valid through that day (UTC). */
  expires?: string | null;
}

/**
 * Changes the user named `raw` and records admin.user_updated with the changed fields' names
 * ("password", never its value). Returns the user after the change. Throws AdminError "invalid" or
 * "not_found".
 */
export async function updateUser(ctx: AdminContext, raw: string, input: UpdateUserInput, field = "username"): Promise<User> {
  const user = await findUser(ctx, raw, field);
  const patch: Partial<NewUser> = {};
  if (input.password !== undefined) {
    if (user.directory !== null && input.password !== null) throw invalid("password", "must be absent for a directory user: the directory checks the password");
    if (input.password === "") throw invalid("password", "must not be empty");
    patch.passwordHash = input.password === null ? null : await hashPassword(input.password);
  }
  if (input.type !== undefined) {
    // null ("as the directory says") exists only on a directory-linked record.
    if (input.type === null && user.directory === null) throw invalid("type", "must be a type (null only for a directory user)");
    patch.type = input.type === null ? null : authType(input.type);
  }
  if (input.phone !== undefined) patch.phone = input.phone === null ? null : phone(ctx, input.phone);
  if (input.email !== undefined) patch.email = input.email === null ? null : email(input.email);
  if (input.disabled !== undefined) patch.disabled = input.disabled;
  if (input.expires !== undefined) patch.expiresAt = input.expires === null ? null : parseExpiry(input.expires, ctx.now());
  const fields = Object.keys(patch).map((k) => (k === "passwordHash" ? "password" : k));
  await ctx.audit.change(
    () => ctx.store.users.update(user.id, patch),
    () => ({ type: "admin.user_updated", user: user.username, fields }),
  );
  return (await ctx.store.users.findById(user.id)) ?? user;
}

/** Removes the user named `raw` (their tokens are kept, unassigned) and records admin.user_removed. Returns the normalised name. Throws AdminError "invalid" or "not_found". */
export async function removeUser(ctx: AdminContext, raw: string, field = "username"): Promise<string> {
  const name = username(ctx, raw, field);
  const removed = await ctx.audit.change(
    () => ctx.store.users.remove(name),
    (ok) => (ok ? { type: "admin.user_removed", user: name } : null),
  );
  if (!removed) throw new AdminError("not_found", `no user named ${name}`, { field, expose: "no such user" });
  return name;
}

/**
 * Clears every lockout counter of the name `raw`, whatever its kind and source (the known sources
 * stay), and records admin.user_unlocked whether or not one was cleared. Lockout is keyed on the
 * normalised identity, local or directory user alike, so there is no lookup. Returns the name and
 * whether anything was cleared. Throws AdminError("invalid").
 */
export async function unlockUser(ctx: AdminContext, raw: string, field = "username"): Promise<{ username: string; cleared: boolean }> {
  // Lockout is keyed on the normalised identity, local or directory user alike, so no lookup. Every
  // counter of the name goes, whatever its kind and source; so do the approver app's lock after a
  // report and its back-off after rejections.
  requireRole(ctx.audit.actor, LEAST_ROLE.unlock);
  const name = username(ctx, raw, field);
  const cleared = await ctx.audit.change(
    async () => {
      const counters = await ctx.store.lockouts.clear(name);
      return (await ctx.store.approvalBlocks.clear(name)) || counters;
    },
    (c) => ({ type: "admin.user_unlocked", user: name, cleared: c }),
  );
  return { username: name, cleared };
}
