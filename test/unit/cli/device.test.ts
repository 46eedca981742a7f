// `portcullis device enrol|list|remove` from source: the link, its audit record (never the code),
// usage errors, and removal of the last device.
import { afterAll, expect, test } from "bun:test";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Database } from "bun:sqlite";
import { hashEnrolmentCode } from "../../../src/devices/keys.ts";
import { openIn } from "../store/helpers.ts";

const MAIN = join(import.meta.dirname, "../../../src/main.ts");
const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function cli(dataDir: string, args: string[]): { code: number; stdout: string; stderr: string } {
  const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("PORTCULLIS_") && k !== "SUDO_USER"));
  const r = spawnSync(process.execPath, [MAIN, "--data-dir", dataDir, ...args], { env: { ...clean, SUDO_USER: "alice", PORTCULLIS_CONFIG: "" }, encoding: "utf8", cwd: dataDir });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

test("device enrol prints the link from public_url; the record names the user, never the code; list and remove; the last device is flagged", async () => {
  const d = mkdtempSync(join(tmpdir(), "portcullis-clidevice-"));
  dirs.push(d);
  writeFileSync(join(d, "portcullis.toml"), "");
  expect(cli(d, ["user", "add", "bob"]).code).toBe(0);
  const noUrl = cli(d, ["device", "enrol", "bob"]);
  expect(noUrl.code).toBe(1);
  expect(noUrl.stderr).toBe("portcullis: http.public_url is not set; the enrolment link is built only from it\n");

  writeFileSync(join(d, "portcullis.toml"), `[http]\npublic_url = "https://mfa.example.com/"\n`);
  const made = cli(d, ["device", "enrol", "Bob"]);
  expect(made.code).toBe(0);
  const m = /^https:\/\/mfa\.example\.com\/app\/#enrol=([A-Za-z0-9_-]{22})$/m.exec(made.stdout);
  expect(m).not.toBeNull();
  const code = m![1]!;
  expect(cli(d, ["device", "enrol", "nobody"])).toMatchObject({ code: 1, stderr: "portcullis: no user named nobody\n" });
  expect(cli(d, ["device", "remove", "x"]).code).toBe(2);
  expect(cli(d, ["device", "remove", "A".repeat(22)])).toMatchObject({ code: 1, stderr: `portcullis: no device with ID ${"A".repeat(22)}\n` });
  expect(cli(d, ["device", "list"]).stdout).toBe("no devices\n");

  // The phone's side of enrolment, through the store.
  const store = await openIn(d);
  const device = await store.devices.enrol(hashEnrolmentCode(code), Date.now(), { id: "B".repeat(22), name: "Bob's phone", publicKey: { kty: "EC", crv: "P-256", x: "x", y: "y" }, push: null });
  await store.close();
  expect(device?.id).toBe("B".repeat(22));
  const listed = JSON.parse(cli(d, ["device", "list", "bob", "--json"]).stdout);
  expect(listed).toEqual([expect.objectContaining({ id: "B".repeat(22), user: "bob", name: "Bob's phone", push: null, removedAt: null })]);

  const removed = cli(d, ["device", "remove", "B".repeat(22)]);
  expect(removed.code).toBe(0);
  expect(removed.stdout).toBe(`removed device ${"B".repeat(22)} of bob\n`);
  expect(removed.stderr).toContain("bob has no approver device left");
  expect(cli(d, ["device", "list"]).stdout).toBe("no devices\n");
  expect(cli(d, ["device", "list", "--all"]).stdout).toContain("Bob's phone");

  const db = new Database(join(d, "portcullis.db"), { readonly: true });
  const rows = db.prepare("SELECT actor, type, fields FROM admin_events WHERE type LIKE 'admin.device%' ORDER BY id").all() as Array<{ actor: string; type: string; fields: string }>;
  db.close();
  expect(rows.map((r) => [r.actor, r.type, JSON.parse(r.fields)])).toEqual([
    ["cli:alice", "admin.device_enrolment_created", { user: "bob", expires_at: expect.stringMatching(/^\d{4}-\d\d-\d\dT/) }],
    ["cli:alice", "admin.device_removed", { device: "B".repeat(22), user: "bob", last_device: true }],
  ]);
  const raw = [join(d, "portcullis.db"), join(d, "portcullis.db-wal")].map((f) => {
    try {
      return readFileSync(f).toString("latin1");
    } catch {
      return "";
    }
  });
  expect(raw.join("")).not.toContain(code);
}, 60_000);
