// serve's last resort (cli/uncaught.ts), in a child process so that its real stdout, stderr and exit
// status are seen: an error nothing caught is one JSON line and exit 70, never a stack trace.

import { expect, test } from "bun:test";
import { join } from "node:path";

test.each([
  ["an uncaught exception", "exception", "uncaughtException", "TypeError"],
  ["an unhandled rejection", "rejection", "unhandledRejection", "RangeError"],
])("%s: one JSON line on stdout (the class name, never the message), nothing on stderr, exit 70", async (_name, mode, origin, error) => {
  const child = Bun.spawn([process.execPath, join(import.meta.dir, "uncaught-child.ts"), mode], { stdout: "pipe", stderr: "pipe" });
  const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
  const [stdout, stderr, code] = await Promise.all([new Response(child.stdout).text(), new Response(child.stderr).text(), child.exited]);
  clearTimeout(timer);
  expect({ code, stderr }).toEqual({ code: 70, stderr: "" });
  const lines = stdout.trimEnd().split("\n");
  expect(lines.map((l) => JSON.parse(l))).toEqual([{ ts: expect.any(String), level: "error", event: "process.uncaught_error", origin, error }]);
});
