// `apikey add|list|remove|disable|enable`: API keys for the Magic Link API and the admin API.
// A key is printed once, at creation; the store keeps only its SHA-256 and a short display prefix.

import { randomBytes } from "node:crypto";
import { generateApiKey } from "../http/api-keys.ts";
import { DEFAULT_ENDPOINT, StoreError, type ApiKeyRole } from "../store/types.ts";
import { audited } from "./audit.ts";
import { CLIError, parseCommand, printList, usageError, type CLIContext } from "./context.ts";

export const APIKEY_USAGE = [
  "portcullis apikey add NAME [--role magiclink|operator|admin|root] [--endpoint NAME] [--expires YYYY-MM-DD]",
  "portcullis apikey list [--json]",
  "portcullis apikey remove NAME",
  "portcullis apikey disable|enable NAME",
];

const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
const ROLES: readonly ApiKeyRole[] = ["magiclink", "operator", "admin", "root"];

/**
 * Parses `--expires YYYY-MM-DD`: the key works through that day (UTC) and is refused from the next
 * midnight UTC. Throws a usage CLIError for a malformed or past date.
 */
export function parseExpiry(text: string, now: number): number {
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(text);
  if (!m) throw usageError("--expires must be a date YYYY-MM-DD");
  const [y, mo, d] = [Number(m[1]), Number(m[2]), Number(m[3])];
  const start = Date.UTC(y, mo - 1, d);
  const check = new Date(start);
  if (check.getUTCFullYear() !== y || check.getUTCMonth() !== mo - 1 || check.getUTCDate() !== d) throw usageError("--expires is not a calendar date");
  const end = start + 86_400_000;
  if (end <= now) throw usageError("--expires is in the past");
  return end;
}

/** The last UTC day on which a key expiring at `expiresAt` still works (YYYY-MM-DD). */
function lastValidDay(expiresAt: number): string {
  return new Date(expiresAt - 1).toISOString().slice(0, 10);
}

/** Runs `apikey SUBCOMMAND …`. Throws CLIError for bad input or a failed operation. */
export async function apikeyCommand(ctx: CLIContext, args: string[]): Promise<void> {
  const [sub, ...rest] = args;
  switch (sub) {
    case "add":
      return add(ctx, rest);
    case "list":
      return list(ctx, rest);
    case "remove":
      return remove(ctx, rest);
    case "disable":
    case "enable":
      return setDisabled(ctx, rest, sub === "disable");
    default:
      throw usageError(`apikey needs a subcommand: add, list, remove, disable or enable; usage: ${APIKEY_USAGE[0]}`);
  }
}

async function add(ctx: CLIContext, args: string[]): Promise<void> {
  const usage = APIKEY_USAGE[0]!;
  const { values, positionals } = parseCommand(
    args,
    { role: { type: "string" }, endpoint: { type: "string" }, expires: { type: "string" } },
    { min: 1, max: 1, usage },
  );
  const name = positionals[0]!;
  if (!NAME.test(name)) throw usageError("apikey NAME must be 1-64 letters, digits, '.', '_' or '-'");
  const role = (values.role ?? "magiclink") as ApiKeyRole;
  if (!ROLES.includes(role)) throw usageError(`--role must be one of ${ROLES.join(", ")}`);
  if (values.endpoint !== undefined && role !== "magiclink") throw usageError("--endpoint applies to magiclink keys only");
  const expiresAt = values.expires === undefined ? null : parseExpiry(values.expires, ctx.now());

  const store = await ctx.store();
  let endpoint: string | null = null;
  if (values.endpoint !== undefined && values.endpoint !== DEFAULT_ENDPOINT) {
    if (!NAME.test(values.endpoint)) throw usageError("--endpoint must name an endpoint profile");
    const declared = ctx.config.endpoint.some((e) => e.name === values.endpoint);
    if (!declared && !(await store.endpoints.get(values.endpoint))) throw new CLIError(`no endpoint profile named ${values.endpoint} (see [[endpoint]] in the configuration or the admin API)`);
    endpoint = values.endpoint;
  }

  const generated = generateApiKey((n) => new Uint8Array(randomBytes(n)));
  try {
    await audited(
      ctx,
      (s) => s.apiKeys.add({ name, role, endpoint, hash: generated.hash, prefix: generated.prefix, expiresAt }),
      () => ({ type: "admin.apikey_added", apikey: name, role }),
    );
  } catch (e) {
    if (e instanceof StoreError && e.code === "conflict") throw new CLIError(`API key ${name} already exists`);
    throw e;
  }
  // The key alone on standard output (KEY=$(portcullis apikey add …)); the rest on standard error.
  ctx.out(`${generated.key}\n`);
  const scope = role === "magiclink" ? `, endpoint ${endpoint ?? DEFAULT_ENDPOINT}` : "";
  const expiry = expiresAt === null ? "never expires" : `valid through ${lastValidDay(expiresAt)} UTC`;
  ctx.err(`portcullis: added API key ${name} (role ${role}${scope}, ${expiry}); it is shown only now, store it safely\n`);
}

async function list(ctx: CLIContext, args: string[]): Promise<void> {
  const { values } = parseCommand(args, { json: { type: "boolean" } }, { min: 0, max: 0, usage: APIKEY_USAGE[1]! });
  const keys = await (await ctx.store()).apiKeys.list();
  // Never print the hash either: it is all an offline guesser would need.
  const now = ctx.now();
  const view = keys.map((k) => ({
    name: k.name,
    role: k.role,
    endpoint: k.role === "magiclink" ? (k.endpoint ?? DEFAULT_ENDPOINT) : null,
    prefix: k.prefix,
    status: k.disabled ? "disabled" : k.expiresAt !== null && k.expiresAt <= now ? "expired" : "active",
    expiresAt: k.expiresAt === null ? null : new Date(k.expiresAt).toISOString(),
    createdAt: new Date(k.createdAt).toISOString(),
    lastUsedAt: k.lastUsedAt === null ? null : new Date(k.lastUsedAt).toISOString(),
  }));
  printList(ctx, values.json, view, "no API keys", ["NAME", "ROLE", "ENDPOINT", "PREFIX", "STATUS", "EXPIRES", "LAST-USED"], (v, i) => [
    v.name,
    v.role,
    v.endpoint ?? "-",
    `${v.prefix}…`,
    v.status,
    keys[i]!.expiresAt === null ? "never" : `after ${lastValidDay(keys[i]!.expiresAt!)}`,
    v.lastUsedAt ?? "never",
  ]);
}

async function remove(ctx: CLIContext, args: string[]): Promise<void> {
  const { positionals } = parseCommand(args, {}, { min: 1, max: 1, usage: APIKEY_USAGE[2]! });
  const name = positionals[0]!;
  const removed = await audited(ctx, (store) => store.apiKeys.remove(name), (ok) => (ok ? { type: "admin.apikey_removed", apikey: name } : null));
  if (!removed) throw new CLIError(`no API key named ${NAME.test(name) ? name : "so"}`);
  ctx.out(`removed API key ${name}\n`);
}

async function setDisabled(ctx: CLIContext, args: string[], disabled: boolean): Promise<void> {
  const { positionals } = parseCommand(args, {}, { min: 1, max: 1, usage: APIKEY_USAGE[3]! });
  const name = positionals[0]!;
  const found = await audited(ctx, (store) => store.apiKeys.setDisabled(name, disabled), (ok) => (ok ? { type: "admin.apikey_state", apikey: name, disabled } : null));
  if (!found) throw new CLIError(`no API key named ${NAME.test(name) ? name : "so"}`);
  ctx.out(`${disabled ? "disabled" : "enabled"} API key ${name}\n`);
}
