// `token add|list|assign|disable|enable|resync|remove|import`: TOTP/HOTP tokens and their owners.

import { readFileSync } from "node:fs";
import { AdminError } from "../admin/errors.ts";
import { assignToken, enrolToken, findTokenBySerial, importTokens as importTokensOperation, listTokens, removeToken, resyncToken, setTokenState } from "../admin/tokens.ts";
import { terminalQR } from "../otp/index.ts";
import type { TokenState } from "../store/types.ts";
import { adminContext } from "./audit.ts";
import { CLIError, cliError, parseCommand, parseInteger, stripOneNewline, printList, usageError, type CLIContext } from "./context.ts";

export { importedTokens } from "../admin/tokens.ts";

export const TOKEN_USAGE = [
  "portcullis token add NAME --totp [--secret BASE32] [--digits 6|8] [--period 30] [--algorithm SHA1|SHA256|SHA512]",
  "portcullis token add NAME --hotp [--secret BASE32] [--digits 6|8] [--algorithm SHA1|SHA256|SHA512] [--counter N]",
  "portcullis token list [NAME] [--json]",
  "portcullis token assign SERIAL NAME",
  "portcullis token disable ID | token enable ID",
  "portcullis token resync ID CODE1 CODE2",
  "portcullis token remove ID",
  "portcullis token import FILE --format pskc|csv [--psk-hex HEX | --password-stdin | --private-key PEMFILE]",
];

/** Runs `token SUBCOMMAND …`. Throws CLIError for bad input or a failed operation. */
export async function tokenCommand(ctx: CLIContext, args: string[]): Promise<void> {
  const [sub, ...rest] = args;
  switch (sub) {
    case "add":
      return add(ctx, rest);
    case "list":
      return list(ctx, rest);
    case "assign":
      return assign(ctx, rest);
    case "disable":
    case "enable":
      return setState(ctx, rest, sub === "disable" ? "disabled" : "active");
    case "resync":
      return resync(ctx, rest);
    case "remove":
      return remove(ctx, rest);
    case "import":
      return importTokens(ctx, rest);
    default:
      throw usageError("token needs a subcommand: add, list, assign, disable, enable, resync, remove or import");
  }
}


async function add(ctx: CLIContext, args: string[]): Promise<void> {
  const { values, positionals } = parseCommand(
    args,
    {
      totp: { type: "boolean" },
      hotp: { type: "boolean" },
      secret: { type: "string" },
      digits: { type: "string" },
      period: { type: "string" },
      algorithm: { type: "string" },
      counter: { type: "string" },
    },
    { min: 1, max: 1, usage: TOKEN_USAGE[0]! },
  );
  if (values.totp && values.hotp) throw usageError("give either --totp or --hotp, not both");
  const kind = values.hotp ? "hotp" : "totp";
  const enrolled = await enrolToken(await adminContext(ctx), {
    user: positionals[0]!,
    kind,
    ...(values.secret !== undefined ? { secret: values.secret } : {}),
    ...(values.digits !== undefined ? { digits: values.digits === "6" ? 6 : values.digits === "8" ? 8 : NaN } : {}),
    ...(values.period !== undefined ? { period: parseInteger(values.period, "--period", { min: 10, max: 300 }) } : {}),
    ...(values.algorithm !== undefined ? { algorithm: values.algorithm } : {}),
    ...(values.counter !== undefined ? { counter: parseInteger(values.counter, "--counter") } : {}),
  });
  for (const warning of enrolled.warnings) ctx.err(`portcullis: warning: ${warning}\n`);
  const { token, owner, uri } = enrolled;
  ctx.out(`added token ${token.id} serial ${token.serial} (${kind}) for ${owner.username}\n${uri}\n`);
  if (ctx.stdoutIsTTY) ctx.out(`${await terminalQR(uri)}\n`);
}

async function list(ctx: CLIContext, args: string[]): Promise<void> {
  const { values, positionals } = parseCommand(args, { json: { type: "boolean" } }, { min: 0, max: 1, usage: TOKEN_USAGE[2]! });
  const rows = await listTokens({ config: ctx.config, store: await ctx.store() }, positionals[0] === undefined ? {} : { user: positionals[0] });
  printList(ctx, values.json, rows, "no tokens", ["ID", "SERIAL", "KIND", "STATE", "USER", "DIGITS", "ALGORITHM"], (r) => [
    String(r.id),
    r.serial,
    r.kind,
    r.state,
    r.user ?? "-",
    String(r.digits),
    r.algorithm,
  ]);
}

async function assign(ctx: CLIContext, args: string[]): Promise<void> {
  const { positionals } = parseCommand(args, {}, { min: 2, max: 2, usage: TOKEN_USAGE[3]! });
  const admin = await adminContext(ctx);
  const token = await findTokenBySerial(admin, positionals[0]!);
  const { owner } = await assignToken(admin, token, positionals[1]!);
  ctx.out(`assigned token ${token.id} serial ${token.serial} to ${owner!.username}\n`);
}

/** The token ID argument, or a usage error. */
function tokenId(raw: string): number {
  return parseInteger(raw, "ID", { min: 1 });
}

async function setState(ctx: CLIContext, args: string[], state: TokenState): Promise<void> {
  const { positionals } = parseCommand(args, {}, { min: 1, max: 1, usage: TOKEN_USAGE[4]! });
  const token = await setTokenState(await adminContext(ctx), tokenId(positionals[0]!), state);
  ctx.out(`token ${token.id} serial ${token.serial} is now ${state}\n`);
}

async function resync(ctx: CLIContext, args: string[]): Promise<void> {
  const { positionals } = parseCommand(args, {}, { min: 3, max: 3, usage: TOKEN_USAGE[5]! });
  const { token, drift, counter } = await resyncToken(await adminContext(ctx), tokenId(positionals[0]!), positionals[1]!, positionals[2]!);
  if (drift !== null) ctx.out(`resynchronised token ${token.id}: clock drift ${drift} step${Math.abs(drift) === 1 ? "" : "s"}\n`);
  else ctx.out(`resynchronised token ${token.id}: next counter ${counter}\n`);
}

async function remove(ctx: CLIContext, args: string[]): Promise<void> {
  const { positionals } = parseCommand(args, {}, { min: 1, max: 1, usage: TOKEN_USAGE[6]! });
  const token = await removeToken(await adminContext(ctx), tokenId(positionals[0]!));
  ctx.out(`removed token ${token.id} serial ${token.serial}\n`);
}

async function importTokens(ctx: CLIContext, args: string[]): Promise<void> {
  const usage = TOKEN_USAGE[7]!;
  const { values, positionals } = parseCommand(
    args,
    { format: { type: "string" }, "psk-hex": { type: "string" }, "password-stdin": { type: "boolean" }, "private-key": { type: "string" } },
    { min: 1, max: 1, usage },
  );
  const file = positionals[0]!;
  const format = values.format;
  if (format !== "pskc" && format !== "csv") throw usageError(`--format must be pskc or csv; usage: ${usage}`);
  const keyOptions = [values["psk-hex"] !== undefined, values["password-stdin"] === true, values["private-key"] !== undefined].filter(Boolean).length;
  if (keyOptions > 1) throw usageError("give at most one of --psk-hex, --password-stdin and --private-key");
  if (format === "csv" && keyOptions > 0) throw usageError("--psk-hex, --password-stdin and --private-key apply to --format pskc only");

  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (e) {
    throw new CLIError(`cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? "unreadable"}`);
  }

  let preSharedKey: Uint8Array | undefined;
  let password: string | undefined;
  let privateKeyPem: string | undefined;
  if (values["psk-hex"] !== undefined) {
    const hex = values["psk-hex"].trim();
    if (!/^([0-9a-fA-F]{2})+$/.test(hex)) throw usageError("--psk-hex must be an even number of hexadecimal digits");
    preSharedKey = new Uint8Array(Buffer.from(hex, "hex"));
  }
  if (values["password-stdin"]) {
    password = stripOneNewline(await ctx.readStdin());
    if (password === "") throw usageError("the password read from standard input is empty");
  }
  if (values["private-key"] !== undefined) {
    try {
      privateKeyPem = readFileSync(values["private-key"], "utf8");
    } catch (e) {
      throw new CLIError(`cannot read ${values["private-key"]}: ${(e as NodeJS.ErrnoException).code ?? "unreadable"}`);
    }
  }

  let done;
  try {
    done = await importTokensOperation(await adminContext(ctx), {
      format,
      content: text,
      ...(preSharedKey !== undefined ? { preSharedKey } : {}),
      ...(password !== undefined ? { password } : {}),
      ...(privateKeyPem !== undefined ? { privateKeyPem } : {}),
    });
  } catch (e) {
    if (e instanceof AdminError && (e.field === "content" || e.code === "conflict")) {
      const line = cliError(e);
      throw new CLIError(`${file}${e.message === "holds no tokens" ? " " : ": "}${line.message}`, line.exitCode);
    }
    throw e;
  }
  ctx.out(`imported ${done.imported} tokens (${done.assigned} assigned to users)\n`);
  if (done.unknownOwners > 0) {
    ctx.out(`${done.unknownOwners} tokens name a user that does not exist; they are unassigned: use token assign SERIAL NAME\n`);
  }
}
