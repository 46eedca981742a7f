// The compiled binary: admin changes made with the CLI become audit lines in the running server's log, once.

import { afterAll, expect, test } from "bun:test";
import { Appliance } from "./helpers/appliance.ts";

const app = new Appliance();
afterAll(async () => {
  await app[Symbol.asyncDispose]();
});

const PASSWORD = "Correct-Horse-Battery-9";
const SECRET = "a-long-shared-secret-for-the-audit-test";
const admin = (l: { event?: string }) => typeof l.event === "string" && l.event.startsWith("admin.");

test("CLI changes made while serve runs, and while none ran, are audit lines by cli:$SUDO_USER, each once", async () => {
  // Written while no server runs: emitted when the next one starts.
  await app.cli(["user", "add", "early"], { env: { SUDO_USER: "carol" } });

  const server = await app.serve();
  expect(await server.waitForLog((l) => l.event === "admin.user_added" && l.user === "early")).toMatchObject({ level: "info", by: "cli:carol" });

  const from = server.logs.length;
  await app.cli(["user", "add", "bob", "--password-stdin"], { stdin: PASSWORD, env: { SUDO_USER: "alice" } });
  await app.cli(["client", "add", "fw", "--address", "192.0.2.7", "--secret-stdin"], { stdin: SECRET, env: { SUDO_USER: "alice" } });
  const failed = await app.run(["user", "remove", "nobody"], { env: { SUDO_USER: "alice" } });
  expect(failed.code).toBe(1);
  await app.cli(["user", "remove", "early"], { env: { SUDO_USER: "alice" } });

  // The last change's line arrives within the bounded wait; the others came before it, in order.
  await server.waitForLog((l) => l.event === "admin.user_removed" && l.user === "early", { from, timeoutMs: 15_000 });
  const lines = server.logs.slice(from).filter(admin);
  expect(lines.map(({ ts: _ts, ...rest }) => rest)).toEqual([
    { level: "info", event: "admin.user_added", user: "bob", by: "cli:alice" },
    { level: "info", event: "admin.client_added", client: "fw", address: "192.0.2.7/32", by: "cli:alice" },
    { level: "info", event: "admin.user_removed", user: "early", by: "cli:alice" },
  ]);
  const all = JSON.stringify(server.logs);
  expect(all).not.toContain(PASSWORD);
  expect(all).not.toContain(SECRET);
  await server.stop();

  // A restart emits none of them again.
  const again = await app.serve();
  await again.waitForLog((l) => l.event === "http.listening" && l.listener === "admin");
  expect(again.logs.filter(admin)).toEqual([]);
}, 90_000);
