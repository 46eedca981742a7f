// End to end: `bun src/main.ts …` with a temporary --data-dir; exit codes, one-line errors, no secrets in output.
import { afterAll, describe, expect, test } from "bun:test";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setLogSink } from "../../../src/audit/log.ts";
import { openStore } from "../../../src/store/open.ts";

setLogSink(() => {});

const MAIN = join(import.meta.dirname, "../../../src/main.ts");
const FIXTURES = join(import.meta.dirname, "../../fixtures/users");
const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), "portcullis-cli-"));
  // An empty DATA_DIR/portcullis.toml is found first, so a host's /etc/portcullis file cannot interfere.
  writeFileSync(join(d, "portcullis.toml"), "");
  dirs.push(d);
  return d;
}

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function cli(dataDir: string, args: string[], { input = "", env = {} }: { input?: string; env?: Record<string, string> } = {}): Run {
  // Strip inherited PORTCULLIS_* so the host's environment cannot change the outcome.
  const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("PORTCULLIS_")));
  const r = spawnSync(process.execPath, [MAIN, "--data-dir", dataDir, ...args], {
    input,
    env: { ...clean, ...env, PORTCULLIS_CONFIG: "" },
    encoding: "utf8",
    cwd: dataDir,
  });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

/** A failure prints exactly one line "portcullis: …" and no stack trace. */
function expectOneLineError(r: Run, code: number, text: string): void {
  expect(r.code).toBe(code);
  const lines = r.stderr.trimEnd().split("\n");
  expect(lines.length).toBe(1);
  expect(lines[0]).toStartWith("portcullis: ");
  expect(lines[0]).toContain(text);
}

async function withStore<T>(dataDir: string, fn: (store: Awaited<ReturnType<typeof openStore>>) => Promise<T>): Promise<T> {
  const store = await openStore({ driver: "sqlite", path: join(dataDir, "portcullis.db"), dataDir });
  try {
    return await fn(store);
  } finally {
    await store.close();
  }
}

describe("global", () => {
  test("--version and --help", () => {
    const d = tempDir();
    expect(cli(d, ["--version"]).stdout).toMatch(/^portcullis \d+\.\d+\.\d+\n$/);
    const help = cli(d, ["--help"]);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain("portcullis client add NAME --address CIDR");
    expect(cli(d, ["user", "--help"]).stdout).toContain("portcullis user import FILE.csv");
  });

  test("unknown command and unknown option", () => {
    const d = tempDir();
    expectOneLineError(cli(d, ["frobnicate"]), 2, "unknown command");
    const r = cli(d, ["client", "add", "fw", "--sekret=hunter2hunter2"]);
    expectOneLineError(r, 2, "unknown option --sekret");
    expect(r.stderr).not.toContain("hunter2");
  });

  test("a config error is one line naming the option, not the value", () => {
    const d = tempDir();
    const r = cli(d, ["client", "list"], { env: { PORTCULLIS_RADIUS_CHALLENGE_TTL_S: "5" } });
    expectOneLineError(r, 2, "config: radius.challenge_ttl_s must be a number between 10 and 600 (from PORTCULLIS_RADIUS_CHALLENGE_TTL_S)");
  });

  test("apikey add with a bad role is one line (the key commands are in test/unit/cli/apikey.test.ts)", () => {
    expectOneLineError(cli(tempDir(), ["apikey", "add", "web", "--role", "god"]), 2, "--role must be one of magiclink, operator, admin, root");
  });
});

describe("client", () => {
  test.each([
    [["--address", "192.0.2.1", "--secret", "0123456789abcdef", "--first-factor", "none", "--allow-password-only", "true"], "--first-factor none cannot be combined with --allow-password-only true"],
    [["--address", "192.0.2.1"], "needs --secret-stdin or --secret"],
    [["--address", "192.0.2.1", "--secret", "0123456789abcdef", "--secret-stdin"], "either --secret or --secret-stdin"],
    [["--address", "192.0.2.0/33", "--secret", "0123456789abcdef"], "--address must be an IPv4 or IPv6 address or CIDR"],
    [["--address", "2001:db8::/129", "--secret", "0123456789abcdef"], "--address must be"],
    [["--address", "fw.example.com", "--secret", "0123456789abcdef"], "--address must be"],
    [["--secret", "0123456789abcdef"], "needs --address"],
    [["--address", "192.0.2.1", "--secret", ""], "must not be empty"],
    [["--address", "192.0.2.1", "--secret", "0123456789abcdef", "--otp-mode", "push"], "--otp-mode must be challenge or concat"],
    [["--address", "192.0.2.1", "--secret", "0123456789abcdef", "--require-message-authenticator", "yes"], "--require-message-authenticator must be true or false"],
  ])("add is refused (case %#)", (args, text) => {
    const d = tempDir();
    const r = cli(d, ["client", "add", "fw", ...args]);
    expectOneLineError(r, 2, text);
    expect(r.stderr).not.toContain("0123456789abcdef");
  });

  test("empty secret on stdin is refused", () => {
    expectOneLineError(cli(tempDir(), ["client", "add", "fw", "--address", "192.0.2.1", "--secret-stdin"], { input: "\n" }), 2, "must not be empty");
  });

  test("add, list without secrets, remove; bare addresses become /32 and /128; stdin loses one newline", async () => {
    const d = tempDir();
    const secret = "correct-horse-battery-staple";
    let r = cli(d, ["client", "add", "fw4", "--address", "192.0.2.10", "--secret-stdin"], { input: `${secret}\n\n` });
    expect(r.code).toBe(0);
    expect(r.stdout).toBe("added client fw4 (192.0.2.10/32)\n");
    r = cli(d, ["client", "add", "fw6", "--address", "2001:db8::10", "--secret", secret, "--otp-mode", "concat", "--first-factor", "none"]);
    expect(r.stdout).toBe("added client fw6 (2001:db8::10/128)\n");
    expect(r.stderr).toBe("");

    const list = cli(d, ["client", "list"]);
    expect(list.stdout).toContain("fw4");
    expect(list.stdout).not.toContain(secret);
    const json = JSON.parse(cli(d, ["client", "list", "--json"]).stdout);
    expect(json.map((c: { name: string }) => c.name)).toEqual(["fw4", "fw6"]);
    expect(JSON.stringify(json)).not.toContain(secret);
    expect(json[1]).toMatchObject({ address: "2001:db8::10/128", otpMode: "concat", firstFactor: "none", requireMessageAuthenticator: true, allowPasswordOnly: false });

    const stored = await withStore(d, (s) => s.clients.findByName("fw4"));
    expect(stored?.secret).toBe(`${secret}\n`);

    expectOneLineError(cli(d, ["client", "add", "fw4", "--address", "192.0.2.11", "--secret", secret]), 1, "already exists");
    expect(cli(d, ["client", "remove", "fw4"]).code).toBe(0);
    expectOneLineError(cli(d, ["client", "remove", "fw4"]), 1, "no client named fw4");
  });

  test("a short secret is accepted with a warning that does not repeat it", () => {
    const r = cli(tempDir(), ["client", "add", "old", "--address", "192.0.2.0/24", "--secret", "xyzzy5461"]);
    expect(r.code).toBe(0);
    expect(r.stderr).toContain("warning: the shared secret is shorter than 16 characters");
    expect(r.stderr).not.toContain("xyzzy5461");
  });
});

describe("user and token", () => {
  test("user add / show / unlock / remove with normalised names", async () => {
    const d = tempDir();
    let r = cli(d, ["user", "add", "Alice@CORP", "--password-stdin", "--phone", "+46 70 123 45 67", "--email", "alice@example.com", "--type", "11"], {
      input: "hunter2\n",
    });
    expect(r.code).toBe(0);
    expect(r.stdout).toStartWith("added user alice (type totp)\n");
    expectOneLineError(cli(d, ["user", "add", "alice"]), 1, "user alice already exists");
    expectOneLineError(cli(d, ["user", "add", "bob", "--phone", "0701234567"]), 2, "--phone must be a valid phone number");
    expectOneLineError(cli(d, ["user", "add", "bob", "--type", "root"]), 2, "--type must be one of");
    expect(cli(d, ["user", "add", "bob", "--phone", "0701234567"], { env: { PORTCULLIS_REGION: "SE" } }).code).toBe(0);

    r = cli(d, ["token", "add", "ALICE", "--totp", "--digits", "8", "--algorithm", "SHA256"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^added token \d+ serial TOTP[0-9A-F]{12} \(totp\) for alice\notpauth:\/\/totp\/Portcullis:alice\?secret=[A-Z2-7]+&issuer=Portcullis&algorithm=SHA256&digits=8\n$/);

    const show = cli(d, ["user", "show", "alice", "--json"]);
    const view = JSON.parse(show.stdout);
    expect(view).toMatchObject({ username: "alice", type: "totp", phone: "+46701234567", password: "set", lockout: { password: { failures: 0 }, code: { failures: 0 } } });
    expect(view.tokens).toEqual([expect.objectContaining({ kind: "totp", state: "active", digits: 8 })]);
    expect(show.stdout).not.toContain("argon2");

    await withStore(d, (s) => s.lockouts.recordFailure("alice", "password", "nas:vpn", Date.now(), { staleBefore: 0, lockedUntil: () => 0 }));
    expect(cli(d, ["user", "unlock", "Alice@other"]).stdout).toBe("unlocked alice\n");
    expect(cli(d, ["user", "unlock", "alice"]).stdout).toBe("alice had no failures recorded\n");

    const id = String(view.tokens[0].id);
    expect(cli(d, ["token", "disable", id]).stdout).toContain("is now disabled");
    expectOneLineError(cli(d, ["token", "resync", id, "123", "456"]), 2, "8-digit codes");
    expectOneLineError(cli(d, ["token", "resync", id, "12345678", "23456789"]), 1, "not consecutive codes");
    expect(cli(d, ["user", "remove", "alice"]).code).toBe(0);
    expect(cli(d, ["token", "list"]).stdout).toMatch(/disabled\s+-\s+8/);
  });

  test("token add --secret checks base32 and length; --counter only for HOTP", () => {
    const d = tempDir();
    cli(d, ["user", "add", "carol"]);
    expectOneLineError(cli(d, ["token", "add", "carol", "--totp", "--secret", "JBSWY3DP"]), 2, "--secret must be base32");
    const short = cli(d, ["token", "add", "carol", "--totp", "--secret", "JBSWY3DPEHPK3PXP"]); // 80 bits: migrated tokens
    expect(short.code).toBe(0);
    expect(short.stderr).toBe("portcullis: warning: the secret is shorter than 128 bits (RFC 4226 §4 R6); prefer a generated one\n");
    expectOneLineError(cli(d, ["token", "add", "carol", "--totp", "--counter", "3"]), 2, "--counter applies to --hotp");
    expectOneLineError(cli(d, ["token", "add", "nobody", "--totp"]), 1, "no user named nobody");
    const r = cli(d, ["token", "add", "carol", "--hotp", "--secret", "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP", "--counter", "7"]);
    expect(r.stdout).toContain("otpauth://hotp/Portcullis:carol?secret=JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP&issuer=Portcullis&counter=7");
  });

  test("user import: a bad row names the file and line, and nothing is imported", () => {
    const d = tempDir();
    const bad = join(FIXTURES, "bad-digits.csv");
    expectOneLineError(cli(d, ["user", "import", bad]), 2, `${bad} line 3: totp_digits must be 6 or 8`);
    expect(cli(d, ["user", "list"]).stdout).toBe("no users\n");

    const r = cli(d, ["user", "import", join(FIXTURES, "valid.csv")]);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe("imported 4 users (2 with a TOTP token, 1 passwords hashed)\n");
    expect(r.stderr).toBe(""); // no progress bar when stderr is not a terminal
    const users = JSON.parse(cli(d, ["user", "list", "--json"]).stdout);
    expect(users.map((u: { username: string }) => u.username).sort()).toEqual(["alice", "bob", "carol", "dave"]);

    // Importing again: the first clash is named and nothing changes.
    expectOneLineError(cli(d, ["user", "import", join(FIXTURES, "valid.csv")]), 1, "line 2: user already exists; nothing was imported");
  });

  test("token import: CSV owners are assigned when the user exists; PSKC with a pre-shared key; all or nothing", () => {
    const d = tempDir();
    cli(d, ["user", "add", "alice"]);
    const csv = join(d, "tokens.csv");
    writeFileSync(
      csv,
      [
        "serial,secret,kind,algorithm,digits,period,counter,user",
        "TOTP-0001,base32:GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ,totp,SHA1,6,30,,Alice@corp",
        "HOTP-0002,hex:3132333435363738393031323334353637383930,hotp,SHA1,8,,5,bob",
        '"TOTP,0003",base32:GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ,totp,SHA512,8,60,,',
      ].join("\n") + "\n",
    );
    let r = cli(d, ["token", "import", csv, "--format", "csv"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe("imported 3 tokens (1 assigned to users)\n1 tokens name a user that does not exist; they are unassigned: use token assign SERIAL NAME\n");
    const tokens = JSON.parse(cli(d, ["token", "list", "--json"]).stdout);
    expect(tokens.map((t: { serial: string; user: string | null }) => [t.serial, t.user])).toEqual([
      ["TOTP-0001", "alice"],
      ["HOTP-0002", null],
      ["TOTP,0003", null],
    ]);
    expect(cli(d, ["token", "assign", "HOTP-0002", "alice"]).code).toBe(0);
    expectOneLineError(cli(d, ["token", "import", csv, "--format", "csv"]), 1, "a token serial already exists; nothing was imported");
    expect(JSON.parse(cli(d, ["token", "list", "--json"]).stdout).length).toBe(3);

    const pskc = join(import.meta.dirname, "../../vectors/rfc6030-figure5.xml");
    expectOneLineError(cli(d, ["token", "import", pskc, "--format", "pskc", "--psk-hex", "xyz"]), 2, "--psk-hex must be");
    expectOneLineError(cli(d, ["token", "import", pskc, "--format", "pskc", "--psk-hex", "00", "--password-stdin"]), 2, "at most one of");
    r = cli(d, ["token", "import", pskc, "--format", "pskc", "--psk-hex", "12345678901234567890123456789012"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toStartWith("imported 1 tokens");
  });
});
