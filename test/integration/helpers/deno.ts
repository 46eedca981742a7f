// The Deno executable of the `deno` npm package (a devDependency), for tests that run the product under Deno.

import { createRequire } from "node:module";
import { existsSync } from "node:fs";
import { join, resolve } from "node:path";

const root = resolve(import.meta.dir, "../../..");

/**
 * The path of the deno executable itself, or null when the package is not installed.
 * node_modules/.bin/deno is a Node script that runs it as a child and forwards no signals, so a
 * server started through it could not be stopped with SIGTERM or asked for its counters (SIGUSR1).
 */
export function denoExecutable(): string | null {
  const api = join(root, "node_modules/deno/install_api.cjs");
  if (!existsSync(api)) return null;
  try {
    // resolves node_modules/deno/deno, or the platform package's binary when npm's install script did not run
    return (createRequire(api)(api) as { runInstall(): string }).runInstall();
  } catch {
    return null;
  }
}

/** `deno run` of src/main.ts with every permission the appliance uses (files, network, environment, signals, sub-processes). */
export function denoPortcullisCommand(deno: string): string[] {
  return [deno, "run", "--allow-all", "--config", join(root, "deno.json"), join(root, "src/main.ts")];
}
