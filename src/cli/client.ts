// `client add|list|remove`: the RADIUS client table (source network → shared secret and per-client policy).

import { changedPhoneFields, checkClientPhone, ClientPhoneError } from "../admin/client-phone.ts";
import { parseCIDR } from "../config/index.ts";
import { clientOverlaps, type ClientOverlap } from "../radius/server/client-table.ts";
import { DEFAULT_CLIENT_PHONE, NetworkTakenError, StoreError, type ApprovalMode, type ClientPhoneSettings, type FirstFactor, type OTPMode, type RadiusClient, type SmsCodeAlphabetName } from "../store/types.ts";
import { audited } from "./audit.ts";
import { CLIError, parseBool, parseCommand, parseInteger, stripOneNewline, printList, usageError, type CLIContext } from "./context.ts";

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

/** The phone settings checked together (admin/client-phone.ts); a refusal becomes a usage CLIError. */
function checkedPhone(current: ClientPhoneSettings, patch: Partial<ClientPhoneSettings>, otpMode: OTPMode): ClientPhoneSettings {
  try {
    return checkClientPhone(current, patch, otpMode);
  } catch (e) {
    if (e instanceof ClientPhoneError) throw usageError(e.message);
    throw e;
  }
}

/** Shared secrets shorter than this get a warning (RFC 2865 §3 asks for at least 16 octets). */
export const MIN_SECRET_LENGTH = 16;

const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

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
  const name = positionals[0]!;
  if (!NAME.test(name)) throw usageError("client NAME must be 1-64 letters, digits, '.', '_' or '-'");
  if (values.address === undefined) throw usageError(`client add needs --address CIDR; usage: ${usage}`);
  const address = parseCIDR(values.address.trim());
  if (!address) throw usageError("--address must be an IPv4 or IPv6 address or CIDR network (192.0.2.10, 192.0.2.0/24, 2001:db8::/64)");

  const firstFactor = (values["first-factor"] ?? "password") as FirstFactor;
  if (firstFactor !== "password" && firstFactor !== "none") throw usageError("--first-factor must be password or none");
  const otpMode = (values["otp-mode"] ?? "challenge") as OTPMode;
  if (otpMode !== "challenge" && otpMode !== "concat") throw usageError("--otp-mode must be challenge or concat");
  const requireMessageAuthenticator = parseBool(values["require-message-authenticator"], "--require-message-authenticator", true);
  const allowPasswordOnly = parseBool(values["allow-password-only"], "--allow-password-only", false);
  if (firstFactor === "none" && allowPasswordOnly) {
    // With no first factor a password-only user would be let in on nothing at all.
    throw usageError("--first-factor none cannot be combined with --allow-password-only true");
  }

  const directories = values.directories === undefined ? null : parseDirectories(values.directories, ctx.config.ldap.map((p) => p.name));
  const phone = checkedPhone(DEFAULT_CLIENT_PHONE, phonePatch(values), otpMode);

  if (values.secret !== undefined && values["secret-stdin"]) throw usageError("give either --secret or --secret-stdin, not both");
  let secret: string;
  if (values["secret-stdin"]) secret = stripOneNewline(await ctx.readStdin());
  else if (values.secret !== undefined) secret = values.secret;
  else throw usageError(`client add needs --secret-stdin or --secret; usage: ${usage}`);
  if (secret === "") throw usageError("the shared secret must not be empty");
  if (new TextEncoder().encode(secret).length > 128) throw usageError("the shared secret must be at most 128 bytes");
  if (secret.length < MIN_SECRET_LENGTH) {
    ctx.err(`portcullis: warning: the shared secret is shorter than ${MIN_SECRET_LENGTH} characters; use a long random secret\n`);
  }
  if (!requireMessageAuthenticator) {
    ctx.err("portcullis: warning: requests from this client are accepted without Message-Authenticator (CVE-2024-3596); enable it on the NAS when it can\n");
  }

  try {
    await audited(
      ctx,
      (store) => store.clients.add({ name, address, secret, firstFactor, otpMode, requireMessageAuthenticator, allowPasswordOnly, directories, ...phone }),
      () => ({ type: "admin.client_added", client: name, address }),
    );
  } catch (e) {
    if (e instanceof StoreError && e.code === "conflict") throw new CLIError(`client ${name} already exists`);
    // Exactly the same network could never be matched; an overlapping one is fine (the narrower wins).
    if (e instanceof NetworkTakenError) throw new CLIError(`client ${e.client} already has the network ${e.network}; a second client for it could never be matched (an overlapping network is fine: the most specific one wins)`);
    throw e;
  }
  ctx.out(`added client ${name} (${address}${directories === null ? "" : `; users from ${directories.join(", then ")}`})\n`);
}

/** "local" names the local users; every other name must be a configured [[ldap]] profile. */
export const LOCAL_DIRECTORY = "local";

/**
 * Parses `--directories corp,local`: a comma-separated, ordered list of configured profile names
 * and "local", without duplicates. Throws a usage CLIError naming the first bad entry.
 */
export function parseDirectories(text: string, profiles: readonly string[]): string[] {
  const names = text.split(",").map((s) => s.trim());
  if (names.some((n) => n === "")) throw usageError("--directories must be a comma-separated list of profile names and local, e.g. corp,local");
  const seen = new Set<string>();
  for (const n of names) {
    if (n !== LOCAL_DIRECTORY && !profiles.includes(n)) {
      const known = [...profiles, LOCAL_DIRECTORY].join(", ");
      throw usageError(`--directories: ${n.length <= 64 ? n : "a name"} is not a configured [[ldap]] profile nor local (known: ${known})`);
    }
    if (seen.has(n)) throw usageError(`--directories names ${n} twice`);
    seen.add(n);
  }
  return names;
}

async function list(ctx: CLIContext, args: string[]): Promise<void> {
  const { values } = parseCommand(args, { json: { type: "boolean" } }, { min: 0, max: 0, usage: CLIENT_USAGE[1]! });
  const clients = await (await ctx.store()).clients.list();
  const overlaps = clientOverlaps(clients);
  // Never print the shared secret.
  const safe = clients.map(({ secret: _secret, ...c }) => {
    const { network, ...overlap } = overlaps.get(c.name)!;
    return { ...c, network, overlaps: overlap };
  });
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
  const store = await ctx.store();
  const current: RadiusClient | undefined = await store.clients.findByName(name);
  if (!current) throw new CLIError(`no client named ${name}`);
  const next = checkedPhone(current, patch, current.otpMode);
  const fields = changedPhoneFields(current, next);
  await audited(
    ctx,
    (s) => s.clients.updatePhone(name, next),
    (updated) => (updated && fields.length > 0 ? { type: "admin.client_updated", client: name, fields } : null),
  );
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
  const removed = await audited(ctx, (store) => store.clients.remove(name), (ok) => (ok ? { type: "admin.client_removed", client: name } : null));
  if (!removed) throw new CLIError(`no client named ${name}`);
  ctx.out(`removed client ${name}\n`);
}
