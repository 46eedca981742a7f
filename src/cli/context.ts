// What every admin command gets: the loaded config, the store (opened on first use), I/O, the clock.
//
// Commands throw CLIError for anything the administrator got wrong or that did not work; main.ts
// prints it as the single line `portcullis: <reason>`. Messages never contain a secret.

import { parseArgs, type ParseArgsConfig } from "node:util";
import { AdminError } from "../admin/errors.ts";
import type { Config } from "../config/index.ts";
import type { Store } from "../store/types.ts";

/** A failure to report on one line. `exitCode` 2 means bad usage, 1 a failed operation. */
export class CLIError extends Error {
  constructor(
    message: string,
    readonly exitCode: 1 | 2 = 1,
  ) {
    super(message);
    this.name = "CLIError";
  }
}

/** How the CLI names an admin operation's input fields where it is not `--` + the field in kebab case. */
const CLI_NAMES: Record<string, string> = {
  username: "NAME",
  name: "NAME",
  user: "NAME",
  id: "ID",
  code1: "CODE1",
  code2: "CODE2",
  password: "--password-stdin",
  approvalHoldS: "--approval-hold",
};

/** The CLI's name of an admin operation's input field: "phone" → "--phone", "allowPasswordOnly" → "--allow-password-only". */
export function cliName(field: string): string {
  return CLI_NAMES[field] ?? `--${field.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;
}

/** An admin operation's error as the CLI reports it: a usage error (exit 2) for invalid input, else exit 1. */
export function cliError(e: AdminError): CLIError {
  return new CLIError(e.render(cliName), e.code === "invalid" ? 2 : 1);
}

/** A usage error (exit code 2). */
export function usageError(message: string): CLIError {
  return new CLIError(message, 2);
}

export interface CLIContext {
  config: Config;
  /** Writes to standard output (results). */
  out(text: string): void;
  /** Writes to standard error (warnings, progress). */
  err(text: string): void;
  stdoutIsTTY: boolean;
  stderrIsTTY: boolean;
  /** All of standard input as text. */
  readStdin(): Promise<string>;
  /** The store, opened on first call and closed by main.ts after the command. */
  store(): Promise<Store>;
  now(): number;
  /** Who makes the changes, as recorded in admin events; default cli/audit.ts cliActor(). */
  actor?: string;
}

type Options = NonNullable<ParseArgsConfig["options"]>;

/**
 * parseArgs with strict options and our own one-line messages. Node's messages may quote a
 * whole argument, which could be a secret typed in the wrong place; ours name only the option.
 * Throws a usage CLIError for unknown options, missing values and a wrong number of positionals.
 */
export function parseCommand<O extends Options>(
  args: string[],
  options: O,
  { min, max, usage }: { min: number; max: number; usage: string },
) {
  let parsed;
  try {
    parsed = parseArgs({ args, options, strict: true, allowPositionals: true });
  } catch (e) {
    const code = (e as { code?: string }).code;
    const name = /'(--?[A-Za-z0-9-]+)/.exec((e as Error).message)?.[1];
    if (code === "ERR_PARSE_ARGS_UNKNOWN_OPTION") throw usageError(`unknown option ${name ?? ""}; usage: ${usage}`.replace("  ", " "));
    if (code === "ERR_PARSE_ARGS_INVALID_OPTION_VALUE") throw usageError(`option ${name ?? ""} needs a value; usage: ${usage}`);
    throw usageError(`bad arguments; usage: ${usage}`);
  }
  const n = parsed.positionals.length;
  if (n < min) throw usageError(`missing arguments; usage: ${usage}`);
  if (n > max) throw usageError(`too many arguments; usage: ${usage}`);
  return parsed;
}

/** Parses "true" / "false" for an option; throws a usage CLIError otherwise. */
export function parseBool(value: string | undefined, option: string, fallback: boolean): boolean {
  if (value === undefined) return fallback;
  if (value === "true") return true;
  if (value === "false") return false;
  throw usageError(`${option} must be true or false`);
}

/** Parses a non-negative integer ID or count; throws a usage CLIError otherwise. */
export function parseInteger(value: string, what: string, { min = 0, max = Number.MAX_SAFE_INTEGER } = {}): number {
  if (!/^\d{1,15}$/.test(value)) throw usageError(`${what} must be a whole number`);
  const n = Number(value);
  if (n < min || n > max) throw usageError(`${what} must be between ${min} and ${max}`);
  return n;
}

/** Drops exactly one trailing newline ("\n" or "\r\n") from a secret read on standard input. */
export function stripOneNewline(s: string): string {
  if (s.endsWith("\r\n")) return s.slice(0, -2);
  if (s.endsWith("\n")) return s.slice(0, -1);
  return s;
}

/** Formats rows as left-aligned columns under a header. */
/**
 * Prints a `list` command's result: the rows as indented JSON with --json, else a table of
 * `cells(row, index)` under `header`, or the line `empty` when there are none.
 */
export function printList<R>(ctx: CLIContext, json: boolean | undefined, rows: readonly R[], empty: string, header: string[], cells: (row: R, index: number) => string[]): void {
  if (json) ctx.out(JSON.stringify(rows, null, 2) + "\n");
  else if (rows.length === 0) ctx.out(`${empty}\n`);
  else ctx.out(table(header, rows.map(cells)));
}

export function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] ?? 0)))
      .join("  ")
      .trimEnd();
  return [line(header), ...rows.map(line)].join("\n") + "\n";
}
