// `key rotate`: a new sealing key, and every OTP seed and RADIUS secret re-encrypted under it.

import { rotateSealingKey } from "../admin/key.ts";
import { adminContext } from "./audit.ts";
import { parseCommand, usageError, type CLIContext } from "./context.ts";

export const KEY_USAGE = ["portcullis key rotate"];

/** Runs `key rotate`. Throws CLIError for bad usage, AdminError("conflict") when the key source cannot rotate. */
export async function keyCommand(ctx: CLIContext, args: string[]): Promise<void> {
  const [sub, ...rest] = args;
  if (sub !== "rotate") throw usageError(`key needs a subcommand: rotate; usage: ${KEY_USAGE[0]}`);
  parseCommand(rest, {}, { min: 0, max: 0, usage: KEY_USAGE[0]! });
  const { keyId, resealed } = await rotateSealingKey(await adminContext(ctx));
  ctx.out(`new key ${keyId}; ${resealed} secrets re-encrypted\n`);
}
