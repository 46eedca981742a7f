// The lean LDAP codec of the login hot path (wire.ts): its requests are byte for byte what ldapts sends,
// and every malformed, oversized, late or truncated reply fails the connection with a clear error
// instead of crashing or hanging. The channel tests run over real loopback sockets against a small
// server that answers with crafted bytes.
import { afterAll, afterEach, beforeAll, describe, expect, test } from "bun:test";
import net from "node:net";
import { setTimeout as sleep } from "node:timers/promises";
import { BerWriter, BindRequest, ExtendedRequest, FilterParser, PasswordPolicyControl, SearchRequest, SizeLimitExceededError, UnbindRequest } from "ldapts";
import { openConnection } from "../../../../src/directory/ldap/connection.ts";
import { userFilter } from "../../../../src/directory/ldap/escape.ts";
import {
  BerIn,
  BerOut,
  encodeBindRequest,
  encodeExtendedRequest,
  encodeFilter,
  encodeSearchRequest,
  encodeUnbindRequest,
  FilterSyntaxError,
  frameLength,
  MAX_MESSAGE_BYTES,
  PPOLICY_OID,
  WireChannel,
  WireError,
  WIRE_ID_BASE,
} from "../../../../src/directory/ldap/wire.ts";
import type { LdapProfile } from "../../../../src/directory/types.ts";

const ldaptsFilter = (f: string) => {
  const w = new BerWriter();
  FilterParser.parseString(f).write(w);
  return Buffer.from(w.buffer);
};
const ours = (f: string) => {
  const w = new BerOut();
  encodeFilter(w, f);
  return w.bytes();
};

describe("requests: the same bytes as ldapts", () => {
  test("simple bind, with and without the ppolicy control", () => {
    for (const ppolicy of [false, true]) {
      const req = new BindRequest({ messageId: 1234567, dn: "uid=alice,ou=people,dc=example,dc=com", password: "pässword-Pw1", controls: ppolicy ? [new PasswordPolicyControl()] : [] });
      expect(encodeBindRequest(1234567, "uid=alice,ou=people,dc=example,dc=com", "pässword-Pw1", { ppolicy }).toString("hex")).toBe(Buffer.from(req.write()).toString("hex"));
    }
  });

  test("StartTLS extended request and unbind (sent on Bun's sockets, where ldapts is not used)", () => {
    const startTLS = new ExtendedRequest({ messageId: 5, oid: "1.3.6.1.4.1.1466.20037" });
    expect(encodeExtendedRequest(5, "1.3.6.1.4.1.1466.20037").toString("hex")).toBe(Buffer.from(startTLS.write()).toString("hex"));
    expect(encodeUnbindRequest(WIRE_ID_BASE + 1).toString("hex")).toBe(Buffer.from(new UnbindRequest({ messageId: WIRE_ID_BASE + 1 }).write()).toString("hex"));
  });

  test("long values use long-form lengths", () => {
    const dn = `uid=${"x".repeat(300)},dc=example,dc=com`;
    const req = new BindRequest({ messageId: WIRE_ID_BASE, dn, password: "p".repeat(200) });
    expect(encodeBindRequest(WIRE_ID_BASE, dn, "p".repeat(200)).toString("hex")).toBe(Buffer.from(req.write()).toString("hex"));
  });

  test("search with scope, size limit, attributes and the profile's filter", () => {
    const attributes = ["entryUUID", "pwdAccountLockedTime", "mobile", "mail", "employeeType"];
    const filter = userFilter("(&(objectClass=inetOrgPerson)(uid={username}))", "al*ice(x)\\");
    const req = new SearchRequest({ messageId: 77, baseDN: "dc=example,dc=com", scope: "sub", filter: FilterParser.parseString(filter), sizeLimit: 2, attributes });
    expect(encodeSearchRequest(77, "dc=example,dc=com", { scope: "sub", filter, sizeLimit: 2, attributes }).toString("hex")).toBe(Buffer.from(req.write()).toString("hex"));
  });

  test.each([
    "(uid=alice)",
    "(&(objectClass=user)(sAMAccountName=bob))",
    "(|(uid=a)(mail=a@example.com)(!(cn=b)))",
    "(cn=*)",
    "(cn=ab*)",
    "(cn=*ab)",
    "(cn=a*b*c)",
    "(cn=*b*)",
    "(uidNumber>=1000)",
    "(uidNumber<=1000)",
    "(cn~=alise)",
    "(memberOf:1.2.840.113556.1.4.1941:=CN=VPN Users\\2c OU=Groups,DC=corp,DC=example)",
    "(cn:dn:2.5.13.5:=John)",
    "(o:dn:=Ace Industry)",
    "(:1.2.3:=x)",
    "(userAccountControl:1.2.840.113556.1.4.803:=2)",
    "(cn=日本語)",
    "(cn=a\\2ab\\28\\29\\5c)",
    "(&(objectClass=person)(|(sn=Jensen)(cn=Babs J*)))",
  ])("filter %s", (f) => {
    expect(ours(f).toString("hex")).toBe(ldaptsFilter(f).toString("hex"));
  });

  test("escaped values become the raw bytes (RFC 4515 §3), also when they are not UTF-8", () => {
    const b = ours("(objectGUID=\\01\\ff\\00)");
    expect(b.subarray(b.length - 5).toString("hex")).toBe("040301ff00");
    // ldapts turns each escaped byte into one UTF-16 code unit and re-encodes it (c4 8d → c3 84 c2 8d);
    // the codec sends the bytes written: "Lučić".
    expect(ours("(cn=Lu\\c4\\8di\\c4\\87)").toString("hex")).toBe(ours("(cn=Lučić)").toString("hex"));
  });

  test.each(["", "uid=alice", "(uid=alice", "(uid=alice))", "(&)", "(!(a=b)(c=d))", "((a=b))", "(=x)", "(a b=c)", "(cn=a**b)", "(cn=\\zz)", "(cn=\\4)", "(a:=)x", "(:=x)", "(a=b)(c=d)"])(
    "malformed filter %p is refused",
    (f) => {
      expect(() => ours(f)).toThrow(FilterSyntaxError);
    },
  );

  test("nesting is bounded", () => {
    expect(() => ours(`${"(!".repeat(40)}(a=b)${")".repeat(40)}`)).toThrow(FilterSyntaxError);
  });

  test("the profile's filter with any user name parses (the name is escaped first)", () => {
    for (const name of ["alice", "a*b", "(x)", "back\\slash", "nul\u0000", "ümlaut", "😀", "a)(uid=*"]) {
      const f = userFilter("(&(objectClass=user)(sAMAccountName={username}))", name);
      expect(ours(f).toString("hex")).toBe(ldaptsFilter(f).toString("hex"));
    }
  });
});

describe("BER reading: every length is checked", () => {
  const read = (hex: string) => {
    const b = Buffer.from(hex.replace(/ /g, ""), "hex");
    const r = new BerIn(b, 0, b.length);
    r.tlv();
    return r;
  };
  test("a definite length inside its buffer is read", () => {
    const r = read("04 03 616263");
    expect([r.start, r.end]).toEqual([2, 5]);
  });
  test.each([
    ["a length past the end", "04 05 6162"],
    ["an indefinite length", "30 80 0000"],
    ["a length of 5 octets", "04 85 0000000001 00"],
    ["a long-form length truncated", "04 82 01"],
    ["a tag alone", "04"],
    ["a multi-byte tag", "1f 01 00"],
  ])("%s fails with WireError", (_what, hex) => {
    expect(() => read(hex)).toThrow(WireError);
  });
  test("a nested length may not run past its enclosing value", () => {
    const b = Buffer.from("3003040561626364", "hex"); // SEQUENCE of 3 holding an OCTET STRING claiming 5
    const outer = new BerIn(b, 0, b.length).enter(0x30);
    expect(() => outer.tlv()).toThrow(WireError);
  });
  test("integers: negative, too long or out of range fail", () => {
    for (const hex of ["0201ff", "0206010000000000", "020500ffffffff", "0200"]) {
      const b = Buffer.from(hex, "hex");
      expect(() => new BerIn(b, 0, b.length).int(0x02)).toThrow(WireError);
    }
  });
  test("frameLength: waits for more bytes, refuses what is not a SEQUENCE or too large", () => {
    expect(frameLength(Buffer.from("30", "hex"))).toBe(-1);
    expect(frameLength(Buffer.from("3005020101", "hex"))).toBe(-1);
    expect(frameLength(Buffer.from("3003020101", "hex"))).toBe(5);
    expect(frameLength(Buffer.from("3084", "hex"))).toBe(-1);
    expect(() => frameLength(Buffer.from("0403616263", "hex"))).toThrow(WireError);
    expect(() => frameLength(Buffer.from("3080", "hex"))).toThrow(WireError);
    expect(() => frameLength(Buffer.from("30857fffffffff", "hex"))).toThrow(WireError);
    const big = MAX_MESSAGE_BYTES + 1;
    expect(() => frameLength(Buffer.from([0x30, 0x84, big >>> 24, (big >>> 16) & 255, (big >>> 8) & 255, big & 255]))).toThrow(/exceeds the limit/);
  });
});

// ── the channel over a real socket, against a server that answers with crafted bytes ───────────────

/** An LDAPMessage { id, op } with optional controls. */
function message(id: number, op: (w: BerOut) => void, controls?: (w: BerOut) => void): Buffer {
  const w = new BerOut().start(0x30).int(0x02, id);
  op(w);
  if (controls) {
    w.start(0xa0);
    controls(w);
    w.end();
  }
  return w.end().bytes();
}
const result = (tag: number, code: number, diag = "") => (w: BerOut) => w.start(tag).int(0x0a, code).octets(0x04, "").octets(0x04, diag).end();
const entry = (dn: string, attrs: Array<[string, Array<string | Buffer>]>) => (w: BerOut) => {
  w.start(0x64).octets(0x04, dn).start(0x30);
  for (const [type, vals] of attrs) {
    w.start(0x30).octets(0x04, type).start(0x31);
    for (const v of vals) w.octets(0x04, typeof v === "string" ? v : new Uint8Array(v));
    w.end().end();
  }
  w.end().end();
};
const ppolicyControl = (value: (w: BerOut) => void) => (w: BerOut) => {
  const v = new BerOut().start(0x30);
  value(v);
  w.start(0x30).octets(0x04, PPOLICY_OID).octets(0x04, v.end().bytes()).end();
};

/** A request as the server saw it: its message ID and operation tag. */
type Seen = { id: number; op: number };
type Script = (req: Seen, sock: net.Socket) => void;

let server: net.Server;
let port = 0;
let script: Script = () => {};
const peers = new Set<net.Socket>();

beforeAll(async () => {
  server = net.createServer((s) => {
    peers.add(s);
    s.on("close", () => peers.delete(s));
    let buf = Buffer.alloc(0);
    s.on("data", (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      for (;;) {
        const n = frameLength(buf);
        if (n < 0) break;
        const m = new BerIn(buf, 0, n).enter(0x30);
        const id = m.int(0x02);
        script({ id, op: m.peek() }, s);
        buf = buf.subarray(n);
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  port = (server.address() as net.AddressInfo).port;
});
afterEach(() => {
  for (const s of peers) s.destroy();
});
afterAll(() => server.close());

const profile = (timeoutMs = 2000): LdapProfile =>
  ({ name: "t", urls: [`ldap://127.0.0.1:${port}`], startTLS: false, plaintext: true, timeoutMs }) as unknown as LdapProfile;

async function channel(timeoutMs = 2000) {
  const c = await openConnection(profile(timeoutMs), `ldap://127.0.0.1:${port}`, undefined);
  return { c, wire: WireChannel.attach(c.client, timeoutMs) };
}

const searchOptions = { scope: "sub" as const, filter: "(uid=alice)", sizeLimit: 2, attributes: ["entryUUID", "mobile", "mail"], explicitBufferAttributes: ["objectGUID"] };

describe("WireChannel over a socket", () => {
  test("bind: success, a wrong password and the ppolicy control's values come back as the server sent them", async () => {
    script = (req, s) => {
      if (req.op !== 0x60) return;
      if (req.id % 3 === 0) s.write(message(req.id, result(0x61, 0)));
      else if (req.id % 3 === 1) s.write(message(req.id, result(0x61, 49, "80090308: LdapErr: DSID-0C09044E, comment: AcceptSecurityContext error, data 775, v2580")));
      else s.write(message(req.id, result(0x61, 0), ppolicyControl((v) => v.start(0xa0).int(0x81, 2).end().int(0x81, 2))));
    };
    const { c, wire } = await channel();
    const replies = await Promise.all([wire.bind("uid=a,dc=x", "pw1", { ppolicy: true }), wire.bind("uid=a,dc=x", "pw2", { ppolicy: true }), wire.bind("uid=a,dc=x", "pw3", { ppolicy: true })]);
    const byCode = replies.map((r) => ({ code: r.code, data: /data (\w+)/.exec(r.diagnostic)?.[1], ppolicy: r.ppolicy }));
    expect(byCode).toContainEqual({ code: 0, data: undefined, ppolicy: undefined });
    expect(byCode).toContainEqual({ code: 49, data: "775", ppolicy: undefined });
    expect(byCode).toContainEqual({ code: 0, data: undefined, ppolicy: { graceAuthNsRemaining: 2, error: 2 } });
    await c.client.unbind();
  });

  test("an empty password is refused before anything is sent", async () => {
    const seen: Seen[] = [];
    script = (req) => seen.push(req);
    const { c, wire } = await channel();
    await expect(wire.bind("uid=a,dc=x", "")).rejects.toThrow(/unauthenticated/);
    await sleep(20);
    expect(seen).toEqual([]);
    await c.client.unbind();
  });

  test("search: entries as ldapts returns them, references skipped, a result code other than success thrown as ldapts's error", async () => {
    const guid = Buffer.from("00112233445566778899aabbccddeeff", "hex");
    script = (req, s) => {
      if (req.op !== 0x63) return;
      if (req.id % 2 === 0) {
        s.write(message(req.id, entry("uid=alice,dc=x", [["entryUUID", ["6c1b"]], ["mail", ["a@x", "b@x"]], ["objectGUID", [guid]], ["cn", [Buffer.from([0xff, 0xfe])]]])));
        s.write(message(req.id, (w) => w.start(0x73).octets(0x04, "ldap://elsewhere/dc=y").end()));
        s.write(message(req.id, result(0x65, 0)));
      } else {
        s.write(Buffer.concat([message(req.id, entry("uid=a,dc=x", [])), message(req.id, entry("uid=b,dc=x", [])), message(req.id, result(0x65, 4, "size limit"))]));
      }
    };
    const { c, wire } = await channel();
    const [one, two] = await Promise.allSettled([wire.search("dc=x", searchOptions), wire.search("dc=x", searchOptions)]);
    const ok = (one.status === "fulfilled" ? one : two) as PromiseFulfilledResult<Array<Record<string, unknown>>>;
    const bad = (one.status === "rejected" ? one : two) as PromiseRejectedResult;
    expect(ok.value).toEqual([{ dn: "uid=alice,dc=x", entryUUID: "6c1b", mail: ["a@x", "b@x"], objectGUID: guid, cn: Buffer.from([0xff, 0xfe]), mobile: [] }]);
    expect(bad.reason).toBeInstanceOf(SizeLimitExceededError);
    await c.client.unbind();
  });

  test("attribute names that are not attribute descriptions (__proto__, constructor) are left out of the entry", async () => {
    script = (req, s) =>
      s.write(Buffer.concat([message(req.id, entry("uid=alice,dc=x", [["__proto__", ["x"]], ["constructor", ["y"]], ["mail", ["a@x"]], ["member;range=0-1", ["cn=g"]]])), message(req.id, result(0x65, 0))]));
    const { c, wire } = await channel();
    const [e] = await wire.search("dc=x", searchOptions);
    expect(Object.getPrototypeOf(e)).toBe(Object.prototype);
    expect(Object.keys(e!).sort()).toEqual(["dn", "entryUUID", "mail", "member;range=0-1", "mobile"]);
    expect(e!.constructor).toBe(Object);
    await c.client.unbind();
  });

  test("more entries than the size limit fail the connection (a server cannot make the codec hoard entries)", async () => {
    script = (req, s) => s.write(Buffer.concat([1, 2, 3].map((i) => message(req.id, entry(`uid=u${i},dc=x`, [])))));
    const { c, wire } = await channel();
    const e = (await wire.search("dc=x", searchOptions).catch((x: unknown) => x)) as Error;
    expect(e).toBeInstanceOf(WireError);
    expect(e.message).toMatch(/more entries than the size limit of 2/);
    for (let i = 0; i < 100 && c.client.isConnected; i++) await sleep(5);
    expect(c.client.isConnected).toBe(false);
  });

  test("a reply split into single bytes is put back together", async () => {
    script = (req, s) => {
      const bytes = Buffer.concat([message(req.id, entry("uid=alice,dc=x", [["mail", ["a@x"]]])), message(req.id, result(0x65, 0))]);
      let i = 0;
      const drip = () => {
        if (i >= bytes.length || s.destroyed) return;
        s.write(bytes.subarray(i, ++i));
        setTimeout(drip, 1);
      };
      drip();
    };
    const { c, wire } = await channel();
    expect(await wire.search("dc=x", searchOptions)).toEqual([{ dn: "uid=alice,dc=x", mail: "a@x", entryUUID: [], mobile: [] }]);
    await c.client.unbind();
  });

  test("messages of ldapts on the same connection still reach ldapts", async () => {
    script = (req, s) => {
      if (req.op === 0x60) s.write(message(req.id, result(0x61, 0)));
      if (req.op === 0x63) s.write(Buffer.concat([message(req.id, entry("uid=alice,dc=x", [["mail", ["a@x"]]])), message(req.id, result(0x65, 0))]));
    };
    const { c, wire } = await channel();
    const [viaLdapts, viaWire] = await Promise.all([c.client.search("dc=x", { filter: "(uid=alice)", attributes: ["mail"] }), wire.search("dc=x", searchOptions)]);
    expect(viaLdapts.searchEntries).toEqual([{ dn: "uid=alice,dc=x", mail: "a@x" }]);
    expect(viaWire).toHaveLength(1);
    await c.client.bind("cn=svc,dc=x", "pw");
    expect(c.client.isBound).toBe(true);
    await c.client.unbind();
  });

  const malformed: Array<[string, (id: number) => Buffer]> = [
    ["a length past the message's end", (id) => Buffer.concat([Buffer.from([0x30, 11, 0x02, 4, id >>> 24, (id >>> 16) & 255, (id >>> 8) & 255, id & 255]), Buffer.from("610f0a0100", "hex")])],
    ["an indefinite length", () => Buffer.from("3080020101610700000000", "hex")],
    ["a message that is not a SEQUENCE", () => Buffer.from("0403616263", "hex")],
    ["an oversized message", () => Buffer.from([0x30, 0x84, 0x7f, 0xff, 0xff, 0xff])],
    ["a bind answered by a search result", (id) => message(id, result(0x65, 0))],
    ["a result without its diagnostic", (id) => message(id, (w) => w.start(0x61).int(0x0a, 0).octets(0x04, "").end())],
    ["a negative message ID", () => Buffer.from("30050201ff6100", "hex")],
    ["an unparsable control", (id) => message(id, result(0x61, 0), (w) => w.start(0x30).octets(0x04, PPOLICY_OID).octets(0x04, Buffer.from("3005a003", "hex")).end())],
  ];
  test.each(malformed)("%s fails the connection with a WireError, and later operations fail at once", async (_what, reply) => {
    script = (req, s) => s.write(reply(req.id));
    const { c, wire } = await channel();
    const e = await wire.bind("uid=a,dc=x", "pw", { ppolicy: true }).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(WireError);
    expect((e as Error).message).toMatch(/^LDAP /);
    for (let i = 0; i < 100 && c.client.isConnected; i++) await sleep(5);
    expect(c.client.isConnected).toBe(false);
    await expect(wire.bind("uid=a,dc=x", "pw")).rejects.toBeInstanceOf(WireError);
  });

  test("no reply within the timeout: the operation fails as timed out and the connection is closed", async () => {
    script = () => {};
    const { c, wire } = await channel(150);
    const e = (await wire.bind("uid=a,dc=x", "pw").catch((x: unknown) => x)) as Error;
    expect(e).toBeInstanceOf(WireError);
    expect(e.message).toMatch(/timed out/);
    for (let i = 0; i < 100 && c.client.isConnected; i++) await sleep(5);
    expect(c.client.isConnected).toBe(false);
  });

  test("the server closing the connection fails every operation in flight", async () => {
    script = (_req, s) => s.destroy();
    const { wire } = await channel();
    const all = await Promise.allSettled([wire.search("dc=x", searchOptions), wire.search("dc=x", searchOptions)]);
    expect(all.map((r) => r.status)).toEqual(["rejected", "rejected"]);
    expect((all[0] as PromiseRejectedResult).reason).toBeInstanceOf(WireError);
  });

  test("a filter the codec cannot parse is refused before anything is sent", async () => {
    const seen: Seen[] = [];
    script = (req) => seen.push(req);
    const { c, wire } = await channel();
    expect(() => wire.search("dc=x", { ...searchOptions, filter: "(uid=alice" })).toThrow(FilterSyntaxError);
    await sleep(20);
    expect(seen).toEqual([]);
    expect(wire.inFlight).toBe(0);
    await c.client.unbind();
  });
});
