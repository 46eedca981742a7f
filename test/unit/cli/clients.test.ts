// `client add` and `client list` through `bun src/main.ts`: a network exactly the same as an existing
// client's is refused with one line naming that client; overlapping networks are allowed, and the
// list says which client wins where.
import { afterAll, expect, test } from "bun:test";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const MAIN = join(import.meta.dir, "../../../src/main.ts");
const SECRET = "a-long-random-shared-secret";
const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), "portcullis-cli-clients-"));
  dirs.push(d);
  return d;
}

function cli(dataDir: string, args: string[]): { code: number; stdout: string; stderr: string } {
  const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("PORTCULLIS_")));
  const r = spawnSync(process.execPath, [MAIN, "--data-dir", dataDir, ...args], { env: { ...clean, PORTCULLIS_CONFIG: "" }, encoding: "utf8", cwd: dataDir });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

const add = (d: string, name: string, address: string, secret = SECRET) => cli(d, ["client", "add", name, "--address", address, "--secret", secret]);

test.each([
  ["host bits set", "10.0.0.0/24", "10.0.0.1/24", "10.0.0.0/24"],
  ["IPv4-mapped IPv6", "192.0.2.7", "::ffff:192.0.2.7", "192.0.2.7/32"],
  ["IPv6 compressed and not", "2001:db8::1", "2001:0db8:0:0:0:0:0:1/128", "2001:db8::1/128"],
])("client add refuses exactly the same network (%s): one line naming the existing client, never the secret, nothing stored", (_what, first, second, network) => {
  const d = tempDir();
  expect(add(d, "lan", first).code).toBe(0);
  const r = add(d, "dup", second, "the-second-secret-value");
  expect(r.code).toBe(1);
  expect(r.stdout).toBe("");
  expect(r.stderr).toBe(`portcullis: client lan already has the network ${network}; a second client for it could never be matched (an overlapping network is fine: the most specific one wins)\n`);
  expect(JSON.parse(cli(d, ["client", "list", "--json"]).stdout).map((c: { name: string }) => c.name)).toEqual(["lan"]);
}, 30_000); // each step is a process

test("overlapping networks are added; client list shows who shadows whom, --json the whole lists; the short-secret warning stays", () => {
  const d = tempDir();
  expect(add(d, "lan", "10.0.0.0/8").code).toBe(0);
  expect(add(d, "vpn", "10.1.2.3").code).toBe(0);
  const short = add(d, "low", "192.0.2.0/25", "short");
  expect(short.code).toBe(0);
  expect(short.stderr).toContain("warning: the shared secret is shorter than 16 characters");
  expect(add(d, "high", "192.0.2.128/25").code).toBe(0);
  expect(add(d, "site", "192.0.2.0/24").code).toBe(0);

  const rows = cli(d, ["client", "list"]).stdout.trimEnd().split("\n");
  expect(rows[0]).toMatch(/ DIRECTORIES +OVERLAPS$/);
  const overlaps = Object.fromEntries(rows.slice(1).map((row) => [row.split(/\s+/)[0], row.slice(rows[0]!.indexOf("OVERLAPS"))]));
  expect(overlaps).toEqual({
    high: "shadows site",
    lan: "shadowed by vpn",
    low: "shadows site",
    site: "never matched: covered by high, low",
    vpn: "shadows lan",
  });

  const json = JSON.parse(cli(d, ["client", "list", "--json"]).stdout) as { name: string; network: string; overlaps: unknown }[];
  expect(json.find((c) => c.name === "site")).toMatchObject({ network: "192.0.2.0/24", overlaps: { shadows: [], shadowedBy: ["high", "low"], duplicateOf: null, unreachable: true } });
  expect(JSON.stringify(json)).not.toContain(SECRET);
}, 30_000);
