// The login path's connections on Bun's own sockets (src/directory/ldap/native.ts) against a real
// slapd: ldap://, StartTLS and ldaps:// carry the codec and return what ldapts returns; a
// certificate from another CA or for another host name is refused on LDAPS and on StartTLS; a
// StartTLS the server refuses or never completes fails the connection with nothing sent in the
// clear but the StartTLS request; connecting is bounded by the profile's timeout.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { discard, loadCA, openConnection } from "../../src/directory/ldap/connection.ts";
import { userFilter } from "../../src/directory/ldap/escape.ts";
import { openLoginConnection } from "../../src/directory/ldap/login-pool.ts";
import { nativeSockets, openNative, STARTTLS_OID } from "../../src/directory/ldap/native.ts";
import { BerIn, BerOut, frameLength } from "../../src/directory/ldap/wire.ts";
import type { LdapProfile } from "../../src/directory/types.ts";
import { BASE_DN, opensslPath, PASSWORDS, PEOPLE, runSlapdTests, SERVICE_DN, SERVICE_PASSWORD, startSlapd, type Slapd } from "./helpers/slapd.ts";

const d = runSlapdTests ? describe : describe.skip;

/** A loopback TCP listener whose connections run `onConnection` (a proxy, a fake LDAP server, a silent peer). */
async function listen(host: string, onConnection: (s: net.Socket) => void): Promise<{ port: number; close: () => void; sockets: Set<net.Socket> }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((s) => {
    sockets.add(s);
    s.on("error", () => {});
    s.on("close", () => sockets.delete(s));
    onConnection(s);
  });
  await new Promise<void>((r) => server.listen(0, host, r));
  return {
    port: (server.address() as net.AddressInfo).port,
    sockets,
    close: () => {
      for (const s of sockets) s.destroy();
      server.close();
    },
  };
}

/** The LDAPMessages a fake server received: message ID and operation tag (and the extended request's name). */
type Seen = { id: number; op: number; oid?: string };

function reader(s: net.Socket, onMessage: (m: Seen) => void): void {
  let buf = Buffer.alloc(0);
  s.on("data", (chunk: Buffer) => {
    buf = Buffer.concat([buf, chunk]);
    for (;;) {
      const n = frameLength(buf);
      if (n < 0) break;
      const m = new BerIn(buf, 0, n).enter(0x30);
      const id = m.int(0x02);
      const op = m.peek();
      let oid: string | undefined;
      if (op === 0x77) oid = m.enter(0x77).string(0x80);
      onMessage({ id, op, ...(oid !== undefined ? { oid } : {}) });
      buf = buf.subarray(n);
    }
  });
}

/** An ExtendedResponse with a result code. */
function extendedResponse(id: number, code: number): Buffer {
  return new BerOut().start(0x30).int(0x02, id).start(0x78).int(0x0a, code).octets(0x04, "").octets(0x04, code === 0 ? "" : "no").end().end().bytes();
}

d("login connections on Bun's sockets against slapd", () => {
  let slapd: Slapd;
  let otherCA: string;
  let dir: string;
  beforeAll(async () => {
    slapd = await startSlapd();
    // A CA that did not sign slapd's certificate.
    dir = mkdtempSync(join(tmpdir(), "portcullis-native-"));
    const r = spawnSync(opensslPath!, ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", join(dir, "k.pem"), "-out", join(dir, "ca.pem"), "-days", "2", "-subj", "/CN=Another Test CA", "-addext", "basicConstraints=critical,CA:TRUE"], { encoding: "utf8", timeout: 20_000 });
    if (r.status !== 0) throw new Error(`openssl failed: ${r.stderr}`);
    otherCA = readFileSync(join(dir, "ca.pem"), "utf8");
  });
  afterAll(async () => {
    await slapd?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const profile = (over: Partial<LdapProfile>): LdapProfile =>
    ({ name: "corp", urls: [slapd.url], startTLS: false, plaintext: true, timeoutMs: 3000, bindDN: SERVICE_DN, bindPassword: SERVICE_PASSWORD, baseDN: BASE_DN, ...over }) as LdapProfile;
  const transports = () => [
    { name: "ldap://", p: profile({}), url: slapd.url },
    { name: "StartTLS", p: profile({ startTLS: true, plaintext: false, caFile: slapd.caFile }), url: slapd.url },
    { name: "ldaps://", p: profile({ plaintext: false, caFile: slapd.caFile, urls: [slapd.ldapsUrl] }), url: slapd.ldapsUrl },
  ];
  const attributes = ["entryUUID", "pwdAccountLockedTime", "pwdReset", "pwdChangedTime", "pwdPolicySubentry", "mobile", "mail", "employeeType", "employeeNumber", "objectGUID"];

  test("Bun's sockets are what the login path uses here", () => {
    expect(nativeSockets).toBe(true);
  });

  test("search and bind on each transport: the entries ldapts returns, slapd's result codes and password policy control", async () => {
    for (const { name, p, url } of transports()) {
      const c = await openNative(p, url, loadCA(p));
      const ref = await openConnection(p, url, loadCA(p));
      try {
        expect({ name, secure: c.secure }).toEqual({ name, secure: name !== "ldap://" });
        expect((await c.wire.bind(SERVICE_DN, SERVICE_PASSWORD)).code).toBe(0);
        await ref.client.bind(SERVICE_DN, SERVICE_PASSWORD);
        for (const user of ["alice", "åsa", "erin", "nobody", "a*"]) {
          const filter = userFilter("(&(objectClass=inetOrgPerson)(uid={username}))", user);
          const options = { scope: "sub" as const, filter, sizeLimit: 2, attributes, explicitBufferAttributes: ["objectGUID"] };
          const [viaNative, viaLdapts] = await Promise.all([c.wire.search(BASE_DN, options), ref.client.search(BASE_DN, options).then((r) => r.searchEntries)]);
          expect({ name, user, entries: viaNative }).toEqual({ name, user, entries: viaLdapts });
        }
        const dn = (u: string) => `uid=${u},${PEOPLE}`;
        expect((await c.wire.bind(dn("alice"), PASSWORDS.alice, { ppolicy: true })).code).toBe(0);
        expect((await c.wire.bind(dn("alice"), "wrong-Passw0rd", { ppolicy: true })).code).toBe(49);
        const locked = await c.wire.bind(dn("erin"), PASSWORDS.erin, { ppolicy: true });
        expect({ code: locked.code, error: locked.ppolicy?.error }).toEqual({ code: 49, error: 1 }); // accountLocked
        expect(c.alive()).toBe(true);
      } finally {
        await c.close();
        await discard(ref.client);
      }
      expect(c.alive()).toBe(false);
    }
  });

  test("openLoginConnection picks Bun's socket and keeps the profile's TLS", async () => {
    const p = profile({ startTLS: true, plaintext: false, caFile: slapd.caFile });
    const c = await openLoginConnection(p, slapd.url, loadCA(p));
    try {
      expect(c.secure).toBe(true);
      expect((await c.wire.bind(`uid=alice,${PEOPLE}`, PASSWORDS.alice)).code).toBe(0);
    } finally {
      await c.close();
    }
  });

  test("a certificate the configured CA (or the system roots) does not sign is refused, on LDAPS and on StartTLS", async () => {
    const cases = [
      { name: "ldaps://, another CA", p: profile({ plaintext: false, urls: [slapd.ldapsUrl] }), url: slapd.ldapsUrl, ca: otherCA },
      { name: "ldaps://, system roots", p: profile({ plaintext: false, urls: [slapd.ldapsUrl] }), url: slapd.ldapsUrl, ca: undefined },
      { name: "StartTLS, another CA", p: profile({ startTLS: true, plaintext: false }), url: slapd.url, ca: otherCA },
      { name: "StartTLS, system roots", p: profile({ startTLS: true, plaintext: false }), url: slapd.url, ca: undefined },
    ];
    for (const { name, p, url, ca } of cases) {
      const err = await openNative(p, url, ca).then(
        async (c) => {
          await c.close();
          return undefined;
        },
        (e: unknown) => e as Error & { code?: string },
      );
      expect({ name, refused: err !== undefined }).toEqual({ name, refused: true });
      expect({ name, code: err?.code }).toEqual({ name, code: expect.stringMatching(/SELF_SIGNED|UNABLE_TO_VERIFY|CERT|ISSUER/) });
    }
  });

  test("a certificate for another host name is refused, on LDAPS and on StartTLS (through a proxy on 127.0.0.2)", async () => {
    const port = Number(new URL(slapd.url).port);
    const proxy = await listen("127.0.0.2", (s) => {
      const up = net.connect(port, "127.0.0.1");
      up.on("error", () => s.destroy());
      s.pipe(up).pipe(s);
    });
    try {
      const cases = [
        { name: "ldaps://", p: profile({ plaintext: false, urls: [slapd.ldapsUrlWrongName], caFile: slapd.caFile }), url: slapd.ldapsUrlWrongName },
        { name: "StartTLS", p: profile({ startTLS: true, plaintext: false, caFile: slapd.caFile }), url: `ldap://127.0.0.2:${proxy.port}` },
      ];
      for (const { name, p, url } of cases) {
        const err = await openNative(p, url, loadCA(p)).then(
          async (c) => {
            await c.close();
            return undefined;
          },
          (e: unknown) => e as Error & { code?: string },
        );
        expect({ name, code: err?.code, message: err?.message }).toEqual({ name, code: "ERR_TLS_CERT_ALTNAME_INVALID", message: expect.stringMatching(/127\.0\.0\.2/) });
      }
      // The same proxy without StartTLS reaches slapd: the refusal above is the certificate's name.
      const plain = await openNative(profile({}), `ldap://127.0.0.2:${proxy.port}`, undefined);
      expect((await plain.wire.bind(SERVICE_DN, SERVICE_PASSWORD)).code).toBe(0);
      await plain.close();
    } finally {
      proxy.close();
    }
  });

  test("StartTLS refused by the server fails the connection: only the StartTLS request was sent, never a bind", async () => {
    const seen: Seen[] = [];
    const fake = await listen("127.0.0.1", (s) => reader(s, (m) => {
      seen.push(m);
      if (m.op === 0x77) s.write(extendedResponse(m.id, 2)); // protocolError
    }));
    try {
      const p = profile({ startTLS: true, plaintext: false, caFile: slapd.caFile });
      const err = await openLoginConnection(p, `ldap://127.0.0.1:${fake.port}`, loadCA(p)).catch((e: unknown) => e as Error);
      expect((err as Error).message).toMatch(/StartTLS refused by the server \(LDAP result 2\)/);
      expect(seen).toEqual([{ id: expect.any(Number), op: 0x77, oid: STARTTLS_OID }]);
    } finally {
      fake.close();
    }
  });

  test("StartTLS accepted but then plaintext or silence: the handshake fails or times out, the connection is refused", async () => {
    // Answers StartTLS with success, then writes plaintext instead of a TLS handshake.
    const liar = await listen("127.0.0.1", (s) => {
      let answered = false;
      s.on("data", (chunk: Buffer) => {
        if (answered) {
          s.write(Buffer.from("not TLS at all\r\n"));
          return;
        }
        answered = true;
        const m = new BerIn(chunk, 0, chunk.length).enter(0x30);
        s.write(extendedResponse(m.int(0x02), 0));
      });
    });
    // Accepts the TCP connection and never says anything (an LDAPS handshake that never completes).
    const silent = await listen("127.0.0.1", () => {});
    try {
      const p = profile({ startTLS: true, plaintext: false, caFile: slapd.caFile, timeoutMs: 1000 });
      const e1 = await openNative(p, `ldap://127.0.0.1:${liar.port}`, loadCA(p)).catch((e: unknown) => e as Error);
      expect(e1).toBeInstanceOf(Error);
      const q = profile({ plaintext: false, caFile: slapd.caFile, timeoutMs: 500 });
      const e2 = await openNative(q, `ldaps://127.0.0.1:${silent.port}`, loadCA(q)).catch((e: unknown) => e as Error);
      expect((e2 as Error).message).toMatch(/timed out after 500 ms/);
      const e3 = await openNative(profile({ startTLS: true, plaintext: false, timeoutMs: 500 }), `ldap://127.0.0.1:${silent.port}`, undefined).catch((e: unknown) => e as Error);
      expect((e3 as Error).message).toMatch(/timed out after 500 ms/);
    } finally {
      liar.close();
      silent.close();
    }
  });

  test("a closed port is the connection error's code; a server that closes the session fails the operations in flight", async () => {
    const err = (await openNative(profile({}), "ldap://127.0.0.1:1", undefined).catch((e: unknown) => e)) as Error & { code?: string };
    expect(err.code).toBe("ECONNREFUSED");
    // Closes every connection on the first request it reads.
    const closer = await listen("127.0.0.1", (s) => reader(s, () => s.destroy()));
    try {
      const c = await openNative(profile({}), `ldap://127.0.0.1:${closer.port}`, undefined);
      await expect(c.wire.bind(SERVICE_DN, SERVICE_PASSWORD)).rejects.toThrow(/closed/);
      expect(c.alive()).toBe(false);
      await c.close();
    } finally {
      closer.close();
    }
  });
});
