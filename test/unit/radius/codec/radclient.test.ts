// Cross-check against a real peer: FreeRADIUS radclient talks to a tiny UDP responder built on the codec.
// Skipped when radclient (Debian freeradius-utils) is not installed.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import {
  Attr,
  Code,
  decodePacket,
  encodeResponse,
  getAttribute,
  RADIUSError,
  revealUserPassword,
  textAttribute,
  verifyRequest,
} from "../../../../src/radius/codec/index.ts";
import { utf8 } from "./helpers.ts";

const SECRET = "radclient-test-secret";
const secret = utf8.encode(SECRET);
const radclient = Bun.which("radclient");

describe.skipIf(!radclient)("radclient (FreeRADIUS) against the codec", () => {
  let socket: { readonly port: number; close(): void };
  const seen: string[] = [];

  beforeAll(async () => {
    socket = await Bun.udpSocket({
      hostname: "127.0.0.1",
      port: 0,
      socket: {
        data(s, buf, port, address) {
          const raw = new Uint8Array(buf);
          try {
            const p = decodePacket(raw);
            verifyRequest(p, raw, secret, { requireMessageAuthenticator: p.code !== Code.AccountingRequest });
            let code: number = Code.AccessAccept;
            if (p.code === Code.AccountingRequest) code = Code.AccountingResponse;
            if (p.code === Code.AccessRequest) {
              const pw = revealUserPassword(getAttribute(p, Attr.UserPassword)!, secret, p.authenticator);
              code = new TextDecoder().decode(pw) === "right" ? Code.AccessAccept : Code.AccessReject;
            }
            const attributes = code === Code.AccountingResponse ? [] : [textAttribute(Attr.ReplyMessage, "hi")];
            s.send(encodeResponse({ code, identifier: p.identifier, attributes }, p.authenticator, secret), port, address);
            seen.push("ok");
          } catch (err) {
            seen.push(err instanceof RADIUSError ? err.code : "error"); // silent discard
          }
        },
      },
    });
  });

  afterAll(() => socket?.close());

  async function run(kind: string, input: string, key = SECRET, wait = "2"): Promise<{ exitCode: number; out: string }> {
    const proc = Bun.spawn([radclient!, "-x", "-r", "1", "-t", wait, `127.0.0.1:${socket.port}`, kind, key], {
      stdin: new TextEncoder().encode(input),
      stdout: "pipe",
      stderr: "pipe",
    });
    const out = (await new Response(proc.stdout).text()) + (await new Response(proc.stderr).text());
    return { exitCode: await proc.exited, out };
  }

  test.each([
    ["Access-Request with Message-Authenticator, right password", "auth", 'User-Name = "bob"\nUser-Password = "right"\nMessage-Authenticator = 0x00\n', "Received Access-Accept"],
    ["Access-Request with Message-Authenticator, wrong password", "auth", 'User-Name = "bob"\nUser-Password = "wrong"\nMessage-Authenticator = 0x00\n', "Received Access-Reject"],
    ["Status-Server", "status", "Message-Authenticator = 0x00\n", "Received Access-Accept"],
    ["Accounting-Request with Message-Authenticator", "acct", 'Acct-Status-Type = Start\nAcct-Session-Id = "s1"\nMessage-Authenticator = 0x00\n', "Received Accounting-Response"],
  ])("%s: radclient verifies our reply", async (_n, kind, input, expected) => {
    const { out } = await run(kind, input);
    expect(out).toContain(expected);
    expect(out).not.toContain("verification failed");
  }, 10_000);

  test("a request signed with another secret is dropped (no reply)", async () => {
    const before = seen.length;
    const { exitCode, out } = await run("auth", 'User-Name = "bob"\nUser-Password = "right"\nMessage-Authenticator = 0x00\n', "not-the-secret", "1");
    expect(exitCode).not.toBe(0);
    expect(out).toContain("No reply");
    expect(seen.slice(before)).toEqual(["bad_message_authenticator"]);
  }, 10_000);
});
