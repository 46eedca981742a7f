// The portcullis executable: global flags, configuration, and dispatch to one command group.
//
//   portcullis [--config FILE] [--data-dir DIR] COMMAND [SUBCOMMAND] [ARGS…]
//
// Every failure ends as ONE line `portcullis: <reason>` on standard error and a non-zero exit
// code (2 for bad usage, 1 for a failed operation); never a stack trace, never a secret.

import { availableParallelism } from "node:os";
import pkg from "../package.json" with { type: "json" };
import { setLogLevel, setLogSink } from "./audit/log.ts";
import { adminCommand } from "./cli/admin.ts";
import { apikeyCommand } from "./cli/apikey.ts";
import { endpointCommand } from "./cli/endpoint.ts";
import { clientCommand } from "./cli/client.ts";
import { AdminError } from "./admin/errors.ts";
import { CLIError, cliError, usageError, type CLIContext } from "./cli/context.ts";
import { deviceCommand } from "./cli/device.ts";
import { COMMAND_GROUPS, helpText } from "./cli/help.ts";
import { keyCommand } from "./cli/key.ts";
import { LDAP_USAGE, ldapTest } from "./cli/ldap.ts";
import { tokenCommand } from "./cli/token.ts";
import { userCommand } from "./cli/user.ts";
import { WORKER_ENV } from "./cli/workers.ts";
import { ConfigError, ldapProfiles, loadConfig, type ConfigOverride, type LoadOptions } from "./config/index.ts";
import { OTPError } from "./otp/index.ts";
import { setPasswordConcurrency } from "./runtime/password.ts";
import { openStore, storeOptions } from "./store/open.ts";
import { StoreError, type Store } from "./store/types.ts";

export interface GlobalFlags {
  config?: string;
  dataDir?: string;
  help: boolean;
  version: boolean;
  /** Everything else, in order: the command and its own arguments. */
  rest: string[];
}

/**
 * Takes the global flags out of argv wherever they appear, so `portcullis user list --data-dir X`
 * and `portcullis --data-dir X user list` both work. Throws a usage CLIError for a flag without
 * its value.
 */
export function splitGlobalFlags(argv: string[]): GlobalFlags {
  const flags: GlobalFlags = { help: false, version: false, rest: [] };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === "--") {
      flags.rest.push(...argv.slice(i));
      break;
    }
    const m = /^--(config|data-dir)(?:=(.*))?$/.exec(arg);
    if (m) {
      const value = m[2] ?? argv[++i];
      if (value === undefined || value === "") throw usageError(`--${m[1]} needs a value`);
      if (m[1] === "config") flags.config = value;
      else flags.dataDir = value;
    } else if (arg === "--help" || arg === "-h") flags.help = true;
    else if (arg === "--version") flags.version = true;
    else flags.rest.push(arg);
  }
  return flags;
}

/** Pulls `serve`'s own flags; throws a usage CLIError for anything else. */
function parseServeFlags(args: string[]): { radiusListen: string[]; httpListen?: string } {
  const out: { radiusListen: string[]; httpListen?: string } = { radiusListen: [] };
  for (let i = 0; i < args.length; i++) {
    const m = /^--(radius-listen|http-listen)(?:=(.*))?$/.exec(args[i]!);
    if (!m) throw usageError(`serve takes only --radius-listen ADDR:PORT and --http-listen ADDR:PORT`);
    const value = m[2] ?? args[++i];
    if (value === undefined || value === "") throw usageError(`--${m[1]} needs ADDR:PORT`);
    if (m[1] === "radius-listen") out.radiusListen.push(...value.split(",").map((s) => s.trim()).filter(Boolean));
    else out.httpListen = value;
  }
  return out;
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(typeof chunk === "string" ? Buffer.from(chunk) : (chunk as Buffer));
  return Buffer.concat(chunks).toString("utf8");
}

/** Reads one line from the terminal with echo off (raw mode); Ctrl-C or Ctrl-D ends it empty. */
function promptHidden(prompt: string): Promise<string> {
  return new Promise((resolve) => {
    const stdin = process.stdin;
    process.stderr.write(prompt);
    stdin.setRawMode(true);
    stdin.resume();
    let text = "";
    const done = (value: string) => {
      stdin.off("data", onData);
      stdin.setRawMode(false);
      stdin.pause();
      process.stderr.write("\n");
      resolve(value);
    };
    const onData = (chunk: Buffer) => {
      for (const ch of chunk.toString("utf8")) {
        if (ch === "\r" || ch === "\n") return done(text);
        if (ch === "\u0003" || ch === "\u0004") return done("");
        if (ch === "\u007f" || ch === "\b") text = text.slice(0, -1);
        else text += ch;
      }
    };
    stdin.on("data", onData);
  });
}

/** Turns any error into the one line we print. Unknown errors show their class and first line only. */
export function describeError(e: unknown): { message: string; exitCode: number } {
  if (e instanceof CLIError) return { message: e.message, exitCode: e.exitCode };
  if (e instanceof AdminError) return describeError(cliError(e));
  if (e instanceof ConfigError) return { message: e.message, exitCode: 2 };
  if (e instanceof StoreError || e instanceof OTPError) return { message: e.message, exitCode: 1 };
  if (e instanceof Error) {
    const code = (e as NodeJS.ErrnoException).code;
    const first = e.message.split("\n")[0] ?? "";
    return { message: `${e.name}${code ? ` ${code}` : ""}: ${first}`, exitCode: 1 };
  }
  return { message: "unexpected failure", exitCode: 1 };
}

/** Runs one invocation; resolves to the exit code. */
export async function main(argv: string[]): Promise<number> {
  let store: Store | undefined;
  try {
    const flags = splitGlobalFlags(argv);
    const [command, ...args] = flags.rest;
    if (flags.version) {
      process.stdout.write(`portcullis ${pkg.version}\n`);
      return 0;
    }
    if (flags.help || command === undefined || command === "help") {
      const group = command === "help" ? args[0] : command;
      process.stdout.write(helpText(group));
      return command === undefined && !flags.help ? 2 : 0;
    }
    if (!COMMAND_GROUPS.includes(command)) {
      throw usageError(`unknown command ${JSON.stringify(command.slice(0, 40))}; run portcullis --help`);
    }

    const options: LoadOptions = {};
    if (flags.config !== undefined) options.configFile = flags.config;
    if (flags.dataDir !== undefined) options.dataDir = flags.dataDir;

    if (command === "serve") {
      const serveFlags = parseServeFlags(args);
      // A RADIUS worker of a supervising `serve`: its configuration comes over IPC (cli/workers.ts).
      const workerId = process.env[WORKER_ENV];
      if (workerId !== undefined) {
        delete process.env[WORKER_ENV];
        const { serveWorker } = await import("./cli/serve.ts");
        await serveWorker(Number(workerId) || 0);
        return 0;
      }
      const overrides: ConfigOverride[] = [];
      if (serveFlags.radiusListen.length > 0) overrides.push({ path: "radius.listen", value: serveFlags.radiusListen, source: "--radius-listen" });
      if (serveFlags.httpListen !== undefined) overrides.push({ path: "http.listen", value: serveFlags.httpListen, source: "--http-listen" });
      const { config, explicit } = loadConfig({ ...options, overrides });
      const { serve } = await import("./cli/serve.ts");
      await serve({
        config,
        flags: serveFlags.httpListen === undefined ? { radiusListen: serveFlags.radiusListen } : serveFlags,
        explicitListeners: { http: explicit.has("http.listen"), admin: explicit.has("admin.listen") },
      });
      return 0;
    }

    if (command === "switch" && args[0] === "serve") {
      const rest = args.slice(1);
      const m = rest.length === 0 ? null : /^--listen(?:=(.+))?$/.exec(rest[0]!);
      const listen = m ? (m[1] ?? rest[1]) : undefined;
      if (rest.length > 0 && (!m || listen === undefined || rest.length > (m[1] !== undefined ? 1 : 2))) throw usageError("switch serve takes only --listen ADDR:PORT");
      const { config } = loadConfig(listen === undefined ? options : { ...options, overrides: [{ path: "switch_server.listen", value: listen, source: "--listen" }] });
      const { switchServe } = await import("./cli/switch.ts");
      await switchServe(config, {});
      return 0;
    }

    const { config } = loadConfig(options);
    // Standard output carries the command's result; log lines (e.g. "key created") go to stderr.
    setLogSink((line) => process.stderr.write(line + "\n"));
    setLogLevel(config.log_level === "debug" ? "debug" : "warn");
    setPasswordConcurrency(config.password.hash_concurrency || availableParallelism());
    if (command === "ldap") {
      // Diagnostics only: talks to the directory, never opens the store.
      const [sub, profile, user, ...extra] = args;
      if (sub !== "test" || profile === undefined || profile.startsWith("-") || extra.length > 0) throw usageError(`usage: ${LDAP_USAGE[0]}`);
      return await ldapTest(ldapProfiles(config), profile, user, (line) => process.stdout.write(line + "\n"));
    }

    if (command === "store") {
      const { storeCommand } = await import("./cli/store.ts");
      return await storeCommand(
        { config, out: (t) => process.stdout.write(t), err: (t) => process.stderr.write(t), stdoutIsTTY: false, stderrIsTTY: false, readStdin, now: () => Date.now(), store: () => Promise.reject(new Error("store commands open stores themselves")) },
        args,
      );
    }

    const ctx: CLIContext = {
      config,
      out: (text) => process.stdout.write(text),
      err: (text) => process.stderr.write(text),
      stdoutIsTTY: process.stdout.isTTY === true,
      stderrIsTTY: process.stderr.isTTY === true,
      readStdin,
      ...(process.stdin.isTTY ? { promptHidden } : {}),
      now: () => Date.now(),
      store: async () => {
        store ??= await openStore(storeOptions(config));
        return store;
      },
    };
    switch (command) {
      case "client":
        await clientCommand(ctx, args);
        break;
      case "user":
        await userCommand(ctx, args);
        break;
      case "token":
        await tokenCommand(ctx, args);
        break;
      case "device":
        await deviceCommand(ctx, args);
        break;
      case "apikey":
        await apikeyCommand(ctx, args);
        break;
      case "endpoint":
        await endpointCommand(ctx, args);
        break;
      case "key":
        await keyCommand(ctx, args);
        break;
      case "admin":
        await adminCommand(ctx, args);
        break;
      case "switch": {
        const { switchCommand } = await import("./cli/switch.ts");
        await switchCommand(ctx, args);
        break;
      }
    }
    return 0;
  } catch (e) {
    const { message, exitCode } = describeError(e);
    if (process.env.PORTCULLIS_DEBUG === "1" && e instanceof Error) process.stderr.write(`${e.stack}\n`);
    process.stderr.write(`portcullis: ${message.replace(/\s*\n\s*/g, " ")}\n`);
    return exitCode;
  } finally {
    if (store) await store.close().catch(() => {});
  }
}

if (import.meta.main) {
  // exitCode rather than exit(): a large result piped to another program must be flushed first.
  process.exitCode = await main(process.argv.slice(2));
}
