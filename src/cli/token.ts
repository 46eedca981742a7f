// `token add|list|assign|disable|enable|resync|remove|import`: TOTP/HOTP tokens and their owners.

import { readFileSync } from "node:fs";
import {
  decodeBase32,
  generateSecret,
  MAX_SECRET_BYTES,
  MIN_SECRET_BYTES,
  OTPError,
  RECOMMENDED_MIN_SECRET_BYTES,
  otpauthURI,
  parsePSKC,
  parseTokenCSV,
  resyncHOTP,
  resyncTOTP,
  terminalQR,
  type ImportedToken,
  type PSKCOptions,
} from "../otp/index.ts";
import { StoreError, type HashAlgorithm, type NewToken, type Store, type Token, type TokenState, type User } from "../store/types.ts";
import { audited } from "./audit.ts";
import { CLIError, parseCommand, parseInteger, stripOneNewline, printList, usageError, type CLIContext } from "./context.ts";
import { newSerial } from "./user-import.ts";
import { cleanUsername } from "../admin/validate.ts";

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


/**
 * Imported tokens (PSKC/CSV) as store records: active, and assigned to the user their file names
 * (UserId / user column, normalised like a login name) when that user exists. Shared by `token
 * import` and the admin API.
 */
export async function importedTokens(store: Store, imported: ImportedToken[], realms: "strip" | "keep"): Promise<{ tokens: NewToken[]; assigned: number; unknownOwners: number }> {
  const users = new Map((await store.users.list()).map((u) => [u.username, u.id]));
  let assigned = 0;
  let unknownOwners = 0;
  const tokens: NewToken[] = imported.map((t) => {
    let userId: number | null = null;
    if (t.userId) {
      const name = cleanUsername(t.userId, realms);
      userId = name ? (users.get(name) ?? null) : null;
      if (userId === null) unknownOwners++;
      else assigned++;
    }
    return { serial: t.serial, userId, kind: t.kind, secret: t.secret, algorithm: t.algorithm, digits: t.digits, period: t.period, counter: t.counter, state: "active" };
  });
  return { tokens, assigned, unknownOwners };
}

async function userByName(ctx: CLIContext, raw: string): Promise<User> {
  const name = cleanUsername(raw, ctx.config.radius.realms);
  if (!name) throw usageError("NAME must not be empty");
  const user = await (await ctx.store()).users.findByName(name);
  if (!user) throw new CLIError(`no user named ${name}`);
  return user;
}

async function tokenById(ctx: CLIContext, raw: string): Promise<Token> {
  const id = parseInteger(raw, "ID", { min: 1 });
  const token = await (await ctx.store()).tokens.findById(id);
  if (!token) throw new CLIError(`no token with ID ${id}`);
  return token;
}

function parseAlgorithm(s: string): HashAlgorithm {
  const a = s.toUpperCase().replace("-", "");
  if (a !== "SHA1" && a !== "SHA256" && a !== "SHA512") throw usageError("--algorithm must be SHA1, SHA256 or SHA512");
  return a;
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
  if (kind === "totp" && values.counter !== undefined) throw usageError("--counter applies to --hotp tokens only");
  if (kind === "hotp" && values.period !== undefined) throw usageError("--period applies to --totp tokens only");
  const { otp } = ctx.config;
  const digits = values.digits === undefined ? otp.default_digits : values.digits === "6" ? 6 : values.digits === "8" ? 8 : undefined;
  if (digits === undefined) throw usageError("--digits must be 6 or 8");
  const period = values.period === undefined ? otp.default_period : parseInteger(values.period, "--period", { min: 10, max: 300 });
  const algorithm = values.algorithm === undefined ? otp.default_algorithm : parseAlgorithm(values.algorithm);
  const counter = values.counter === undefined ? 0 : parseInteger(values.counter, "--counter");
  let secret: Uint8Array;
  if (values.secret !== undefined) {
    const bad = () => usageError(`--secret must be base32 (RFC 4648) of ${MIN_SECRET_BYTES} to ${MAX_SECRET_BYTES} bytes`);
    try {
      secret = decodeBase32(values.secret.replace(/[\s-]/g, ""));
    } catch {
      throw bad();
    }
    if (secret.length < MIN_SECRET_BYTES || secret.length > MAX_SECRET_BYTES) throw bad();
    if (secret.length < RECOMMENDED_MIN_SECRET_BYTES) {
      ctx.err(`portcullis: warning: the secret is shorter than ${RECOMMENDED_MIN_SECRET_BYTES * 8} bits (RFC 4226 §4 R6); prefer a generated one\n`);
    }
  } else {
    secret = generateSecret();
  }

  const user = await userByName(ctx, positionals[0]!);
  const token = await audited(
    ctx,
    async (store) => {
      for (let attempt = 0; ; attempt++) {
        try {
          return await store.tokens.add({ serial: newSerial(kind), userId: user.id, kind, secret, algorithm, digits, period, counter, state: "active" });
        } catch (e) {
          // A random serial collided with an existing one: draw another.
          if (!(e instanceof StoreError && e.code === "conflict") || attempt >= 3) throw e;
        }
      }
    },
    (t) => ({ type: "admin.token_enrolled", user: user.username, token: t.id, kind }),
  );
  const uri = otpauthURI({ kind, issuer: otp.issuer, account: user.username, secret, algorithm, digits, period, counter });
  ctx.out(`added token ${token.id} serial ${token.serial} (${kind}) for ${user.username}\n${uri}\n`);
  if (ctx.stdoutIsTTY) ctx.out(`${await terminalQR(uri)}\n`);
}

async function list(ctx: CLIContext, args: string[]): Promise<void> {
  const { values, positionals } = parseCommand(args, { json: { type: "boolean" } }, { min: 0, max: 1, usage: TOKEN_USAGE[2]! });
  const store = await ctx.store();
  const owner = positionals[0] === undefined ? undefined : await userByName(ctx, positionals[0]);
  const [tokens, users] = await Promise.all([store.tokens.list(owner?.id), store.users.list()]);
  const names = new Map(users.map((u) => [u.id, u.username]));
  // Never the seed.
  const rows = tokens.map((t) => ({
    id: t.id,
    serial: t.serial,
    kind: t.kind,
    state: t.state,
    user: t.userId === null ? null : (names.get(t.userId) ?? null),
    digits: t.digits,
    algorithm: t.algorithm,
    period: t.kind === "totp" ? t.period : null,
  }));
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
  const store = await ctx.store();
  const serial = positionals[0]!;
  const token = await store.tokens.findBySerial(serial);
  if (!token) throw new CLIError(`no token with serial ${serial}`);
  const user = await userByName(ctx, positionals[1]!);
  await audited(ctx, (s) => s.tokens.assign(token.id, user.id), () => ({ type: "admin.token_assigned", token: token.id, user: user.username }));
  ctx.out(`assigned token ${token.id} serial ${token.serial} to ${user.username}\n`);
}

async function setState(ctx: CLIContext, args: string[], state: TokenState): Promise<void> {
  const { positionals } = parseCommand(args, {}, { min: 1, max: 1, usage: TOKEN_USAGE[4]! });
  const token = await tokenById(ctx, positionals[0]!);
  await audited(ctx, (store) => store.tokens.setState(token.id, state), () => ({ type: "admin.token_state", token: token.id, state }));
  ctx.out(`token ${token.id} serial ${token.serial} is now ${state}\n`);
}

async function resync(ctx: CLIContext, args: string[]): Promise<void> {
  const { positionals } = parseCommand(args, {}, { min: 3, max: 3, usage: TOKEN_USAGE[5]! });
  const token = await tokenById(ctx, positionals[0]!);
  const [code1, code2] = [positionals[1]!, positionals[2]!];
  const codeShape = new RegExp(`^\\d{${token.digits}}$`);
  if (!codeShape.test(code1) || !codeShape.test(code2)) throw usageError(`CODE1 and CODE2 must be ${token.digits}-digit codes`);
  const resynced = () => ({ type: "admin.token_resynced", token: token.id }) as const;
  if (token.kind === "totp") {
    const r = resyncTOTP(token, code1, code2, { now: ctx.now() });
    if (!r) throw new CLIError(`the two codes are not consecutive codes of token ${token.id}; nothing changed`);
    await audited(ctx, (store) => store.tokens.resync(token.id, { lastStep: r.lastStep, drift: r.drift }), resynced);
    ctx.out(`resynchronised token ${token.id}: clock drift ${r.drift} step${Math.abs(r.drift) === 1 ? "" : "s"}\n`);
  } else {
    const r = resyncHOTP(token, code1, code2);
    if (!r) throw new CLIError(`the two codes are not consecutive codes of token ${token.id}; nothing changed`);
    await audited(ctx, (store) => store.tokens.resync(token.id, { counter: r.counter }), resynced);
    ctx.out(`resynchronised token ${token.id}: next counter ${r.counter}\n`);
  }
}

async function remove(ctx: CLIContext, args: string[]): Promise<void> {
  const { positionals } = parseCommand(args, {}, { min: 1, max: 1, usage: TOKEN_USAGE[6]! });
  const token = await tokenById(ctx, positionals[0]!);
  await audited(ctx, (store) => store.tokens.remove(token.id), (removed) => (removed ? { type: "admin.token_removed", token: token.id } : null));
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

  const options: PSKCOptions = {};
  if (values["psk-hex"] !== undefined) {
    const hex = values["psk-hex"].trim();
    if (!/^([0-9a-fA-F]{2})+$/.test(hex)) throw usageError("--psk-hex must be an even number of hexadecimal digits");
    options.preSharedKey = new Uint8Array(Buffer.from(hex, "hex"));
  }
  if (values["password-stdin"]) {
    options.password = stripOneNewline(await ctx.readStdin());
    if (options.password === "") throw usageError("the password read from standard input is empty");
  }
  if (values["private-key"] !== undefined) {
    try {
      options.privateKeyPem = readFileSync(values["private-key"], "utf8");
    } catch (e) {
      throw new CLIError(`cannot read ${values["private-key"]}: ${(e as NodeJS.ErrnoException).code ?? "unreadable"}`);
    }
  }

  let imported: ImportedToken[];
  try {
    imported = format === "pskc" ? parsePSKC(text, options) : parseTokenCSV(text);
  } catch (e) {
    if (e instanceof OTPError) throw new CLIError(`${file}: ${e.message}`, 2);
    throw e;
  }
  if (imported.length === 0) throw new CLIError(`${file} holds no tokens`);

  const { tokens, assigned, unknownOwners } = await importedTokens(await ctx.store(), imported, ctx.config.radius.realms);
  try {
    await audited(ctx, (s) => s.tokens.addMany(tokens), (added) => ({ type: "admin.tokens_imported", count: added.length }));
  } catch (e) {
    if (e instanceof StoreError && e.code === "conflict") throw new CLIError(`${file}: a token serial already exists; nothing was imported`);
    throw e;
  }
  ctx.out(`imported ${tokens.length} tokens (${assigned} assigned to users)\n`);
  if (unknownOwners > 0) {
    ctx.out(`${unknownOwners} tokens name a user that does not exist; they are unassigned: use token assign SERIAL NAME\n`);
  }
}
