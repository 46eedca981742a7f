// serve's last resort (cli/uncaught.ts), in a child process so that its real stdout, stderr and exit
// status are seen: an error nothing caught is one JSON line and a count, never a stack trace.

import { expect, test } from "bun:test";
import { join } from "node:path";

async function run(mode: string) {
  const child = Bun.spawn([process.execPath, join(import.meta.dirname, "uncaught-child.ts"), mode], { stdout: "pipe", stderr: "pipe" });
  const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
  const [stdout, stderr, code] = await Promise.all([new Response(child.stdout).text(), new Response(child.stderr).text(), child.exited]);
  clearTimeout(timer);
  return { code, stderr, lines: stdout.trimEnd().split("\n").map((l) => JSON.parse(l) as Record<string, unknown>) };
}

test("an uncaught exception: one JSON line (the class name, never the message), nothing on stderr, exit 70", async () => {
  expect(await run("exception")).toEqual({
    code: 70,
    stderr: "",
    lines: [{ ts: expect.any(String), level: "error", event: "process.uncaught_error", origin: "uncaughtException", error: "TypeError" }],
  });
});

test("unhandled rejections: each counted, one JSON line per error class and interval, nothing on stderr, the process keeps running", async () => {
  expect(await run("rejections")).toEqual({
    code: 0,
    stderr: "",
    lines: [
      { ts: expect.any(String), level: "error", event: "process.uncaught_error", origin: "unhandledRejection", error: "RangeError" },
      { ts: expect.any(String), level: "info", event: "test.counted", counted: ["unhandledRejection", "unhandledRejection", "unhandledRejection"] },
    ],
  });
});
