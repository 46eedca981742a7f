// Pipelined service connections against a real slapd, through a relay that reorders or cuts the server's answers.
//
// The relay sits between LdapDirectory and slapd. Armed with hold(k, action), it keeps the server's
// messages until k final answers (BindResponse, SearchResultDone, ModifyResponse, ExtendedResponse)
// are held, then either delivers them in reverse message-ID order (each request's entries before its
// final answer) or cuts every connection as a server restart would. k requests can only be
// outstanding at once on one connection if they are pipelined: with one request at a time, the relay
// would wait for the second request forever and the operations would time out.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { connect, createServer, type Server, type Socket } from "node:net";
import { createLdapDirectory } from "../../src/directory/ldap/index.ts";
import type { LdapProfile } from "../../src/directory/types.ts";
import { BASE_DN, PASSWORDS, runSlapdTests, SERVICE_DN, SERVICE_PASSWORD, startSlapd, type Slapd } from "./helpers/slapd.ts";

const d = runSlapdTests ? describe : describe.skip;

const FINAL_TAGS = new Set([0x61, 0x65, 0x67, 0x78]);

/** Splits complete BER LDAPMessages off the front of buf: [messages, rest]. */
function frames(buf: Buffer): [Array<{ id: number; tag: number; bytes: Buffer }>, Buffer] {
  const out: Array<{ id: number; tag: number; bytes: Buffer }> = [];
  let off = 0;
  for (;;) {
    if (buf.length - off < 2) break;
    let len = buf[off + 1]!;
    let hdr = 2;
    if (len & 0x80) {
      const n = len & 0x7f;
      if (buf.length - off < 2 + n) break;
      len = 0;
      for (let i = 0; i < n; i++) len = len * 256 + buf[off + 2 + i]!;
      hdr = 2 + n;
    }
    if (buf.length - off < hdr + len) break;
    const body = buf.subarray(off + hdr, off + hdr + len);
    // messageID INTEGER, then the protocolOp's tag.
    const idLen = body[1]!;
    let id = 0;
    for (let i = 0; i < idLen; i++) id = id * 256 + body[2 + i]!;
    out.push({ id, tag: body[2 + idLen]!, bytes: buf.subarray(off, off + hdr + len) });
    off += hdr + len;
  }
  return [out, buf.subarray(off)];
}

class Relay {
  readonly server: Server;
  readonly sockets = new Set<Socket>();
  port = 0;
  #armed: { k: number; action: "reverse" | "cut"; held: Array<{ id: number; tag: number; bytes: Buffer; down: Socket }>; done: () => void } | undefined;
  /** Message IDs of the final answers in the order the relay delivered them while armed. */
  delivered: number[] = [];

  constructor(upstreamPort: number) {
    this.server = createServer((down) => {
      const up = connect(upstreamPort, "127.0.0.1");
      this.sockets.add(down).add(up);
      down.pipe(up);
      let pending = Buffer.alloc(0);
      up.on("data", (chunk: Buffer) => {
        const [msgs, rest] = frames(Buffer.concat([pending, chunk]));
        pending = Buffer.from(rest);
        for (const m of msgs) this.#fromServer({ ...m, down });
      });
      const end = () => {
        down.destroy();
        up.destroy();
        this.sockets.delete(down);
        this.sockets.delete(up);
      };
      down.on("error", end).on("close", end);
      up.on("error", end).on("close", end);
    });
  }

  async listen(): Promise<void> {
    await new Promise<void>((r) => this.server.listen(0, "127.0.0.1", r));
    this.port = (this.server.address() as { port: number }).port;
  }

  /** Holds the server's messages until k final answers are held, then reverses or cuts; resolves when done. */
  hold(k: number, action: "reverse" | "cut"): Promise<void> {
    this.delivered = [];
    return new Promise((done) => (this.#armed = { k, action, held: [], done }));
  }

  #fromServer(m: { id: number; tag: number; bytes: Buffer; down: Socket }): void {
    const a = this.#armed;
    if (!a) {
      m.down.write(m.bytes);
      return;
    }
    a.held.push(m);
    if (a.held.filter((h) => FINAL_TAGS.has(h.tag)).length < a.k) return;
    this.#armed = undefined;
    if (a.action === "cut") {
      for (const s of this.sockets) s.destroy();
    } else {
      const ids = [...new Set(a.held.map((h) => h.id))].sort((x, y) => y - x);
      for (const id of ids) {
        for (const h of a.held.filter((x) => x.id === id)) {
          h.down.write(h.bytes);
          if (FINAL_TAGS.has(h.tag)) this.delivered.push(id);
        }
      }
    }
    a.done();
  }

  close(): void {
    for (const s of this.sockets) s.destroy();
    this.server.close();
  }
}

function profile(url: string): LdapProfile {
  return {
    name: "corp",
    urls: [url],
    startTLS: false,
    plaintext: true,
    bindDN: SERVICE_DN,
    bindPassword: SERVICE_PASSWORD,
    baseDN: BASE_DN,
    userFilter: "(&(objectClass=inetOrgPerson)(uid={username}))",
    phoneAttribute: "mobile",
    emailAttribute: "mail",
    allowTypePassword: false,
    requiredGroups: [],
    defaultType: "totp",
    timeoutMs: 3000,
    reply: [],
    region: "SE",
  };
}

d("pipelined service connections", () => {
  let slapd: Slapd;
  let relay: Relay;

  beforeAll(async () => {
    slapd = await startSlapd();
    relay = new Relay(slapd.port);
    await relay.listen();
  });
  afterAll(async () => {
    relay?.close();
    await slapd?.stop();
  });

  test("answers in reverse order reach the right callers; an error answer fails only its own request", async () => {
    const logged: string[] = [];
    const dir = createLdapDirectory(profile(`ldap://127.0.0.1:${relay.port}`), { poolSize: 1, pipeline: 8, log: (_l, e) => logged.push(e) });
    try {
      const bob = (await dir.findUser("bob"))!; // opens the one service connection, learns the server kind
      const reordered = relay.hold(5, "reverse");
      const [alice, nobody, asa, change, bob2] = await Promise.all([
        dir.findUser("alice"),
        dir.findUser("nobody"),
        dir.findUser("åsa"),
        dir.changePassword(bob, "not-the-old-one", "Bob-New-Passw0rd-1"), // RFC 3062 refused: an LDAP error answer
        dir.findUser("bob"),
      ]);
      await reordered;
      expect(relay.delivered).toHaveLength(5);
      expect(relay.delivered).toEqual([...relay.delivered].sort((x, y) => y - x));
      expect([alice?.username, nobody, asa?.username, bob2?.id]).toEqual(["alice", undefined, "åsa", bob.id]);
      expect(alice!.dn).toBe(`uid=alice,ou=people,${BASE_DN}`);
      expect(change).toMatchObject({ ok: false, reason: "bad_credentials" });
      // The searches on the one search connection, the password change on the one service
      // connection; both stay healthy.
      expect(dir.searchConnections).toMatchObject({ opened: 1, discarded: 0, busy: 0, inFlight: 0, idle: 1 });
      expect(dir.poolStats()).toMatchObject({ opened: 1, discarded: 0, busy: 0, inFlight: 0, idle: 1 });
      expect(logged).toEqual([]);
      // And the password checks still work beside it.
      expect(await dir.verifyPassword(alice!, PASSWORDS.alice)).toEqual({ ok: true });
    } finally {
      await dir.close();
    }
  });

  test("the server cutting a connection with pipelined searches outstanding: each search is retried once on a new connection", async () => {
    const logged: string[] = [];
    const dir = createLdapDirectory(profile(`ldap://127.0.0.1:${relay.port}`), { poolSize: 1, pipeline: 8, log: (_l, e) => logged.push(e) });
    try {
      await dir.findUser("bob");
      const cut = relay.hold(4, "cut");
      const names = ["alice", "bob", "åsa", "nobody"];
      const found = await Promise.all(names.map((n) => dir.findUser(n)));
      await cut;
      expect(found.map((u) => u?.username)).toEqual(["alice", "bob", "åsa", undefined]);
      // One connection cut (discarded once, not once per search), one new one for the retries.
      expect(dir.searchConnections).toMatchObject({ opened: 2, discarded: 1, busy: 0, inFlight: 0 });
      expect(logged.filter((e) => e === "ldap.operation_failed").length).toBeGreaterThanOrEqual(1);
    } finally {
      await dir.close();
    }
  });

  test("pipeline = 1 sends one request at a time on each connection", async () => {
    const dir = createLdapDirectory(profile(slapd.url), { poolSize: 2, pipeline: 1 });
    try {
      const found = await Promise.all(["alice", "bob", "åsa", "alice", "bob", "åsa"].map((n) => dir.findUser(n)));
      expect(found.every((u) => u !== undefined)).toBe(true);
      const s = dir.searchConnections;
      expect(s.opened).toBeLessThanOrEqual(2);
      expect(s.leases).toBeGreaterThanOrEqual(6);
    } finally {
      await dir.close();
    }
  });
});
