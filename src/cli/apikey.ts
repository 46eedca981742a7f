// `apikey add|list|remove|disable|enable`: API keys for the Magic Link API and the admin API.
// A key is printed once, at creation; the store keeps only its SHA-256 and a short display prefix.

import { addApiKey, listApiKeys, removeApiKey, setApiKeyDisabled } from "../admin/api-keys.ts";
import { DEFAULT_ENDPOINT } from "../store/types.ts";
import { adminContext } from "./audit.ts";
import { parseCommand, printList, usageError, type CLIContext } from "./context.ts";

export const APIKEY_USAGE = [
  "portcullis apikey add NAME [--role magiclink|operator|admin|root] [--endpoint NAME] [--expires YYYY-MM-DD]",
  "portcullis apikey list [--json]",
  "portcullis apikey remove NAME",
  "portcullis apikey disable|enable NAME",
];

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
  const { key, apiKey } = await addApiKey(await adminContext(ctx), {
    name: positionals[0]!,
    ...(values.role !== undefined ? { role: values.role } : {}),
    ...(values.endpoint !== undefined ? { endpoint: values.endpoint } : {}),
    ...(values.expires !== undefined ? { expires: values.expires } : {}),
  });
  // The key alone on standard output (KEY=$(portcullis apikey add …)); the rest on standard error.
  ctx.out(`${key}\n`);
  const scope = apiKey.role === "magiclink" ? `, endpoint ${apiKey.endpoint ?? DEFAULT_ENDPOINT}` : "";
  const expiry = apiKey.expiresAt === null ? "never expires" : `valid through ${lastValidDay(apiKey.expiresAt)} UTC`;
  ctx.err(`portcullis: added API key ${apiKey.name} (role ${apiKey.role}${scope}, ${expiry}); it is shown only now, store it safely\n`);
}

async function list(ctx: CLIContext, args: string[]): Promise<void> {
  const { values } = parseCommand(args, { json: { type: "boolean" } }, { min: 0, max: 0, usage: APIKEY_USAGE[1]! });
  // Never the hash either: it is all an offline guesser would need.
  const { keys, views } = await listApiKeys({ store: await ctx.store(), now: ctx.now });
  printList(ctx, values.json, views, "no API keys", ["NAME", "ROLE", "ENDPOINT", "PREFIX", "STATUS", "EXPIRES", "LAST-USED"], (v, i) => [
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
  await removeApiKey(await adminContext(ctx), name);
  ctx.out(`removed API key ${name}\n`);
}

async function setDisabled(ctx: CLIContext, args: string[], disabled: boolean): Promise<void> {
  const { positionals } = parseCommand(args, {}, { min: 1, max: 1, usage: APIKEY_USAGE[3]! });
  const name = positionals[0]!;
  await setApiKeyDisabled(await adminContext(ctx), name, disabled);
  ctx.out(`${disabled ? "disabled" : "enabled"} API key ${name}\n`);
}
