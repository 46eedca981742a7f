// Byte-level behaviour of the real server: retransmissions, Message-Authenticator rules, silent discard of
// unknown clients and malformed shapes, padding, Proxy-State, Status-Server, reply layout, stats and drop logs.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { randomBytes, createHash } from "node:crypto";
import { Appliance, Attr, Code, UDPClient, buildAccessRequest, eventually, expectDropped, identifier, statusServer, type ServerProcess } from "./helpers/appliance.ts";
import { decodeBase32, encodeBase32, encodeRaw, text, totp, values, type CheckedReply, type RawAttribute } from "../../scripts/bench/radius-wire.ts";

const MAIN = "127.0.0.1"; // client "main": default challenge mode, Message-Authenticator required
const LEGACY = "127.0.0.2"; // client "legacy": --require-message-authenticator false
const STRANGER = "127.0.0.3"; // no client: the table only has other CIDRs
const FLOODER = "127.0.0.4"; // no client either; used for the rate-limited drop log

let app: Appliance;
let server: ServerProcess;
let main: UDPClient;
let legacy: UDPClient;
let stranger: UDPClient;
const mainSecret = `main-${randomBytes(12).toString("hex")}`;
const legacySecret = `legacy-${randomBytes(12).toString("hex")}`;
const seeds: Record<string, string> = {};

beforeAll(async () => {
  app = new Appliance();
  await app.cli(["client", "add", "main", "--address", `${MAIN}/32`, "--secret", mainSecret]);
  await app.cli(["client", "add", "legacy", "--address", `${LEGACY}/32`, "--secret", legacySecret, "--require-message-authenticator", "false"]);
  await app.cli(["client", "add", "elsewhere", "--address", "10.0.0.0/8", "--secret", `other-${randomBytes(12).toString("hex")}`]);
  for (const name of ["alice", "bob"]) {
    await app.cli(["user", "add", name, "--password-stdin"], { stdin: `${name}-pass-1\n` });
    seeds[name] = encodeBase32(randomBytes(20));
    await app.cli(["token", "add", name, "--totp", "--secret", seeds[name]!]);
  }
  server = await app.serve();
  main = await UDPClient.open(MAIN);
  legacy = await UDPClient.open(LEGACY);
  stranger = await UDPClient.open(STRANGER);
}, 120_000);

afterAll(async () => {
  for (const c of [main, legacy, stranger]) c?.[Symbol.dispose]();
  await app?.[Symbol.asyncDispose]();
});

const probe = () => ({ client: main, secret: mainSecret });

/** An Access-Request from the main client (Message-Authenticator first unless told otherwise). */
function request(attrs: RawAttribute[], opts: { secret?: string; ma?: "first" | "last" | "none"; corrupt?: boolean; id?: number } = {}) {
  return buildAccessRequest({
    identifier: opts.id ?? identifier(),
    secret: opts.secret ?? mainSecret,
    attributes: attrs,
    messageAuthenticator: opts.ma ?? "first",
    corruptMessageAuthenticator: opts.corrupt ?? false,
  });
}

/** Every reply: Response Authenticator valid, Message-Authenticator valid and FIRST (DESIGN: never exemptible). */
function expectSound(r: CheckedReply) {
  expect({ ra: r.responseAuthenticatorValid, ma: r.messageAuthenticatorValid, first: r.messageAuthenticatorFirst }).toEqual({ ra: true, ma: true, first: true });
}

const codeOf = (name: string) => totp(decodeBase32(seeds[name]!), { now: Date.now() });

/** An EAP-Response/Identity for "alice" (RFC 3748 §4, §5.1): Code 2, Identifier 1, Length 10, Type 1. */
const EAP_IDENTITY_ALICE = Uint8Array.of(2, 1, 0, 10, 1, ...new TextEncoder().encode("alice"));

describe("answers", () => {
  test("Status-Server with Message-Authenticator → Access-Accept", async () => {
    const r = await main.exchange(statusServer(mainSecret), server.port, mainSecret);
    expect(r.code).toBe(Code.AccessAccept);
    expectSound(r);
  });

  test("challenge flow over raw UDP; the Access-Challenge carries only RFC 2865 §4.4 attributes", async () => {
    const c = await main.exchange(request([[Attr.UserName, text("alice")], [Attr.UserPassword, text("alice-pass-1")]]), server.port, mainSecret);
    expect(c.code).toBe(Code.AccessChallenge);
    expectSound(c);
    const allowed = new Set([Attr.MessageAuthenticator, Attr.ReplyMessage, Attr.State, Attr.ProxyState, 26, 27, 28]);
    expect(c.attributes.map(([t]) => t).filter((t) => !allowed.has(t as never))).toEqual([]);
    const state = values(c.attributes, Attr.State)[0]!;
    expect(state.length).toBeGreaterThanOrEqual(16);
    const a = await main.exchange(
      request([[Attr.UserName, text("alice")], [Attr.UserPassword, text(codeOf("alice"))], [Attr.State, state]]),
      server.port,
      mainSecret,
    );
    expect(a.code).toBe(Code.AccessAccept);
    expectSound(a);
  });

  test("Message-Authenticator may be the last attribute of a request", async () => {
    const r = await main.exchange(request([[Attr.UserName, text("nobody-1")], [Attr.UserPassword, text("x-pass-1")]], { ma: "last" }), server.port, mainSecret);
    expect(r.code).toBe(Code.AccessReject);
    expectSound(r);
  });

  test("CHAP → Access-Reject", async () => {
    const chapId = 7;
    const challenge = randomBytes(16);
    const hash = createHash("md5").update(Uint8Array.of(chapId)).update("alice-pass-1").update(challenge).digest();
    const pkt = request([[Attr.UserName, text("alice")], [Attr.CHAPPassword, Uint8Array.from([chapId, ...hash])], [Attr.CHAPChallenge, challenge]]);
    const r = await main.exchange(pkt, server.port, mainSecret);
    expect(r.code).toBe(Code.AccessReject);
    expectSound(r);
  });

  test("bytes beyond Length are padding and ignored (RFC 2865 §3)", async () => {
    const pkt = statusServer(mainSecret);
    const padded = new Uint8Array(pkt.length + 17);
    padded.set(pkt);
    padded.fill(0xab, pkt.length);
    const r = await main.exchange(padded, server.port, mainSecret);
    expect(r.code).toBe(Code.AccessAccept);
    expectSound(r);
  });

  test.each([
    ["Access-Reject (unknown user)", [[Attr.UserName, text("nobody-2")], [Attr.UserPassword, text("x-pass-1")]] as RawAttribute[], Code.AccessReject],
    ["Access-Challenge", [[Attr.UserName, text("alice")], [Attr.UserPassword, text("alice-pass-1")]] as RawAttribute[], Code.AccessChallenge],
  ])("Proxy-State attributes are echoed in order: %s", async (_name, attrs, code) => {
    const ps = [text("proxy-one"), Uint8Array.of(0, 1, 2, 3), text("proxy-three")];
    const pkt = request([attrs[0]!, [Attr.ProxyState, ps[0]!], attrs[1]!, [Attr.ProxyState, ps[1]!], [Attr.ProxyState, ps[2]!]]);
    const r = await main.exchange(pkt, server.port, mainSecret);
    expect(r.code).toBe(code);
    expectSound(r);
    expect(values(r.attributes, Attr.ProxyState).map((v) => Buffer.from(v).toString("hex"))).toEqual(ps.map((v) => Buffer.from(v).toString("hex")));
  });

  test("EAP-Message → Access-Reject (RFC 3579: no EAP here), even beside the right password, which is never checked", async () => {
    const from = server.logs.length;
    const r = await main.exchange(request([[Attr.UserName, text("alice")], [Attr.UserPassword, text("alice-pass-1")], [Attr.EAPMessage, EAP_IDENTITY_ALICE]]), server.port, mainSecret);
    expect(r.code).toBe(Code.AccessReject);
    expectSound(r);
    const line = await server.waitForLog((l) => l.event === "auth.failure" && l.reason === "eap_unsupported", { from });
    expect(line).toMatchObject({ channel: "radius", client: "main" });
  });

  test("legacy client (--require-message-authenticator false): a request without MA is answered, and the reply still has MA first", async () => {
    const pkt = request([[Attr.UserName, text("nobody-3")], [Attr.UserPassword, text("x-pass-1")]], { secret: legacySecret, ma: "none" });
    const r = await legacy.exchange(pkt, server.port, legacySecret);
    expect(r.code).toBe(Code.AccessReject);
    expectSound(r);
  });
});

describe("retransmission (RFC 5080 §2.2.2)", () => {
  let bobCode = "";
  test("a byte-identical datagram from the same port gets the byte-identical reply and is evaluated once", async () => {
    const c = await main.exchange(request([[Attr.UserName, text("bob")], [Attr.UserPassword, text("bob-pass-1")]]), server.port, mainSecret);
    expect(c.code).toBe(Code.AccessChallenge);
    const state = values(c.attributes, Attr.State)[0]!;
    bobCode = codeOf("bob");
    const pkt = request([[Attr.UserName, text("bob")], [Attr.UserPassword, text(bobCode)], [Attr.State, state]]);

    const s0 = await server.stats();
    const first = await main.exchange(pkt, server.port, mainSecret);
    expect(first.code).toBe(Code.AccessAccept);
    expectSound(first);
    const s1 = await server.stats();
    expect(s1.accepted).toBe(s0.accepted + 1);

    const again = await main.exchange(pkt, server.port, mainSecret);
    expect(Buffer.from(again.raw).toString("hex")).toBe(Buffer.from(first.raw).toString("hex"));
    const s2 = await server.statsUntil("the duplicate to be counted", (s) => s.duplicates > s1.duplicates);
    expect({ accepted: s2.accepted, duplicates: s2.duplicates }).toEqual({ accepted: s1.accepted, duplicates: s1.duplicates + 1 });
  });

  test("a copy arriving while the original is still being evaluated is dropped (or, if already answered, gets the cached bytes); evaluated once", async () => {
    // The password leg costs an argon2id verify, so a back-to-back copy normally finds it in progress.
    const pkt = request([[Attr.UserName, text("alice")], [Attr.UserPassword, text("alice-pass-1")]]);
    const s0 = await server.stats();
    const from = main.received.length;
    main.send(pkt, server.port);
    main.send(pkt, server.port);
    const first = await main.next(pkt[1]!, { from });
    expect(first).not.toBeNull();
    const s1 = await server.statsUntil("the copy to be counted", (s) =>
      (s.dropped.duplicate_in_progress ?? 0) > (s0.dropped.duplicate_in_progress ?? 0) || s.duplicates > s0.duplicates,
    );
    // A Status-Server round trip flushes anything still queued for the copy.
    expect((await main.exchange(statusServer(mainSecret, (pkt[1]! + 128) & 0xff), server.port, mainSecret)).code).toBe(Code.AccessAccept);
    const replies = main.received.slice(from).filter((d) => d.data[1] === pkt[1]).map((d) => Buffer.from(d.data).toString("hex"));
    const inProgress = (s1.dropped.duplicate_in_progress ?? 0) - (s0.dropped.duplicate_in_progress ?? 0);
    expect(replies.length).toBe(inProgress === 1 ? 1 : 2);
    expect(new Set(replies).size).toBe(1);
    expect(s1.challenged).toBe(s0.challenged + 1);
  });

  test("the same code in a new datagram (new Request Authenticator) is a replay, not a retransmission: evaluated, never accepted", async () => {
    expect(bobCode).not.toBe("");
    const leg1 = await main.exchange(request([[Attr.UserName, text("bob")], [Attr.UserPassword, text("bob-pass-1")]]), server.port, mainSecret);
    expect(leg1.code).toBe(Code.AccessChallenge);
    const s0 = await server.stats();
    const r = await main.exchange(
      request([[Attr.UserName, text("bob")], [Attr.UserPassword, text(bobCode)], [Attr.State, values(leg1.attributes, Attr.State)[0]!]]),
      server.port,
      mainSecret,
    );
    // Access-Reject, or a "wrong code, try again" Access-Challenge (the engine's retry prompt); never an Accept.
    expect([Code.AccessReject, Code.AccessChallenge]).toContain(r.code as 3 | 11);
    expectSound(r);
    const s1 = await server.stats();
    expect({ accepted: s1.accepted, duplicates: s1.duplicates, evaluated: s1.rejected + s1.challenged }).toEqual({
      accepted: s0.accepted,
      duplicates: s0.duplicates,
      evaluated: s0.rejected + s0.challenged + 1,
    });
  });
});

describe("silent discard", () => {
  const userAttrs: RawAttribute[] = [[Attr.UserName, text("alice")], [Attr.UserPassword, text("alice-pass-1")]];

  test("Access-Request without Message-Authenticator → no reply", async () => {
    await expectDropped(server, main, request(userAttrs, { ma: "none" }), { reason: "missing_message_authenticator", probe: probe() });
  });

  test("Access-Request with a wrong Message-Authenticator → no reply", async () => {
    await expectDropped(server, main, request(userAttrs, { corrupt: true }), { reason: "bad_message_authenticator", probe: probe() });
  });

  test("a request signed with the wrong shared secret → no reply", async () => {
    await expectDropped(server, main, request(userAttrs, { secret: `wrong-${randomBytes(12).toString("hex")}` }), { probe: probe() });
  });

  test("Status-Server without Message-Authenticator → no reply, even from a legacy client (RFC 5997)", async () => {
    const pkt = buildAccessRequest({ code: Code.StatusServer, identifier: identifier(), secret: legacySecret, attributes: [], messageAuthenticator: "none" });
    await expectDropped(server, legacy, pkt, { reason: "missing_message_authenticator", probe: probe() });
  });

  test("legacy client: Proxy-State without Message-Authenticator → no reply (limit_proxy_state)", async () => {
    const pkt = buildAccessRequest({
      identifier: identifier(),
      secret: legacySecret,
      attributes: [...userAttrs, [Attr.ProxyState, text("p1")]],
      messageAuthenticator: "none",
    });
    await expectDropped(server, legacy, pkt, { reason: "proxy_state_without_message_authenticator", probe: probe() });
  });

  test("legacy client: EAP-Message without Message-Authenticator → no reply (RFC 3579 §3.1)", async () => {
    const pkt = buildAccessRequest({
      identifier: identifier(),
      secret: legacySecret,
      attributes: [...userAttrs, [Attr.EAPMessage, EAP_IDENTITY_ALICE]],
      messageAuthenticator: "none",
    });
    await expectDropped(server, legacy, pkt, { reason: "eap_without_message_authenticator", probe: probe() });
  });

  test("unknown client address (the table only has other CIDRs) → no reply", async () => {
    await expectDropped(server, stranger, request(userAttrs), { reason: "unknown_client", probe: probe() });
  });

  /** Builds a datagram, then lets `mutate` break its shape. */
  const shaped = (mutate: (p: Uint8Array) => Uint8Array, attrs: RawAttribute[] = userAttrs) => () => mutate(request(attrs));
  const setLength = (p: Uint8Array, n: number) => {
    p[2] = n >> 8;
    p[3] = n & 0xff;
    return p;
  };
  test.each([
    ["datagram shorter than its Length", "malformed", shaped((p) => setLength(p, p.length + 8))],
    ["header only, shorter than 20 octets", "malformed", shaped((p) => p.slice(0, 19))],
    [
      "Length above 4096",
      "malformed",
      () => {
        const big = new Uint8Array(4200);
        big.set(request(userAttrs));
        const used = (big[2]! << 8) | big[3]!;
        for (let off = used; off < 4200; ) {
          const l = Math.min(255, 4200 - off);
          big[off] = Attr.ProxyState;
          big[off + 1] = l;
          off += l;
        }
        return setLength(big, 4200);
      },
    ],
    [
      "attribute length 1",
      "malformed",
      shaped((p) => {
        const q = new Uint8Array(p.length + 3);
        q.set(p);
        q.set([Attr.NASIdentifier, 1, 0], p.length);
        return setLength(q, q.length);
      }),
    ],
    [
      "attribute length 0",
      "malformed",
      shaped((p) => {
        const q = new Uint8Array(p.length + 2);
        q.set(p);
        q.set([Attr.NASIdentifier, 0], p.length);
        return setLength(q, q.length);
      }),
    ],
    [
      "attribute running past Length",
      "malformed",
      shaped((p) => {
        const q = new Uint8Array(p.length + 4);
        q.set(p);
        q.set([Attr.NASIdentifier, 10, 0x61, 0x62], p.length);
        return setLength(q, q.length);
      }),
    ],
    ["unknown code 99", "unknown_code", () => buildAccessRequest({ code: 99, identifier: identifier(), secret: mainSecret, attributes: userAttrs })],
  ])("%s → no reply (%s)", async (_name, reason, make) => {
    await expectDropped(server, main, make(), { reason, probe: probe() });
  });

  test("drop log lines carry reason and source, and are rate-limited per source", async () => {
    using flooder = await UDPClient.open(FLOODER);
    const before = await server.stats();
    const from = server.logs.length;
    for (let i = 0; i < 5; i++) flooder.send(request(userAttrs), server.port);
    await server.statsUntil("5 unknown_client drops", (s) => (s.dropped.unknown_client ?? 0) >= (before.dropped.unknown_client ?? 0) + 5);
    const lines = server.logs.slice(from).filter((l) => l.event === "radius.drop" && String(l.source ?? "").includes(FLOODER));
    expect(lines.length).toBe(1);
    expect(lines[0]!.reason).toBe("unknown_client");
    // No secret or password ever reaches the log.
    const all = JSON.stringify(server.logs);
    for (const s of [mainSecret, legacySecret, "alice-pass-1", "bob-pass-1", seeds.alice!, seeds.bob!]) expect(all).not.toContain(s);
  });
});

describe("a reply longer than 4096 octets (RFC 2865 §3)", () => {
  test("an Access-Challenge pushed past 4096 octets by echoed Proxy-State is dropped as reply_too_large, one JSON line; its retransmission is dropped the same way, not evaluated again", async () => {
    // A request of exactly 4096 octets: alice's right password, then Proxy-State up to the limit.
    // Its Access-Challenge echoes every Proxy-State (RFC 2865 §5.33) after a prompt, a 32-octet
    // State and Session-Timeout: longer than the request's User-Name and User-Password.
    const attrs: RawAttribute[] = [[Attr.UserName, text("alice")], [Attr.UserPassword, text("alice-pass-1")]];
    let room = 4096 - request(attrs).length;
    while (room > 0) {
      const n = Math.min(253, room - 2);
      attrs.push([Attr.ProxyState, new Uint8Array(n).fill(0x70)]);
      room -= 2 + n;
    }
    const pkt = request(attrs);
    expect(pkt.length).toBe(4096);

    const before = await server.stats();
    const from = server.logs.length;
    await expectDropped(server, main, pkt, { reason: "reply_too_large", probe: probe() });
    await expectDropped(server, main, pkt, { reason: "reply_too_large", probe: probe() }); // the NAS's retransmission
    const after = await server.stats();
    expect({ dropped: after.dropped.reply_too_large, challenged: after.challenged, duplicates: after.duplicates }).toEqual({
      dropped: (before.dropped.reply_too_large ?? 0) + 2,
      challenged: before.challenged,
      duplicates: before.duplicates,
    });

    const lines = server.logs.slice(from);
    expect(lines.filter((l) => l.event === "non_json")).toEqual([]);
    // evaluated once: one challenge decided, never sent
    expect(lines.filter((l) => l.event === "auth.challenge").map((l) => l.user)).toEqual(["alice"]);
    // one line for both drops (rate-limited per source and reason)
    const drops = lines.filter((l) => l.event === "radius.drop");
    expect(drops).toEqual([{ ts: expect.any(String), level: "warn", event: "radius.drop", reason: "reply_too_large", source: MAIN, detail: expect.stringMatching(/^Access-Challenge of 41\d\d octets$/) }]);

    const metrics = await (await fetch(`http://127.0.0.1:${server.adminPort}/metrics`)).text();
    expect(metrics).toContain(`portcullis_radius_dropped_total{reason="reply_too_large"} ${after.dropped.reply_too_large}`);
  });
});

describe("stats", () => {
  test("SIGUSR1 prints radius.stats with every counter", async () => {
    const s = await server.stats();
    for (const k of ["received", "accepted", "rejected", "challenged", "duplicates", "rcvbuf_drops"] as const) expect(typeof s[k]).toBe("number");
    expect(typeof s.dropped).toBe("object");
    expect(s.received).toBeGreaterThan(0);
  });

  test("the server answers a burst of Status-Server from many Identifiers", async () => {
    const pkts = Array.from({ length: 64 }, (_, i) => statusServer(mainSecret, i));
    const from = main.received.length;
    for (const p of pkts) main.send(p, server.port);
    await eventually("64 replies", () => (main.received.length - from >= 64 ? true : undefined), { tries: 200, timeoutMs: 10_000, everyMs: 20 });
  });
});

describe("a NAS port that closes before its reply", () => {
  test("the ICMP port-unreachable errors are logged as radius.socket_error (a code, rate-limited) and the server keeps serving", async () => {
    const from = server.logs.length;
    for (let round = 0; round < 3; round++) {
      const gone = await Promise.all(Array.from({ length: 16 }, () => UDPClient.open(MAIN)));
      for (const c of gone) c.send(request([[Attr.UserName, text("nobody-closed")], [Attr.UserPassword, text("x-pass-1")]]), server.port);
      for (const c of gone) c[Symbol.dispose]();
      // the replies (Access-Reject after the failure delay) meet closed ports; the kernel answers with ICMP errors
      await Bun.sleep(1500);
    }
    const r = await main.exchange(statusServer(mainSecret, identifier()), server.port, mainSecret);
    expect(r.code).toBe(Code.AccessAccept);
    expect(server.proc.exitCode).toBeNull();
    const errors = server.logs.slice(from).filter((l) => l.event === "radius.socket_error");
    for (const e of errors) {
      expect(typeof e.error).toBe("string");
      expect(e.error as string).toMatch(/^[A-Za-z0-9_]{1,40}$/);
      expect(typeof e.suppressed).toBe("number");
    }
  }, 30_000);
});

