// `user add|list|show|remove|unlock|import`: local users, their lockout counters and bulk import.

import { AUTH_TYPES, authTypeNumber, parseAuthType, type AuthType } from "../domain/auth-types.ts";
import { hashPassword } from "../runtime/password.ts";
import { StoreError, type LockoutState, type Store, type User } from "../store/types.ts";
import { audited } from "./audit.ts";
import { CLIError, parseCommand, stripOneNewline, printList, table, usageError, type CLIContext } from "./context.ts";
import { importUsers } from "./user-import.ts";
import { cleanUsername, isEmail, normalizePhone, PHONE_RULE } from "./validate.ts";

export const USER_USAGE = [
  "portcullis user add NAME [--password-stdin | --directory PROFILE] [--phone +E164] [--email ADDR] [--type TYPE]",
  "portcullis user list [--json]",
  "portcullis user show NAME [--json]",
  "portcullis user remove NAME",
  "portcullis user unlock NAME",
  "portcullis user import FILE.csv",
];

/** Runs `user SUBCOMMAND …`. Throws CLIError for bad input or a failed operation. */
export async function userCommand(ctx: CLIContext, args: string[]): Promise<void> {
  const [sub, ...rest] = args;
  switch (sub) {
    case "add":
      return add(ctx, rest);
    case "list":
      return list(ctx, rest);
    case "show":
      return show(ctx, rest);
    case "remove":
      return remove(ctx, rest);
    case "unlock":
      return unlock(ctx, rest);
    case "import": {
      const { positionals } = parseCommand(rest, {}, { min: 1, max: 1, usage: USER_USAGE[5]! });
      return importUsers(ctx, positionals[0]!);
    }
    default:
      throw usageError("user needs a subcommand: add, list, show, remove, unlock or import");
  }
}

/** The normalised name, or a usage error. */
function username(ctx: CLIContext, raw: string): string {
  const name = cleanUsername(raw, ctx.config.radius.realms);
  if (!name) throw usageError("NAME must not be empty (nor longer than 253 characters)");
  return name;
}

async function findUser(ctx: CLIContext, raw: string): Promise<User> {
  const name = username(ctx, raw);
  const user = await (await ctx.store()).users.findByName(name);
  if (!user) throw new CLIError(`no user named ${name}`);
  return user;
}

async function add(ctx: CLIContext, args: string[]): Promise<void> {
  const usage = USER_USAGE[0]!;
  const { values, positionals } = parseCommand(
    args,
    { "password-stdin": { type: "boolean" }, phone: { type: "string" }, email: { type: "string" }, type: { type: "string" }, directory: { type: "string" } },
    { min: 1, max: 1, usage },
  );
  const name = username(ctx, positionals[0]!);
  // A directory-linked ("hybrid") record: the profile checks the password; this record holds the
  // user's tokens and, where given, overrides the directory's type and phone.
  let directory: string | null = null;
  if (values.directory !== undefined) {
    const profiles = ctx.config.ldap.map((p) => p.name);
    if (!profiles.includes(values.directory)) {
      const known = profiles.length > 0 ? profiles.join(", ") : "none configured";
      throw usageError(`--directory must name a configured [[ldap]] profile (${known})`);
    }
    if (values["password-stdin"]) throw usageError("--password-stdin cannot be combined with --directory: the directory checks the password");
    directory = values.directory;
  }
  const defaultType: AuthType | null = directory === null ? "totp" : null;
  const type: AuthType | null = values.type === undefined ? defaultType : (parseAuthType(values.type) ?? invalidType());
  let phone: string | null = null;
  if (values.phone !== undefined) {
    phone = normalizePhone(values.phone, ctx.config.region) ?? null;
    if (!phone) throw usageError(`--phone ${PHONE_RULE}`);
  }
  let email: string | null = null;
  if (values.email !== undefined) {
    if (!isEmail(values.email.trim())) throw usageError("--email must be an e-mail address");
    email = values.email.trim();
  }
  let passwordHash: string | null = null;
  if (values["password-stdin"]) {
    const password = stripOneNewline(await ctx.readStdin());
    if (password === "") throw usageError("the password read from standard input is empty");
    passwordHash = await hashPassword(password);
  }
  try {
    await audited(
      ctx,
      (store) => store.users.add({ username: name, passwordHash, type, phone, email, disabled: false, expiresAt: null, directory, externalId: null, directoryPhone: null }),
      (user) => ({ type: "admin.user_added", user: user.username }),
    );
  } catch (e) {
    if (e instanceof StoreError && e.code === "conflict") throw new CLIError(`user ${name} already exists`);
    throw e;
  }
  if (directory !== null) {
    const overrides = [type !== null ? `type ${type}` : "", phone !== null ? "phone" : ""].filter((x) => x !== "");
    ctx.out(`added user ${name} (directory ${directory}; ${overrides.length > 0 ? `local override of ${overrides.join(" and ")}` : "type and phone from the directory"})\n`);
    ctx.out(`note: linked to the directory entry at the first login, by its stable ID (objectGUID / entryUUID)\n`);
    if (type === null || type === "totp") ctx.out(`next: portcullis token add ${name} --totp\n`);
    return;
  }
  ctx.out(`added user ${name} (type ${type})\n`);
  if (type === "totp") ctx.out(`next: portcullis token add ${name} --totp\n`);
  if (passwordHash === null && type !== "password") ctx.out("note: no local password; the user can pass only a client with --first-factor none or a directory profile\n");
}

function invalidType(): never {
  throw usageError(`--type must be one of ${AUTH_TYPES.join(", ")} or its number 1-${AUTH_TYPES.length}`);
}

async function list(ctx: CLIContext, args: string[]): Promise<void> {
  const { values } = parseCommand(args, { json: { type: "boolean" } }, { min: 0, max: 0, usage: USER_USAGE[1]! });
  const store = await ctx.store();
  const [users, tokens] = await Promise.all([store.users.list(), store.tokens.list()]);
  const count = new Map<number, number>();
  for (const t of tokens) if (t.userId !== null) count.set(t.userId, (count.get(t.userId) ?? 0) + 1);
  const rows = users.map((u) => ({
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
  printList(ctx, values.json, rows, "no users", ["USERNAME", "DIRECTORY", "TYPE", "PHONE", "EMAIL", "PASSWORD", "TOKENS", "STATUS"], (r) => [
    r.username,
    r.directory === null ? "local" : `${r.directory}${r.externalId === null ? " (not linked)" : ""}`,
    r.type ?? "(directory)",
    r.phone ?? (r.directory === null ? "-" : "(directory)"),
    r.email ?? "-",
    r.directory !== null ? "directory" : r.password ? "set" : "none",
    String(r.tokens),
    r.disabled ? "disabled" : "enabled",
  ]);
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

async function show(ctx: CLIContext, args: string[]): Promise<void> {
  const { values, positionals } = parseCommand(args, { json: { type: "boolean" } }, { min: 1, max: 1, usage: USER_USAGE[2]! });
  const user = await findUser(ctx, positionals[0]!);
  const view = await userView(await ctx.store(), user, ctx.now());
  const linked = user.directory !== null;
  if (values.json) {
    ctx.out(JSON.stringify(view, null, 2) + "\n");
    return;
  }
  const failures = (n: number) => `${n} failure${n === 1 ? "" : "s"}`;
  const lock = (l: { failures: number; lockedUntil: string | null }) => `${failures(l.failures)}${l.lockedUntil ? `, unknown sources refused until ${l.lockedUntil}` : ""}`;
  const { lockout } = view;
  const typeLine = view.type === null ? "from the directory" : `${view.type} (${view.typeNumber})${linked ? ", local override" : ""}`;
  const phoneLine = !linked ? (view.phone ?? "-") : view.phone !== null ? `${view.phone}, local override` : "from the directory";
  const lines = [
    `username:  ${view.username}`,
    ...(linked ? [`directory: ${view.directory}`, `linked ID: ${view.externalId ?? "not linked yet (linked at the first login)"}`] : []),
    `type:      ${typeLine}`,
    `phone:     ${phoneLine}`,
    ...(linked && view.directoryPhone !== null ? [`dir phone: ${view.directoryPhone} (the directory's value as last seen)`] : []),
    `email:     ${view.email ?? "-"}`,
    `password:  ${linked ? "checked by the directory" : view.password}`,
    `status:    ${view.disabled ? "disabled" : "enabled"}${view.expiresAt ? `, expires ${view.expiresAt}` : ""}`,
    `created:   ${view.createdAt}`,
    `lockout:   across sources: password ${lock(lockout.password)}; code ${lock(lockout.code)}`,
    ...lockout.sources.map((s) => `           ${s.source}: ${s.kind} ${failures(s.failures)}${s.lockedUntil ? `, backing off until ${s.lockedUntil}` : ""}`),
    lockout.knownSources.length === 0
      ? "known:     no source yet (a completed login makes its source known)"
      : `known:     ${lockout.knownSources.map((k) => `${k.source} (last login ${k.lastSuccessAt})`).join(", ")}`,
    view.pendingApprovals.length === 0 ? "pending approvals: none" : "pending approvals:",
    ...view.pendingApprovals.map((a) => `           ${a.kind} from client ${a.client}${a.source ? ` (source ${a.source})` : ""}, sent by ${a.channel ?? "nothing yet"}, since ${a.createdAt}, until ${a.expiresAt}`),
    view.tokens.length === 0 ? "tokens:    none" : "tokens:",
  ];
  ctx.out(lines.join("\n") + "\n");
  if (view.tokens.length > 0) {
    ctx.out(
      table(
        ["  ID", "SERIAL", "KIND", "STATE", "DIGITS", "ALGORITHM"],
        view.tokens.map((t) => [`  ${t.id}`, t.serial, t.kind, t.state, String(t.digits), t.algorithm]),
      ),
    );
  }
}

async function remove(ctx: CLIContext, args: string[]): Promise<void> {
  const { positionals } = parseCommand(args, {}, { min: 1, max: 1, usage: USER_USAGE[3]! });
  const name = username(ctx, positionals[0]!);
  const removed = await audited(ctx, (store) => store.users.remove(name), (ok) => (ok ? { type: "admin.user_removed", user: name } : null));
  if (!removed) throw new CLIError(`no user named ${name}`);
  ctx.out(`removed user ${name} (their tokens are kept, unassigned)\n`);
}

async function unlock(ctx: CLIContext, args: string[]): Promise<void> {
  const { positionals } = parseCommand(args, {}, { min: 1, max: 1, usage: USER_USAGE[4]! });
  // Lockout is keyed on the normalised identity, local or directory user alike, so no lookup. Every
  // counter of the name goes, whatever its kind and source; the known sources stay.
  const name = username(ctx, positionals[0]!);
  // Recorded whether or not a counter was cleared, as the admin API does.
  // The approver app's lock after a report and back-off after rejections end too.
  const cleared = await audited(
    ctx,
    async (store) => {
      const counters = await store.lockouts.clear(name);
      return (await store.approvalBlocks.clear(name)) || counters;
    },
    (c) => ({ type: "admin.user_unlocked", user: name, cleared: c }),
  );
  ctx.out(cleared ? `unlocked ${name}\n` : `${name} had no failures recorded\n`);
}
