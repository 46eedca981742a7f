// `admin add|list|remove|reset-totp`: the local accounts of the admin web UI (/ui/ on the admin listener).

import { addAdminAccount, listAdminAccounts, removeAdminAccount, resetAdminTotp } from "../admin/admin-accounts.ts";
import { terminalQR } from "../otp/index.ts";
import { adminContext } from "./audit.ts";
import { parseCommand, printList, stripOneNewline, usageError, type CLIContext } from "./context.ts";

export const ADMIN_USAGE = [
  "portcullis admin add NAME --role root|admin|operator [--password-stdin]",
  "portcullis admin list [--json]",
  "portcullis admin remove NAME",
  "portcullis admin reset-totp NAME",
];

/** Runs `admin SUBCOMMAND …`. Throws CLIError for bad input or a failed operation. */
export async function adminCommand(ctx: CLIContext, args: string[]): Promise<void> {
  const [sub, ...rest] = args;
  switch (sub) {
    case "add":
      return add(ctx, rest);
    case "list": {
      const { values } = parseCommand(rest, { json: { type: "boolean" } }, { min: 0, max: 0, usage: ADMIN_USAGE[1]! });
      const rows = await listAdminAccounts({ store: await ctx.store() });
      return printList(ctx, values.json, rows, "no admin accounts", ["NAME", "ROLE", "CREATED", "LAST SIGN-IN"], (r) => [r.name, r.role, r.createdAt, r.lastSignInAt ?? "-"]);
    }
    case "remove": {
      const { positionals } = parseCommand(rest, {}, { min: 1, max: 1, usage: ADMIN_USAGE[2]! });
      const name = await removeAdminAccount(await adminContext(ctx), positionals[0]!);
      ctx.out(`removed admin account ${name}\n`);
      return;
    }
    case "reset-totp": {
      const { positionals } = parseCommand(rest, {}, { min: 1, max: 1, usage: ADMIN_USAGE[3]! });
      const uri = await resetAdminTotp(await adminContext(ctx), positionals[0]!);
      await printTotp(ctx, uri);
      return;
    }
    default:
      throw usageError("admin needs a subcommand: add, list, remove or reset-totp");
  }
}

async function add(ctx: CLIContext, args: string[]): Promise<void> {
  const usage = ADMIN_USAGE[0]!;
  const { values, positionals } = parseCommand(args, { role: { type: "string" }, "password-stdin": { type: "boolean" } }, { min: 1, max: 1, usage });
  if (values.role === undefined) throw usageError(`--role is required; usage: ${usage}`);
  let password: string;
  if (values["password-stdin"]) {
    password = stripOneNewline(await ctx.readStdin());
    if (password === "") throw usageError("the password read from standard input is empty");
  } else {
    if (!ctx.promptHidden) throw usageError("standard input is not a terminal: give the password with --password-stdin");
    password = await ctx.promptHidden("Password: ");
    const again = await ctx.promptHidden("Password again: ");
    if (password !== again) throw usageError("the two passwords differ");
  }
  const { account, uri } = await addAdminAccount(await adminContext(ctx), { name: positionals[0]!, role: values.role, password });
  ctx.out(`added admin account ${account.name} (role ${account.role})\n`);
  await printTotp(ctx, uri);
}

async function printTotp(ctx: CLIContext, uri: string): Promise<void> {
  ctx.out(`scan into an authenticator app (shown once):\n${uri}\n`);
  if (ctx.stdoutIsTTY) ctx.out(`${await terminalQR(uri)}\n`);
}
