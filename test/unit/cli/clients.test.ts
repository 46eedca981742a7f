// `client add` and `client list` through `bun src/main.ts`: a network exactly the same as an existing
// client's is refused with one line naming that client; overlapping networks are allowed, and the
// list says which client wins where.
import { afterAll, expect, test } from "bun:test";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const MAIN = join(import.meta.dirname, "../../../src/main.ts");
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
  expect(rows[0]).toMatch(/ DIRECTORIES +APPROVAL +SMS-CODE +OVERLAPS$/);
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

test("phone settings: client add takes them, client set changes them, client list shows them; bad values and combinations get one line", () => {
  const d = tempDir();
  expect(cli(d, ["client", "add", "vpn", "--address", "192.0.2.1", "--secret", SECRET, "--approval-hold", "60", "--sms-code-length", "8", "--sms-code-alphabet", "alphanumeric"]).code).toBe(0);
  expect(add(d, "fw", "192.0.2.2").code).toBe(0);
  const listed = () => Object.fromEntries((JSON.parse(cli(d, ["client", "list", "--json"]).stdout) as Array<Record<string, unknown>>).map((c) => [c.name, [c.approvalHoldS, c.approvalMode, c.approvalNumberMatch, c.smsCodeLength, c.smsCodeAlphabet]]));
  expect(listed()).toEqual({ fw: [25, "hold", false, null, null], vpn: [60, "hold", false, 8, "alphanumeric"] });

  const set = cli(d, ["client", "set", "fw", "--approval-mode", "challenge", "--approval-number-match", "true", "--approval-hold", "90"]);
  expect(set).toEqual({ code: 0, stdout: "client fw: approval challenge 90s, number matching; SMS code default\n", stderr: "" });
  expect(cli(d, ["client", "set", "vpn", "--sms-code-length", "default"]).code).toBe(0);
  expect(listed()).toEqual({ fw: [90, "challenge", true, null, null], vpn: [60, "hold", false, null, "alphanumeric"] });
  const table = cli(d, ["client", "list"]).stdout;
  expect(table).toContain("challenge 90s, number matching");
  expect(table).toContain("alphanumeric default");

  const refused: Array<[string[], string]> = [
    [["client", "set", "vpn", "--approval-hold", "121"], "portcullis: --approval-hold must be between 5 and 120\n"],
    [["client", "set", "vpn", "--approval-hold", "4"], "portcullis: --approval-hold must be between 5 and 120\n"],
    [["client", "set", "vpn", "--approval-number-match", "true"], "portcullis: number matching needs challenge mode: a held request shows the user no number to match\n"],
    [["client", "set", "fw", "--approval-mode", "hold"], "portcullis: number matching needs challenge mode: a held request shows the user no number to match\n"],
    [["client", "set", "vpn", "--sms-code-length", "13"], "portcullis: --sms-code-length must be between 4 and 12\n"],
    [["client", "set", "vpn", "--sms-code-alphabet", "hex"], "portcullis: --sms-code-alphabet must be numeric, alphabetic, alphanumeric or default\n"],
    [["client", "set", "vpn", "--approval-mode", "wait"], "portcullis: --approval-mode must be hold or challenge\n"],
    [["client", "set", "nobody", "--approval-hold", "30"], "portcullis: no client named nobody\n"],
    [["client", "add", "cc", "--address", "192.0.2.3", "--secret", SECRET, "--otp-mode", "concat", "--approval-mode", "challenge"], "portcullis: challenge mode needs a client that can do challenges; --otp-mode concat cannot\n"],
  ];
  for (const [args, stderr] of refused) {
    const r = cli(d, args);
    expect({ failed: r.code !== 0, stdout: r.stdout, stderr: r.stderr }).toEqual({ failed: true, stdout: "", stderr });
  }
  expect(cli(d, ["client", "set", "vpn"]).stderr).toStartWith("portcullis: client set needs at least one option; usage: portcullis client set NAME ");
  expect(listed()).toEqual({ fw: [90, "challenge", true, null, null], vpn: [60, "hold", false, null, "alphanumeric"] });
}, 60_000);
