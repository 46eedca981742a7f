// The last resort of `serve`: an error that nothing caught becomes one JSON line (and a count),
// never Bun's raw stack trace.

import { RateLimitedLog, flushLog, log } from "../audit/log.ts";

/** EX_SOFTWARE (sysexits.h): the exit status after an exception that nothing caught. */
export const UNCAUGHT_EXIT_CODE = 70;

export type UncaughtOrigin = "uncaughtException" | "unhandledRejection";

export interface UncaughtOptions {
  /** Counts each error (serve: portcullis_uncaught_errors_total{origin}). */
  count?: (origin: UncaughtOrigin) => void;
  /** How often one error class may log an unhandled rejection (default 10 s; later ones are counted in `suppressed`). */
  rejectionLogIntervalMs?: number;
  exit?: (code: number) => void;
}

/**
 * Installs process handlers for errors that nothing caught. Each writes a `process.uncaught_error`
 * line with the origin and the error's class name (never its message, which might quote request
 * data) and is counted.
 * - An uncaught exception ends the process with {@link UNCAUGHT_EXIT_CODE}, as Bun would (after a
 *   stack trace): the code that threw stopped half-way, so the service manager restarts a process
 *   whose state is unknown (appliance/portcullis.service: Restart=on-failure).
 * - An unhandled rejection is a promise nobody waited for: the process keeps serving, as Bun does
 *   for one that surfaces from a socket callback; its lines are rate-limited per error class.
 * The RADIUS packet path never gets here: it catches its own errors, counts them as drops and keeps
 * serving (radius/server/server.ts). Returns a function that removes the handlers.
 */
export function reportUncaught({ count, rejectionLogIntervalMs = 10_000, exit = (code) => process.exit(code) }: UncaughtOptions = {}): () => void {
  const rejections = new RateLimitedLog(rejectionLogIntervalMs, 100);
  const name = (err: unknown) => (err instanceof Error ? err.name : typeof err);
  const onException = (err: unknown) => {
    count?.("uncaughtException");
    log("error", "process.uncaught_error", { origin: "uncaughtException", error: name(err) });
    flushLog();
    exit(UNCAUGHT_EXIT_CODE);
  };
  const onRejection = (err: unknown) => {
    count?.("unhandledRejection");
    rejections.log("error", name(err), "process.uncaught_error", { origin: "unhandledRejection", error: name(err) });
  };
  process.on("uncaughtException", onException);
  process.on("unhandledRejection", onRejection);
  return () => {
    process.off("uncaughtException", onException);
    process.off("unhandledRejection", onRejection);
  };
}
