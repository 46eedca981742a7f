// The last resort of `serve`: an exception or rejection that nothing caught becomes one JSON line
// and exit status 70, instead of Bun's raw stack trace.

import { flushLog, log } from "../audit/log.ts";

/** EX_SOFTWARE (sysexits.h): the exit status after an error that nothing caught. */
export const UNCAUGHT_EXIT_CODE = 70;

/**
 * Installs process handlers for an uncaught exception or unhandled rejection: each writes one
 * `process.uncaught_error` line (the origin and the error's class name, never its message, which
 * might quote request data) and exits with {@link UNCAUGHT_EXIT_CODE}, for the service manager to
 * restart a process whose state is now unknown (appliance/portcullis.service: Restart=on-failure).
 * Bun would exit too, after printing a stack trace. The RADIUS packet path never gets here: it
 * catches its own errors, counts them and keeps serving (radius/server/server.ts).
 * Returns a function that removes the handlers.
 */
export function exitOnUncaught(exit: (code: number) => void = (code) => process.exit(code)): () => void {
  const handler = (origin: "uncaughtException" | "unhandledRejection") => (err: unknown) => {
    log("error", "process.uncaught_error", { origin, error: err instanceof Error ? err.name : typeof err });
    flushLog();
    exit(UNCAUGHT_EXIT_CODE);
  };
  const onException = handler("uncaughtException");
  const onRejection = handler("unhandledRejection");
  process.on("uncaughtException", onException);
  process.on("unhandledRejection", onRejection);
  return () => {
    process.off("uncaughtException", onException);
    process.off("unhandledRejection", onRejection);
  };
}
