// `client add|list|remove`: the RADIUS client table (source network → shared secret and per-client policy).

import { addClient, checkDirectories, LOCAL_DIRECTORY, listClients, MIN_SECRET_LENGTH, removeClient, updateClientPhone } from "../admin/clients.ts";
import { AdminError } from "../admin/errors.ts";
import type { ClientOverlap } from "../radius/server/client-table.ts";
import type { ApprovalMode, ClientPhoneSettings, SmsCodeAlphabetName } from "../store/types.ts";
import { adminContext } from "./audit.ts";
import { cliError, parseBool, parseCommand, parseInteger, stripOneNewline, printList, usageError, type CLIContext } from "./context.ts";

export { LOCAL_DIRECTORY, MIN_SECRET_LENGTH };

/** The phone-factor options of `client add` and `client set`. */
const PHONE_OPTIONS_USAGE = "[--approval-hold SECONDS] [--approval-mode hold|challenge] [--approval-number-match true|false] [--sms-code-length 4-12|default] [--sms-code-alphabet numeric|alphabetic|alphanumeric|default]";

export const CLIENT_USAGE = [
  `portcullis client add NAME --address CIDR (--secret-stdin | --secret S) [--first-factor password|none] [--otp-mode challenge|concat] [--require-message-authenticator true|false] [--allow-password-only true|false] [--directories PROFILE,…,local] ${PHONE_OPTIONS_USAGE}`,
  "portcullis client list [--json]",
  "portcullis client remove NAME",
  `portcullis client set NAME ${PHONE_OPTIONS_USAGE}`,
];

const PHONE_OPTIONS = {
  "approval-hold": { type: "string" },
  "approval-mode": { type: "string" },
  "approval-number-match": { type: "string" },
  "sms-code-length": { type: "string" },
  "sms-code-alphabet": { type: "string" },
} as const;

/** The phone settings the options name ("default" for the code format: the [delivery] setting). Throws a usage CLIError. */
function phonePatch(values: Partial<Record<keyof typeof PHONE_OPTIONS, string>>): Partial<ClientPhoneSettings> {
  const patch: Partial<ClientPhoneSettings> = {};
  const hold = values["approval-hold"];
  if (hold !== undefined) patch.approvalHoldS = parseInteger(hold, "--approval-hold", { min: 5, max: 120 });
  const mode = values["approval-mode"];
  if (mode !== undefined) {
    if (mode !== "hold" && mode !== "challenge") throw usageError("--approval-mode must be hold or challenge");
    patch.approvalMode = mode as ApprovalMode;
  }
  if (values["approval-number-match"] !== undefined) patch.approvalNumberMatch = parseBool(values["approval-number-match"], "--approval-number-match", false);
  const length = values["sms-code-length"];
  if (length !== undefined) patch.smsCodeLength = length === "default" ? null : parseInteger(length, "--sms-code-length", { min: 4, max: 12 });
  const alphabet = values["sms-code-alphabet"];
  if (alphabet !== undefined) {
    if (alphabet !== "default" && alphabet !== "numeric" && alphabet !== "alphabetic" && alphabet !== "alphanumeric") throw usageError("--sms-code-alphabet must be numeric, alphabetic, alphanumeric or default");
    patch.smsCodeAlphabet = alphabet === "default" ? null : (alphabet as SmsCodeAlphabetName);
  }
  return patch;
}

/** Runs `client SUBCOMMAND …`. Throws CLIError for bad input or a failed operation. */
export async function clientCommand(ctx: CLIContext, args: string[]): Promise<void> {
  const [sub, ...rest] = args;
  switch (sub) {
    case "add":
      return add(ctx, rest);
    case "list":
      return list(ctx, rest);
    case "remove":
      return remove(ctx, rest);
    case "set":
      return set(ctx, rest);
    default:
      throw usageError(`client needs a subcommand: add, list, set or remove; usage: ${CLIENT_USAGE[0]}`);
  }
}

async function add(ctx: CLIContext, args: string[]): Promise<void> {
  const usage = CLIENT_USAGE[0]!;
  const { values, positionals } = parseCommand(
    args,
    {
      address: { type: "string" },
      secret: { type: "string" },
      "secret-stdin": { type: "boolean" },
      "first-factor": { type: "string" },
      "otp-mode": { type: "string" },
      "require-message-authenticator": { type: "string" },
      "allow-password-only": { type: "string" },
      directories: { type: "string" },
      ...PHONE_OPTIONS,
    },
    { min: 1, max: 1, usage },
  );
  if (values.address === undefined) throw usageError(`client add needs --address CIDR; usage: ${usage}`);
  const requireMessageAuthenticator = parseBool(values["require-message-authenticator"], "--require-message-authenticator", true);
  const allowPasswordOnly = parseBool(values["allow-password-only"], "--allow-password-only", false);
  const phone = phonePatch(values);
  if (values.secret !== undefined && values["secret-stdin"]) throw usageError("give either --secret or --secret-stdin, not both");
  let secret: string;
  if (values["secret-stdin"]) secret = stripOneNewline(await ctx.readStdin());
  else if (values.secret !== undefined) secret = values.secret;
  else throw usageError(`client add needs --secret-stdin or --secret; usage: ${usage}`);
  const { client, warnings } = await addClient(await adminContext(ctx), {
    name: positionals[0]!,
    address: values.address,
    secret,
    ...(values["first-factor"] !== undefined ? { firstFactor: values["first-factor"] } : {}),
    ...(values["otp-mode"] !== undefined ? { otpMode: values["otp-mode"] } : {}),
    requireMessageAuthenticator,
    allowPasswordOnly,
    directories: values.directories === undefined ? null : splitDirectories(values.directories),
    ...phone,
  });
  for (const warning of warnings) ctx.err(`portcullis: warning: ${warning}\n`);
  ctx.out(`added client ${client.name} (${client.address}${client.directories === null ? "" : `; users from ${client.directories.join(", then ")}`})\n`);
}

/** `--directories corp,local` as a list (checked by the operation). */
function splitDirectories(text: string): string[] {
  return text.split(",").map((s) => s.trim());
}

/**
 * Parses `--directories corp,local`: a comma-separated, ordered list of configured profile names
 * and "local", without duplicates. Throws a usage CLIError naming the first bad entry.
 */
export function parseDirectories(text: string, profiles: readonly string[]): string[] {
  try {
    return checkDirectories(splitDirectories(text), profiles);
  } catch (e) {
    if (e instanceof AdminError) throw cliError(e);
    throw e;
  }
}

async function list(ctx: CLIContext, args: string[]): Promise<void> {
  const { values } = parseCommand(args, { json: { type: "boolean" } }, { min: 0, max: 0, usage: CLIENT_USAGE[1]! });
  // Never the shared secret.
  const safe = await listClients({ store: await ctx.store() });
  printList(ctx, values.json, safe, "no clients", ["NAME", "ADDRESS", "FIRST-FACTOR", "OTP-MODE", "MESSAGE-AUTHENTICATOR", "PASSWORD-ONLY", "DIRECTORIES", "APPROVAL", "SMS-CODE", "OVERLAPS"], (c) => [
    c.name,
    c.address,
    c.firstFactor,
    c.otpMode,
    c.requireMessageAuthenticator ? "required" : "optional",
    c.allowPasswordOnly ? "allowed" : "no",
    c.directories === null ? "(all, then local)" : c.directories.join(","),
    describeApproval(c),
    describeSmsCode(c),
    describeOverlap({ network: c.network, ...c.overlaps }),
  ]);
}

/** The APPROVAL cell: "hold 25s", "challenge 60s, number matching". */
export function describeApproval(c: ClientPhoneSettings): string {
  return `${c.approvalMode} ${c.approvalHoldS}s${c.approvalNumberMatch ? ", number matching" : ""}`;
}

/** The SMS-CODE cell: the client's own format, "default" for each part that follows [delivery]. */
export function describeSmsCode(c: ClientPhoneSettings): string {
  if (c.smsCodeLength === null && c.smsCodeAlphabet === null) return "default";
  return `${c.smsCodeAlphabet ?? "default"} ${c.smsCodeLength ?? "default"}`;
}

/** `client set NAME …`: changes phone-factor settings of an existing client (the running server picks them up). */
async function set(ctx: CLIContext, args: string[]): Promise<void> {
  const usage = CLIENT_USAGE[3]!;
  const { values, positionals } = parseCommand(args, { ...PHONE_OPTIONS }, { min: 1, max: 1, usage });
  const name = positionals[0]!;
  const patch = phonePatch(values);
  if (Object.keys(patch).length === 0) throw usageError(`client set needs at least one option; usage: ${usage}`);
  const next = await updateClientPhone(await adminContext(ctx), name, patch);
  ctx.out(`client ${name}: approval ${describeApproval(next)}; SMS code ${describeSmsCode(next)}\n`);
}

/** How many names an OVERLAPS cell lists before "and N more" (`--json` has them all). */
const NAMES_SHOWN = 3;

/**
 * The OVERLAPS cell: "-", "shadows lan" (this client wins for its addresses inside lan's network),
 * "shadowed by fw1, fw2" (they win for theirs), both joined by "; ", or "never matched: …".
 */
export function describeOverlap(o: ClientOverlap): string {
  const names = (list: string[]) => (list.length <= NAMES_SHOWN ? list.join(", ") : `${list.slice(0, NAMES_SHOWN).join(", ")} and ${list.length - NAMES_SHOWN} more`);
  if (o.network === null) return "never matched: the address is not a CIDR";
  if (o.duplicateOf !== null) return `never matched: same network as ${o.duplicateOf}`;
  if (o.unreachable) return `never matched: covered by ${names(o.shadowedBy)}`;
  const parts: string[] = [];
  if (o.shadows.length > 0) parts.push(`shadows ${names(o.shadows)}`);
  if (o.shadowedBy.length > 0) parts.push(`shadowed by ${names(o.shadowedBy)}`);
  return parts.length > 0 ? parts.join("; ") : "-";
}

async function remove(ctx: CLIContext, args: string[]): Promise<void> {
  const { positionals } = parseCommand(args, {}, { min: 1, max: 1, usage: CLIENT_USAGE[2]! });
  const name = positionals[0]!;
  await removeClient(await adminContext(ctx), name);
  ctx.out(`removed client ${name}\n`);
}
