// The Access-Request handler: decisions → reply attributes (VSAs byte-exact and as FreeRADIUS's
// radclient decodes them), the §4.4 limit on Access-Challenge, and the channel it builds.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import type { Attempt, Decision, Engine } from "../../../../src/auth/engine.ts";
import { REJECT_MESSAGE, handleAccessRequest, toReply } from "../../../../src/radius/handler/access-request.ts";
import { Attr, Code, decodePacket, encodeRequest, encodeResponse, getAttribute, verifyRequest } from "../../../../src/radius/codec/index.ts";
import { DEFAULT_CLIENT_PHONE, type RadiusClient } from "../../../../src/store/types.ts";

const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");
const text = (s: string) => Buffer.from(s).toString("hex");

const accept: Decision = {
  kind: "accept",
  user: "lou",
  attributes: [
    { name: "Class", value: "admins" },
    { name: "Fortinet-Group-Name", value: "vpn-admins" },
    { name: "PaloAlto-User-Group", value: "gp-users" },
    { name: "Session-Timeout", value: 3600 },
  ],
};

describe("toReply", () => {
  test("Access-Accept carries the reply attributes in order; vendor ones inside Vendor-Specific (RFC 2865 §5.26)", () => {
    const reply = toReply(accept as Exclude<Decision, { kind: "drop" }>);
    expect(reply.code).toBe(Code.AccessAccept);
    expect(reply.attributes.map((a) => [a.type, hex(a.value)])).toEqual([
      [25, text("admins")],
      // Vendor-Id 12356 (0x00003044) | Vendor-Type 1 (Fortinet-Group-Name) | Vendor-Length 12 | "vpn-admins"
      [26, "00003044" + "01" + "0c" + text("vpn-admins")],
      // Vendor-Id 25461 (0x00006375) | Vendor-Type 5 (PaloAlto-User-Group) | Vendor-Length 10 | "gp-users"
      [26, "00006375" + "05" + "0a" + text("gp-users")],
      [27, "00000e10"],
    ]);
  });

  test("an accept without attributes is a bare Access-Accept", () => {
    expect(toReply({ kind: "accept", user: "a" })).toEqual({ code: Code.AccessAccept, attributes: [] });
  });

  test("an attribute that cannot be encoded turns the accept into a reject (fail closed)", () => {
    const reply = toReply({ kind: "accept", user: "a", attributes: [{ name: "Filter-Id", value: "acl" }, { name: "No-Such-Attribute", value: "x" }] });
    expect(reply.code).toBe(Code.AccessReject);
    expect(new TextDecoder().decode(reply.attributes[0]!.value)).toBe(REJECT_MESSAGE);
  });

  test("a reject shows the engine's clear text only when it set one", () => {
    const msg = (d: Decision) => new TextDecoder().decode(toReply(d as Exclude<Decision, { kind: "drop" }>).attributes[0]!.value);
    expect(msg({ kind: "reject", reason: "bad_password" })).toBe(REJECT_MESSAGE);
    expect(msg({ kind: "reject", reason: "account_disabled", message: "Your account is disabled. Contact your administrator." })).toBe("Your account is disabled. Contact your administrator.");
  });

  test("Access-Challenge carries only Reply-Message, State and Session-Timeout (RFC 2865 §4.4)", () => {
    const reply = toReply({ kind: "challenge", state: new Uint8Array(32).fill(7), prompt: "Enter the new password again.", timeoutS: 120 });
    expect(reply.code).toBe(Code.AccessChallenge);
    expect(reply.attributes.map((a) => a.type)).toEqual([Attr.ReplyMessage, Attr.State, Attr.SessionTimeout]);
  });
});

describe("handleAccessRequest", () => {
  const SECRET = new TextEncoder().encode("handler-test-secret-1");
  const client: RadiusClient = {
    id: 1,
    name: "vpn",
    address: "127.0.0.1/32",
    secret: "handler-test-secret-1",
    firstFactor: "password",
    otpMode: "challenge",
    requireMessageAuthenticator: true,
    allowPasswordOnly: false,
    directories: null,
    ...DEFAULT_CLIENT_PHONE,
    createdAt: 0,
  };

  async function run(c: RadiusClient, extra: { type: number; value: Uint8Array }[] = []): Promise<Attempt> {
    let seen: Attempt | undefined;
    const engine = { authenticate: async (a: Attempt) => ((seen = a), accept) } as unknown as Engine;
    const attributes = [{ type: Attr.UserName, value: new TextEncoder().encode("lou") }, ...extra];
    const raw = encodeRequest({ code: Code.AccessRequest, identifier: 1, attributes }, SECRET, { userPassword: new TextEncoder().encode("pw") });
    const reply = await handleAccessRequest(engine, c, SECRET, decodePacket(raw), 0);
    expect("code" in reply && reply.code).toBe(Code.AccessAccept);
    return seen!;
  }

  test("EAP-Message makes the attempt \"eap\" (refused by the engine, RFC 3579), whatever else the packet carries: the password is not even revealed", async () => {
    let seen: Attempt | undefined;
    const engine = { authenticate: async (a: Attempt) => ((seen = a), { kind: "reject", reason: "eap_unsupported" }) } as unknown as Engine;
    const raw = encodeRequest(
      { code: Code.AccessRequest, identifier: 1, attributes: [{ type: Attr.UserName, value: new TextEncoder().encode("lou") }, { type: Attr.EAPMessage, value: Uint8Array.of(2, 1, 0, 8, 1, 0x6c, 0x6f, 0x75) }] },
      SECRET,
      { userPassword: new TextEncoder().encode("pw") },
    );
    const reply = await handleAccessRequest(engine, client, SECRET, decodePacket(raw), 0);
    expect("code" in reply && reply.code).toBe(Code.AccessReject);
    expect(seen).toMatchObject({ method: "eap", username: "lou" });
    expect(seen!.secret).toBeUndefined();
  });

  test.each<[string, string[] | null | undefined, string[] | null]>([
    ["a client without directories: null (all profiles, then local)", undefined, null],
    ["explicit null", null, null],
    ["the client's list", ["corp", "local"], ["corp", "local"]],
  ])("channel.directories: %s", async (_l, directories, expected) => {
    const c = { ...client };
    if (directories !== undefined) c.directories = directories;
    expect((await run(c)).channel.directories).toEqual(expected);
  });

  const station = (value: string | Uint8Array) => ({ type: Attr.CallingStationId, value: typeof value === "string" ? new TextEncoder().encode(value) : value });

  test.each<[string, { type: number; value: Uint8Array }[], string | undefined]>([
    ["no Calling-Station-Id: none (the engine uses the client)", [], undefined],
    ["an address, trimmed", [station(" 203.0.113.7 ")], "csid:203.0.113.7"],
    ["a MAC, lower-cased", [station("00-1A-2B-3C-4D-5E")], "csid:00-1a-2b-3c-4d-5e"],
    ["control characters and non-ASCII become ?", [station("ab\u001b[2Jc\u00e9")], "csid:ab?[2jc?"],
    ["bounded to 64 characters", [station("x".repeat(200))], `csid:${"x".repeat(64)}`],
    ["only blanks: none", [station("   ")], undefined],
    ["the first of two", [station("10.0.0.1"), station("10.0.0.2")], "csid:10.0.0.1"],
  ])("attempt.source (Calling-Station-Id, RFC 2865 §5.31): %s", async (_l, extra, expected) => {
    expect((await run(client, extra)).source).toBe(expected);
  });
});

// Cross-check with a real peer: radclient decodes our Access-Accept with FreeRADIUS's own dictionaries.
const radclient = Bun.which("radclient");
if (!radclient && process.env.CI) {
  test("radclient is installed (CI)", () => {
    throw new Error("radclient (Debian freeradius-utils) is required in CI for the VSA cross-check");
  });
}

describe.skipIf(!radclient)("radclient decodes the reply attributes", () => {
  const SECRET = "radclient-handler-secret";
  const secret = new TextEncoder().encode(SECRET);
  let socket: { readonly port: number; close(): void };

  beforeAll(async () => {
    socket = await Bun.udpSocket({
      hostname: "127.0.0.1",
      port: 0,
      socket: {
        data(s, buf, port, address) {
          const raw = new Uint8Array(buf);
          const p = decodePacket(raw);
          verifyRequest(p, raw, secret, { requireMessageAuthenticator: true });
          if (!getAttribute(p, Attr.UserName)) return;
          const reply = toReply(accept as Exclude<Decision, { kind: "drop" }>);
          s.send(encodeResponse({ code: reply.code, identifier: p.identifier, attributes: reply.attributes }, p.authenticator, secret), port, address);
        },
      },
    });
  });
  afterAll(() => socket?.close());

  test("Class, Fortinet-Group-Name, PaloAlto-User-Group and Session-Timeout as FreeRADIUS names them", async () => {
    const proc = Bun.spawn([radclient!, "-x", "-r", "1", "-t", "3", `127.0.0.1:${socket.port}`, "auth", SECRET], {
      stdin: new TextEncoder().encode('User-Name = "lou"\nUser-Password = "pw"\nMessage-Authenticator = 0x00\n'),
      stdout: "pipe",
      stderr: "pipe",
    });
    const out = (await new Response(proc.stdout).text()) + (await new Response(proc.stderr).text());
    await proc.exited;
    expect(out).toContain("Received Access-Accept");
    expect(out).toContain('Fortinet-Group-Name = "vpn-admins"');
    expect(out).toContain('PaloAlto-User-Group = "gp-users"');
    expect(out).toContain("Class = 0x61646d696e73");
    expect(out).toContain("Session-Timeout = 3600");
  }, 10_000);
});
