// `apikey add`: reserved until the HTTP API exists; it refuses rather than pretend to create a key.

import { CLIError, type CLIContext } from "./context.ts";

export const APIKEY_USAGE = ["portcullis apikey add NAME [--endpoint NAME] [--expires YYYY-MM-DD]"];

/** Always throws CLIError (exit 2): API keys have nothing to authenticate to yet. */
export async function apikeyCommand(_ctx: CLIContext, _args: string[]): Promise<void> {
  throw new CLIError("apikey is not available until the HTTP API lands", 2);
}
