// The CLI and the admin API over the same operations: where they used to differ, they now answer
// alike (the algorithm names a token takes, the weak-secret warning of a user import), and the
// audit events they record carry the same names and fields, with the actor as `by`.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { AuditEvent } from "../../../src/audit/events.ts";
import { adminEventOf } from "../../../src/cli/admin-event-tail.ts";
import { openStore } from "../../../src/store/open.ts";
import { adminEventsOf } from "../../../src/store/types.ts";
import { cleanup } from "../store/helpers.ts";
import { adminFixture } from "../http/admin/helpers.ts";

const MAIN = join(import.meta.dir, "../../../src/main.ts");
const HEADER = "username,password,type,phone,email,totp_secret,totp_algorithm,totp_digits,totp_period";
const CSV = `${HEADER}\nweak1,,totp,,,JBSWY3DPEHPK3PXP,,,\nstrong1,,totp,,,JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP,,,\n`;
const WARNING = "1 TOTP secrets are shorter than 128 bits (RFC 4226 §4 R6); re-enrol those users with new tokens when you can";

let dataDir: string;
const events: AuditEvent[] = [];
let f: Awaited<ReturnType<typeof adminFixture>>;

beforeAll(async () => {
  dataDir = mkdtempSync(join(tmpdir(), "portcullis-adapters-"));
  writeFileSync(join(dataDir, "portcullis.toml"), "");
  f = await adminFixture({ audit: (e) => void events.push(e) });
});
afterAll(() => {
  rmSync(dataDir, { recursive: true, force: true });
  cleanup(f.dir);
});

function cli(args: string[]): { code: number; stdout: string; stderr: string } {
  const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("PORTCULLIS_")));
  const r = spawnSync(process.execPath, [MAIN, "--data-dir", dataDir, ...args], { env: { ...clean, PORTCULLIS_CONFIG: "", SUDO_USER: "ops" }, encoding: "utf8", cwd: dataDir });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

describe("unified behaviours", () => {
  test("token algorithm: both take exactly SHA1, SHA256, SHA512", async () => {
    expect(cli(["user", "add", "carl"]).code).toBe(0);
    for (const algorithm of ["sha256", "SHA-256"]) {
      expect(cli(["token", "add", "carl", "--totp", "--algorithm", algorithm])).toMatchObject({ code: 2, stderr: "portcullis: --algorithm must be SHA1, SHA256 or SHA512\n" });
    }
    expect(cli(["token", "add", "carl", "--totp", "--algorithm", "SHA512"]).code).toBe(0);
    expect((await f.call("POST", "/users", { key: f.keys.admin, body: { username: "carl" } })).status).toBe(201);
    expect((await f.call("POST", "/tokens", { key: f.keys.admin, body: { user: "carl", algorithm: "sha256" } })).status).toBe(400);
    expect((await f.call("POST", "/tokens", { key: f.keys.admin, body: { user: "carl", algorithm: "SHA512" } })).status).toBe(201);
  });

  test("user import: both warn about TOTP secrets under 128 bits", async () => {
    const file = join(dataDir, "users.csv");
    writeFileSync(file, CSV);
    const r = cli(["user", "import", file]);
    expect(r).toMatchObject({ code: 0, stderr: `portcullis: warning: ${WARNING}\n` });
    const api = await f.call("POST", "/users/import", { key: f.keys.admin, body: { csv: CSV } });
    expect(api.status).toBe(201);
    expect(await api.json()).toEqual({ imported: 2, withToken: 2, warnings: [WARNING] });
  });

  test("client list --json and GET /clients show a client the same way (createdAt as ISO 8601 in both)", async () => {
    expect(cli(["client", "add", "fw", "--address", "192.0.2.1", "--secret", "0123456789abcdef"]).code).toBe(0);
    expect((await f.call("POST", "/clients", { key: f.keys.admin, body: { name: "fw", address: "192.0.2.1", secret: "0123456789abcdef" } })).status).toBe(201);
    const [fromCli] = JSON.parse(cli(["client", "list", "--json"]).stdout);
    const [fromApi] = (await (await f.call("GET", "/clients", { key: f.keys.operator })).json()) as unknown[];
    expect(Object.keys(fromCli).sort()).toEqual(Object.keys(fromApi as object).sort());
    expect(fromCli.createdAt).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/);
    expect({ ...fromCli, createdAt: "", id: 0 }).toEqual({ ...(fromApi as object), createdAt: "", id: 0 });
  });

  test("the same change is the same event from either adapter; only `by` tells them apart", async () => {
    expect(cli(["user", "unlock", "strong1"]).code).toBe(0);
    const store = await openStore({ driver: "sqlite", path: join(dataDir, "portcullis.db"), dataDir });
    let fromCli;
    try {
      fromCli = (await adminEventsOf(store).claimPending(100, Date.now())).map(adminEventOf).filter((e) => e?.type === "admin.user_unlocked");
    } finally {
      await store.close();
    }
    const n = events.length;
    expect((await f.call("POST", "/users/strong1/unlock", { key: f.keys.admin })).status).toBe(200);
    expect(fromCli).toEqual([{ type: "admin.user_unlocked", user: "strong1", cleared: false, by: "cli:ops" }]);
    expect(events.slice(n)).toEqual([{ type: "admin.user_unlocked", user: "strong1", cleared: false, by: "k-admin" }]);
  });
});
