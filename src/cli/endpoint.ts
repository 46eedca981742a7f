// `endpoint list|set`: Magic Link endpoint profiles. Most come from `[[endpoint]]` in the file (they
// cannot be changed here); `set` changes some keys of a stored one (made through the admin API or
// the web UI, or "default" when the file does not declare it) and keeps the others.

import { ENDPOINT_KEYS, listEndpoints, updateEndpoint } from "../admin/endpoints.ts";
import { AdminError } from "../admin/errors.ts";
import { CONFIG_TABLE_ARRAYS } from "../config/fields.ts";
import { adminContext } from "./audit.ts";
import { CLIError, parseBool, parseCommand, parseInteger, printList, usageError, type CLIContext } from "./context.ts";

/** A key's option: sms_text → --sms-text. */
const option = (key: string) => key.replaceAll("_", "-");

export const ENDPOINT_USAGE = ["portcullis endpoint list [--json]", `portcullis endpoint set NAME ${ENDPOINT_KEYS.map((k) => `[--${option(k)} VALUE]`).join(" ")}`];

/** Runs `endpoint SUBCOMMAND …`. Throws CLIError for bad input or a failed operation. */
export async function endpointCommand(ctx: CLIContext, args: string[]): Promise<void> {
  const [sub, ...rest] = args;
  switch (sub) {
    case "list":
      return list(ctx, rest);
    case "set":
      return set(ctx, rest);
    default:
      throw usageError(`endpoint needs a subcommand: list or set; usage: ${ENDPOINT_USAGE[1]}`);
  }
}

async function list(ctx: CLIContext, args: string[]): Promise<void> {
  const { values } = parseCommand(args, { json: { type: "boolean" } }, { min: 0, max: 0, usage: ENDPOINT_USAGE[0]! });
  const rows = await listEndpoints({ config: ctx.config, store: await ctx.store() });
  printList(ctx, values.json, rows, "no endpoint profiles", ["NAME", "SOURCE", "TIMEOUT", "KNOWN USERS ONLY", "PER NUMBER", "CHANNELS"], (e) => [
    e.name,
    e.declaredInConfig ? "file" : "stored",
    `${e.touch_timeout_s} s`,
    e.require_known_user ? "yes" : "no",
    `${e.per_number_per_minute}/min ${e.per_number_per_hour}/h`,
    e.channels.length > 0 ? e.channels.join(",") : "default",
  ]);
}

/** `endpoint set NAME --KEY VALUE …`: each option a key of `[[endpoint]]`, typed as the file types it. */
async function set(ctx: CLIContext, args: string[]): Promise<void> {
  const usage = ENDPOINT_USAGE[1]!;
  const options = Object.fromEntries(ENDPOINT_KEYS.map((k) => [option(k), { type: "string" as const }]));
  const { values, positionals } = parseCommand(args, options, { min: 1, max: 1, usage });
  const fields = CONFIG_TABLE_ARRAYS.find((t) => t.name === "endpoint")!.fields;
  const patch: Record<string, unknown> = {};
  for (const key of ENDPOINT_KEYS) {
    const raw = (values as Record<string, string | undefined>)[option(key)];
    if (raw === undefined) continue;
    const kind = fields.find((f) => f.key === key)?.kind;
    const name = `--${option(key)}`;
    patch[key] = kind === "integer" ? parseInteger(raw, name) : kind === "boolean" ? parseBool(raw, name, false) : kind === "string[]" ? raw.split(",").map((s) => s.trim()).filter((s) => s !== "") : raw;
  }
  if (Object.keys(patch).length === 0) throw usageError(`endpoint set needs at least one option; usage: ${usage}`);
  const name = positionals[0]!;
  try {
    const { fields: changed } = await updateEndpoint(await adminContext(ctx), name, patch);
    ctx.out(changed.length > 0 ? `endpoint ${name}: changed ${changed.join(", ")}\n` : `endpoint ${name}: nothing changed\n`);
  } catch (e) {
    // The operation names keys as the file does (touch_timeout_s); the CLI names its options.
    if (e instanceof AdminError) {
      const text = e.render((f) => (f === "name" ? "NAME" : `--${option(f)}`)).replace(/\{channels\[(\d+)\]\}/, (_, i: string) => `--channels item ${Number(i) + 1}`);
      throw new CLIError(text, e.code === "invalid" ? 2 : 1);
    }
    throw e;
  }
}
