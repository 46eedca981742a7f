// `user add|list|show|remove|unlock|import|enrol-link`: local users, their lockout counters, bulk
// import, and single-use sign-in links to the self-service portal.

import { importUsers } from "./user-import.ts";
import { adminContext } from "./audit.ts";
import { createEnrolLink } from "../admin/enrol-links.ts";
import { addUser, listUsers, removeUser, showUser, unlockUser } from "../admin/users.ts";
import { terminalQR } from "../otp/index.ts";
import { parseCommand, stripOneNewline, printList, table, usageError, type CLIContext } from "./context.ts";

export const USER_USAGE = [
  "portcullis user add NAME [--password-stdin | --directory PROFILE] [--phone +E164] [--email ADDR] [--type TYPE]",
  "portcullis user list [--json]",
  "portcullis user show NAME [--json]",
  "portcullis user remove NAME",
  "portcullis user unlock NAME",
  "portcullis user import FILE.csv",
  "portcullis user enrol-link NAME",
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
    case "enrol-link":
    case "enroll-link":
      return enrolLink(ctx, rest);
    default:
      throw usageError("user needs a subcommand: add, list, show, remove, unlock, import or enrol-link");
  }
}

async function add(ctx: CLIContext, args: string[]): Promise<void> {
  const usage = USER_USAGE[0]!;
  const { values, positionals } = parseCommand(
    args,
    { "password-stdin": { type: "boolean" }, phone: { type: "string" }, email: { type: "string" }, type: { type: "string" }, directory: { type: "string" } },
    { min: 1, max: 1, usage },
  );
  let password: string | undefined;
  if (values["password-stdin"]) {
    password = stripOneNewline(await ctx.readStdin());
    if (password === "") throw usageError("the password read from standard input is empty");
  }
  const user = await addUser(await adminContext(ctx), {
    username: positionals[0]!,
    ...(password !== undefined ? { password } : {}),
    ...(values.directory !== undefined ? { directory: values.directory } : {}),
    ...(values.phone !== undefined ? { phone: values.phone } : {}),
    ...(values.email !== undefined ? { email: values.email } : {}),
    ...(values.type !== undefined ? { type: values.type } : {}),
  });
  const { username: name, directory, type, phone } = user;
  if (directory !== null) {
    const overrides = [type !== null ? `type ${type}` : "", phone !== null ? "phone" : ""].filter((x) => x !== "");
    ctx.out(`added user ${name} (directory ${directory}; ${overrides.length > 0 ? `local override of ${overrides.join(" and ")}` : "type and phone from the directory"})\n`);
    ctx.out(`note: linked to the directory entry at the first login, by its stable ID (objectGUID / entryUUID)\n`);
    if (type === null || type === "totp") ctx.out(`next: portcullis token add ${name} --totp\n`);
    return;
  }
  ctx.out(`added user ${name} (type ${type})\n`);
  if (type === "totp") ctx.out(`next: portcullis token add ${name} --totp\n`);
  if (user.passwordHash === null && type !== "password") ctx.out("note: no local password; the user can pass only a client with --first-factor none or a directory profile\n");
}

async function list(ctx: CLIContext, args: string[]): Promise<void> {
  const { values } = parseCommand(args, { json: { type: "boolean" } }, { min: 0, max: 0, usage: USER_USAGE[1]! });
  const rows = await listUsers({ store: await ctx.store() });
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

async function show(ctx: CLIContext, args: string[]): Promise<void> {
  const { values, positionals } = parseCommand(args, { json: { type: "boolean" } }, { min: 1, max: 1, usage: USER_USAGE[2]! });
  const { user, view } = await showUser({ config: ctx.config, store: await ctx.store(), now: ctx.now }, positionals[0]!);
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
  const name = await removeUser(await adminContext(ctx), positionals[0]!);
  ctx.out(`removed user ${name} (their tokens are kept, unassigned)\n`);
}

async function unlock(ctx: CLIContext, args: string[]): Promise<void> {
  const { positionals } = parseCommand(args, {}, { min: 1, max: 1, usage: USER_USAGE[4]! });
  // Recorded whether or not a counter was cleared.
  const { username: name, cleared } = await unlockUser(await adminContext(ctx), positionals[0]!);
  ctx.out(cleared ? `unlocked ${name}\n` : `${name} had no failures recorded\n`);
}

/** `user enrol-link NAME`: a single-use sign-in link to the self-service portal (docs/self-service.md). */
async function enrolLink(ctx: CLIContext, args: string[]): Promise<void> {
  const { positionals } = parseCommand(args, {}, { min: 1, max: 1, usage: USER_USAGE[6]! });
  const made = await createEnrolLink(await adminContext(ctx), positionals[0]!);
  ctx.out(`self-service sign-in link for ${made.user.username} (single use, valid until ${new Date(made.expiresAt).toISOString()}):\n${made.link}\n`);
  if (ctx.stdoutIsTTY) ctx.out(`${await terminalQR(made.link)}\n`);
}
