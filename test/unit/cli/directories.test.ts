// `client add --directories` and directory-linked ("hybrid") users through `bun src/main.ts`, with [[ldap]] profiles in the config.
import { afterAll, describe, expect, test } from "bun:test";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setLogSink } from "../../../src/audit/log.ts";
import { parseDirectories } from "../../../src/cli/client.ts";
import { CLIError } from "../../../src/cli/context.ts";
import { openStore } from "../../../src/store/open.ts";

setLogSink(() => {});

const MAIN = join(import.meta.dirname, "../../../src/main.ts");
const BIND_SECRET = "bind-Secret-never-printed";
const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

const PROFILE = (name: string) => `[[ldap]]
name = "${name}"
urls = ["ldaps://127.0.0.1:636"]
bind_dn = "cn=svc,dc=example"
bind_password = "${BIND_SECRET}"
base_dn = "dc=example"
user_filter = "(uid={username})"
`;

/** A data directory whose DATA_DIR/portcullis.toml holds the given profiles. */
function tempDir(profiles: string[] = ["corp", "lab"]): string {
  const d = mkdtempSync(join(tmpdir(), "portcullis-cli-dir-"));
  writeFileSync(join(d, "portcullis.toml"), profiles.map(PROFILE).join("\n"));
  dirs.push(d);
  return d;
}

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function cli(dataDir: string, args: string[], { input = "" }: { input?: string } = {}): Run {
  const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("PORTCULLIS_")));
  const r = spawnSync(process.execPath, [MAIN, "--data-dir", dataDir, ...args], { input, env: { ...clean, PORTCULLIS_CONFIG: "" }, encoding: "utf8", cwd: dataDir });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

function expectOneLineError(r: Run, code: number, text: string): void {
  expect(r.code).toBe(code);
  const lines = r.stderr.trimEnd().split("\n");
  expect(lines).toHaveLength(1);
  expect(lines[0]).toStartWith("portcullis: ");
  expect(lines[0]).toContain(text);
  expect(r.stderr + r.stdout).not.toContain(BIND_SECRET);
}

async function withStore<T>(dataDir: string, fn: (store: Awaited<ReturnType<typeof openStore>>) => Promise<T>): Promise<T> {
  const store = await openStore({ driver: "sqlite", path: join(dataDir, "portcullis.db"), dataDir });
  try {
    return await fn(store);
  } finally {
    await store.close();
  }
}

describe("parseDirectories", () => {
  test.each([
    ["corp,local", ["corp", "local"]],
    [" lab , corp ", ["lab", "corp"]],
    ["local", ["local"]],
    ["corp", ["corp"]],
  ])("%p → %p", (text, expected) => {
    expect(parseDirectories(text, ["corp", "lab"])).toEqual(expected);
  });

  test.each([
    ["", "comma-separated"],
    ["corp,,local", "comma-separated"],
    ["crop", "crop is not a configured [[ldap]] profile nor local (known: corp, lab, local)"],
    ["Corp", "Corp is not a configured"],
    ["corp,corp", "names corp twice"],
  ])("%p is refused", (text, message) => {
    let err: unknown;
    try {
      parseDirectories(text, ["corp", "lab"]);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(CLIError);
    expect((err as CLIError).exitCode).toBe(2);
    expect((err as CLIError).message).toContain(message);
  });
});

describe("client add --directories", () => {
  test("stored in order, shown by client list; absent means every profile then local", async () => {
    const d = tempDir();
    let r = cli(d, ["client", "add", "vpn", "--address", "192.0.2.1", "--secret", "0123456789abcdef", "--directories", "lab,local"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe("added client vpn (192.0.2.1/32; users from lab, then local)\n");
    r = cli(d, ["client", "add", "fw", "--address", "192.0.2.2", "--secret", "0123456789abcdef"]);
    expect(r.stdout).toBe("added client fw (192.0.2.2/32)\n");
    expect(await withStore(d, async (s) => (await s.clients.list()).map((c) => [c.name, c.directories]))).toEqual([
      ["fw", null],
      ["vpn", ["lab", "local"]],
    ]);
    const list = cli(d, ["client", "list"]).stdout.split("\n");
    expect(list[0]).toContain("DIRECTORIES");
    expect(list[1]).toMatch(/^fw .*\(all, then local\) +hold 25s +default +-$/);
    expect(list[2]).toMatch(/^vpn .* lab,local +hold 25s +default +-$/);
    const json = JSON.parse(cli(d, ["client", "list", "--json"]).stdout);
    expect(json.map((c: { directories: unknown }) => c.directories)).toEqual([null, ["lab", "local"]]);
  });

  test("an unknown profile is refused before anything is stored", async () => {
    const d = tempDir(["corp"]);
    expectOneLineError(cli(d, ["client", "add", "vpn", "--address", "192.0.2.1", "--secret", "0123456789abcdef", "--directories", "corp,lab"]), 2, "lab is not a configured [[ldap]] profile");
    expect(await withStore(d, (s) => s.clients.list())).toEqual([]);
  });

  test("with no [[ldap]] profile only local is accepted", () => {
    const d = tempDir([]);
    expect(cli(d, ["client", "add", "vpn", "--address", "192.0.2.1", "--secret", "0123456789abcdef", "--directories", "local"]).code).toBe(0);
    expectOneLineError(cli(d, ["client", "add", "fw", "--address", "192.0.2.2", "--secret", "0123456789abcdef", "--directories", "corp"]), 2, "(known: local)");
  });
});

describe("user add --directory (hybrid users)", () => {
  test("a directory-linked record: no password, type from the directory, not linked yet", async () => {
    const d = tempDir();
    const r = cli(d, ["user", "add", "Alice", "--directory", "corp"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toStartWith("added user alice (directory corp; type and phone from the directory)\n");
    const alice = await withStore(d, (s) => s.users.findByName("alice"));
    expect(alice).toMatchObject({ username: "alice", passwordHash: null, type: null, phone: null, directory: "corp", externalId: null, directoryPhone: null });
  });

  test("--type and --phone are local overrides, shown as such", async () => {
    const d = tempDir();
    expect(cli(d, ["user", "add", "bob", "--directory", "lab", "--type", "4", "--phone", "+46701234567"]).stdout).toStartWith(
      "added user bob (directory lab; local override of type concatenated and phone)\n",
    );
    await withStore(d, async (s) => {
      const bob = (await s.users.findByName("bob"))!;
      await s.users.update(bob.id, { externalId: "5f0c-uuid", directoryPhone: "070-765 43 21" });
    });
    const view = JSON.parse(cli(d, ["user", "show", "bob", "--json"]).stdout);
    expect(view).toMatchObject({ username: "bob", directory: "lab", externalId: "5f0c-uuid", type: "concatenated", overrides: ["type", "phone"], phone: "+46701234567", directoryPhone: "070-765 43 21" });
    const text = cli(d, ["user", "show", "bob"]).stdout;
    expect(text).toContain("directory: lab\n");
    expect(text).toContain("linked ID: 5f0c-uuid\n");
    expect(text).toContain("type:      concatenated (4), local override\n");
    expect(text).toContain("phone:     +46701234567, local override\n");
    expect(text).toContain("password:  checked by the directory\n");
  });

  test("show and list of an unlinked record without overrides", () => {
    const d = tempDir();
    cli(d, ["user", "add", "carol", "--directory", "corp"]);
    cli(d, ["user", "add", "dave", "--type", "totp"]);
    const text = cli(d, ["user", "show", "carol"]).stdout;
    expect(text).toContain("linked ID: not linked yet (linked at the first login)\n");
    expect(text).toContain("type:      from the directory\n");
    expect(text).toContain("phone:     from the directory\n");
    expect(JSON.parse(cli(d, ["user", "show", "carol", "--json"]).stdout)).toMatchObject({ type: null, typeNumber: null, overrides: [], externalId: null });
    const list = cli(d, ["user", "list"]).stdout.split("\n");
    expect(list[0]).toMatch(/^USERNAME\s+DIRECTORY\s+TYPE/);
    expect(list[1]).toMatch(/^carol\s+corp \(not linked\)\s+\(directory\)\s+\(directory\)\s+-\s+directory\s+0\s+enabled$/);
    expect(list[2]).toMatch(/^dave\s+local\s+totp\s+-\s+-\s+none\s+0\s+enabled$/);
    const json = JSON.parse(cli(d, ["user", "list", "--json"]).stdout);
    expect(json.map((u: { username: string; directory: unknown; externalId: unknown }) => [u.username, u.directory, u.externalId])).toEqual([
      ["carol", "corp", null],
      ["dave", null, null],
    ]);
  });

  test.each([
    [["--directory", "nope"], "--directory must name a configured [[ldap]] profile (corp, lab)"],
    [["--directory", "local"], "--directory must name a configured [[ldap]] profile"],
    [["--directory", "corp", "--password-stdin"], "--password-stdin cannot be combined with --directory"],
    [["--directory", "corp", "--type", "root"], "--type must be one of"],
  ])("refused: %p", async (args, message) => {
    const d = tempDir();
    expectOneLineError(cli(d, ["user", "add", "eve", ...args], { input: "hunter2\n" }), 2, message);
    expect(await withStore(d, (s) => s.users.list())).toEqual([]);
  });

  test("a local user and tokens still work as before beside hybrid users", () => {
    const d = tempDir();
    expect(cli(d, ["user", "add", "frank", "--directory", "corp"]).code).toBe(0);
    const r = cli(d, ["token", "add", "frank", "--totp"]);
    expect(r.code).toBe(0);
    expect(JSON.parse(cli(d, ["user", "show", "frank", "--json"]).stdout).tokens).toHaveLength(1);
  });
});
