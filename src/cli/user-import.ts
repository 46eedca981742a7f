// `user import FILE.csv`: reads the file and runs the import operation (admin/user-import.ts), with
// a progress bar on a terminal and the weak-secret warnings on standard error.

import { readFileSync } from "node:fs";
import { AdminError } from "../admin/errors.ts";
import { importUsers as importUsersOperation } from "../admin/user-import.ts";
import { adminContext } from "./audit.ts";
import { CLIError, cliError, type CLIContext } from "./context.ts";
import { Progress } from "./progress.ts";

export { ImportError, newSerial, prepareImportRows, USER_CSV_COLUMNS, validateUserCSV, type ValidatedUser } from "../admin/user-import.ts";

/**
 * The `user import FILE.csv` command. All or nothing: a bad row, an existing username or a store
 * failure leaves the database unchanged. Throws CLIError("FILE line N: reason").
 */
export async function importUsers(ctx: CLIContext, file: string): Promise<void> {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (e) {
    throw new CLIError(`cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? "unreadable"}`);
  }
  const progress = new Progress({ enabled: ctx.stderrIsTTY, write: ctx.err });
  let phaseShown = "";
  let done;
  try {
    done = await importUsersOperation(await adminContext(ctx), text, {
      onProgress: (phase, d, t) => {
        if (phase !== phaseShown) progress.clear();
        phaseShown = phase;
        progress.update(phase, d, t);
      },
    });
  } catch (e) {
    progress.clear();
    if (e instanceof AdminError) {
      const line = cliError(e);
      throw new CLIError(`${file}${e.message.startsWith("line ") ? " " : ": "}${line.message}`, line.exitCode);
    }
    throw e;
  }
  progress.clear();
  for (const warning of done.warnings) ctx.err(`portcullis: warning: ${warning}\n`);
  ctx.out(`imported ${done.imported} users (${done.withToken} with a TOTP token, ${done.hashed} passwords hashed)\n`);
}
