import { beforeEach, describe, expect, test } from "bun:test";
import type { SqliteStore } from "../../../../src/store/sqlite/store.ts";
import { GROUP_COMMIT_MAX } from "../../../../src/store/sqlite/tokens.ts";
import { type Challenge, DEFAULT_CLIENT_PHONE, type FailurePolicy, NetworkTakenError, type UserImportRow } from "../../../../src/store/types.ts";
import { BACKENDS, newClient, newToken, newUser, openIn, storesPerTest, storeError, runOn } from "../helpers.ts";

for (const backend of BACKENDS) {
  describe(backend, () => {
    /** A test of SQLite internals (its file, its group commit, its raw handle). */
    const onlySqlite = runOn(backend);

    let store: SqliteStore;
    const NOW = 1_700_000_000_000;

    const stores = storesPerTest({ now: () => NOW });
    beforeEach(async () => {
      store = await stores.open();
    });

    describe("clients", () => {
      test("add, findByName, list, remove", async () => {
        const added = await store.clients.add(newClient("vpn"));
        expect(added).toEqual({ ...DEFAULT_CLIENT_PHONE, ...newClient("vpn"), id: added.id, createdAt: NOW });
        await store.clients.add(newClient("fw", { firstFactor: "none", otpMode: "concat", requireMessageAuthenticator: false, allowPasswordOnly: true }));
        expect(await store.clients.findByName("vpn")).toEqual(added);
        expect((await store.clients.list()).map((c) => [c.name, c.firstFactor, c.otpMode, c.requireMessageAuthenticator, c.allowPasswordOnly])).toEqual([
          ["fw", "none", "concat", false, true],
          ["vpn", "password", "challenge", true, false],
        ]);
        expect(await store.clients.remove("vpn")).toBe(true);
        expect(await store.clients.remove("vpn")).toBe(false);
        expect(await store.clients.findByName("vpn")).toBeUndefined();
      });

      test("phone settings: defaults, given at add, changed by updatePhone (which bumps the generation), refused out of range by the schema", async () => {
        const plain = await store.clients.add(newClient("vpn"));
        expect([plain.approvalHoldS, plain.approvalMode, plain.approvalNumberMatch, plain.smsCodeLength, plain.smsCodeAlphabet]).toEqual([25, "hold", false, null, null]);
        const set = { approvalHoldS: 60, approvalMode: "challenge", approvalNumberMatch: true, smsCodeLength: 8, smsCodeAlphabet: "alphanumeric" } as const;
        await store.clients.add(newClient("fw", { address: "192.0.2.20/32", ...set }));
        expect(await store.clients.findByName("fw")).toMatchObject(set);
        const before = await store.generation();
        expect(await store.clients.updatePhone("vpn", { approvalHoldS: 90, smsCodeLength: 4 })).toMatchObject({ approvalHoldS: 90, approvalMode: "hold", smsCodeLength: 4, smsCodeAlphabet: null });
        expect(await store.generation()).not.toBe(before);
        expect(await store.clients.findByName("vpn")).toMatchObject({ approvalHoldS: 90, approvalMode: "hold", approvalNumberMatch: false, smsCodeLength: 4, smsCodeAlphabet: null });
        expect(await store.clients.updatePhone("vpn", { smsCodeLength: null, smsCodeAlphabet: "alphabetic" })).toMatchObject({ smsCodeLength: null, smsCodeAlphabet: "alphabetic" });
        expect(await store.clients.updatePhone("nobody", { approvalHoldS: 30 })).toBeUndefined();
        // the CHECK constraints back the CLI's and the API's own range checks
        await expect(store.clients.updatePhone("vpn", { approvalHoldS: 121 })).rejects.toThrow();
        await expect(store.clients.updatePhone("vpn", { approvalHoldS: 4 })).rejects.toThrow();
      });

      test("duplicate name is a conflict that names the client but not the secret", async () => {
        await store.clients.add(newClient("vpn"));
        const err = await storeError(store.clients.add(newClient("vpn", { secret: "another-secret-value" })));
        expect(err.code).toBe("conflict");
        expect(err.message).toBe("client 'vpn' exists");
      });

      test.each([
        ["host bits set", "10.0.0.0/24", "10.0.0.1/24", "10.0.0.0/24"],
        ["a bare address and its /32", "192.0.2.7", "192.0.2.7/32", "192.0.2.7/32"],
        ["IPv4-mapped IPv6", "192.0.2.7/32", "::ffff:192.0.2.7", "192.0.2.7/32"],
        ["IPv4-mapped IPv6 network", "192.0.2.0/24", "::ffff:192.0.2.9/120", "192.0.2.0/24"],
        ["IPv6 written two ways", "2001:db8:0:0:0:0:0:1", "2001:DB8::1/128", "2001:db8::1/128"],
      ])("exactly the same network (%s) is refused, naming the client that has it, never a secret", async (_what, first, second, network) => {
        await store.clients.add(newClient("lan", { address: first }));
        const err = await storeError(store.clients.add(newClient("dup", { address: second, secret: "another-secret-value" })));
        expect(err).toBeInstanceOf(NetworkTakenError);
        expect({ code: err.code, network: (err as NetworkTakenError).network, client: (err as NetworkTakenError).client }).toEqual({ code: "network_taken", network, client: "lan" });
        expect(err.message).not.toContain("secret-value");
        expect(err.message).not.toContain("shared-secret-of-lan");
        expect((await store.clients.list()).map((c) => c.name)).toEqual(["lan"]);
      });

      test("overlapping networks are allowed (the narrower one is matched first); a name conflict is still a conflict", async () => {
        await store.clients.add(newClient("lan", { address: "10.0.0.0/8" }));
        await store.clients.add(newClient("site", { address: "10.1.0.0/16" }));
        await store.clients.add(newClient("fw", { address: "10.1.2.3" }));
        expect((await store.clients.list()).map((c) => c.name)).toEqual(["fw", "lan", "site"]);
        expect((await storeError(store.clients.add(newClient("lan", { address: "10.0.0.0/8" })))).code).toBe("conflict");
      });

      onlySqlite("the shared secret is not stored in plaintext", async () => {
        await store.clients.add(newClient("vpn"));
        const bytes = await Bun.file(`${stores.dir}/portcullis.db`).bytes();
        const wal = await Bun.file(`${stores.dir}/portcullis.db-wal`).bytes();
        const needle = Buffer.from("shared-secret-of-vpn");
        expect(Buffer.from(bytes).includes(needle) || Buffer.from(wal).includes(needle)).toBe(false);
      });
    });

    describe("users", () => {
      test("add, findByName, findById, count, list", async () => {
        const alice = await store.users.add(newUser("alice", { phone: "+46701234567", email: "a@example.com", passwordHash: "$argon2id$x" }));
        const bob = await store.users.add(newUser("bob", { type: "password", disabled: true, expiresAt: NOW + 1000 }));
        expect(alice).toEqual({ ...newUser("alice", { phone: "+46701234567", email: "a@example.com", passwordHash: "$argon2id$x" }), id: alice.id, createdAt: NOW });
        expect(await store.users.findByName("alice")).toEqual(alice);
        expect(await store.users.findById(bob.id)).toEqual(bob);
        expect(await store.users.findByName("carol")).toBeUndefined();
        expect(await store.users.findById(9999)).toBeUndefined();
        expect(await store.users.count()).toBe(2);
        expect((await store.users.list()).map((u) => u.username)).toEqual(["alice", "bob"]);
      });

      test("duplicate username is a conflict", async () => {
        await store.users.add(newUser("alice"));
        const err = await storeError(store.users.add(newUser("alice")));
        expect([err.code, err.message]).toEqual(["conflict", "user 'alice' exists"]);
      });

      test("update sets only the given fields, including to null", async () => {
        const u = await store.users.add(newUser("alice", { phone: "+46701234567", email: "a@example.com" }));
        await store.users.update(u.id, { phone: null, disabled: true, type: "concatenated" });
        expect(await store.users.findById(u.id)).toEqual({ ...u, phone: null, disabled: true, type: "concatenated" });
        await store.users.update(u.id, { passwordHash: "$2b$hash", expiresAt: 5, username: "alice2", disabled: false });
        expect(await store.users.findById(u.id)).toEqual({
          ...u,
          phone: null,
          type: "concatenated",
          passwordHash: "$2b$hash",
          expiresAt: 5,
          username: "alice2",
        });
        await store.users.update(u.id, {});
        expect((await store.users.findById(u.id))!.username).toBe("alice2");
      });

      test("update: unknown id is not_found, taken username is a conflict", async () => {
        await store.users.add(newUser("alice"));
        const bob = await store.users.add(newUser("bob"));
        expect((await storeError(store.users.update(9999, { disabled: true }))).code).toBe("not_found");
        expect((await storeError(store.users.update(bob.id, { username: "alice" }))).code).toBe("conflict");
      });

      test("remove unassigns tokens and drops challenges", async () => {
        const u = await store.users.add(newUser("alice"));
        const t = await store.tokens.add(newToken("T1", { userId: u.id }));
        await store.challenges.put(challenge("c1", u.id));
        expect(await store.users.remove("alice")).toBe(true);
        expect(await store.users.remove("alice")).toBe(false);
        expect((await store.tokens.findById(t.id))!.userId).toBeNull();
        expect(await store.challenges.find("c1", NOW)).toBeUndefined();
      });
    });

    describe("users.importMany", () => {
      const rows = (n: number, prefix = "user"): UserImportRow[] =>
        Array.from({ length: n }, (_, i) => ({
          user: newUser(`${prefix}${i}`, { passwordHash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA" }),
          tokens: i % 2 === 0 ? [newToken(`${prefix.toUpperCase()}-${i}`)] : [],
        }));

      test("10k users with tokens in one transaction, with progress", async () => {
        const progress: number[] = [];
        await store.users.importMany(rows(10_000), (done) => progress.push(done));
        expect(await store.users.count()).toBe(10_000);
        expect((await store.tokens.list()).length).toBe(5_000);
        const u = (await store.users.findByName("user42"))!;
        const tokens = await store.tokens.activeForUser(u.id);
        expect(tokens.map((t) => t.serial)).toEqual(["USER-42"]);
        expect(tokens[0]!.secret).toEqual(newToken("USER-42").secret);
        expect(progress.at(-1)).toBe(10_000);
        expect(progress.length).toBe(10);
      }, 60_000);

      test("a username that already exists: conflict, and nothing imported", async () => {
        await store.users.add(newUser("user500"));
        const err = await storeError(store.users.importMany(rows(1000)));
        expect([err.code, err.message]).toEqual(["conflict", "user 'user500' exists"]);
        expect(await store.users.count()).toBe(1);
        expect(await store.tokens.list()).toEqual([]);
      });

      test("a duplicate within the file: conflict, and nothing imported", async () => {
        const r = rows(100);
        r.push({ user: newUser("user7"), tokens: [] });
        expect((await storeError(store.users.importMany(r))).message).toBe("user 'user7' exists");
        expect(await store.users.count()).toBe(0);
      });

      test("a duplicate token serial: conflict, and nothing imported", async () => {
        await store.tokens.add(newToken("USER-8"));
        const err = await storeError(store.users.importMany(rows(100)));
        expect([err.code, err.message]).toEqual(["conflict", "token 'USER-8' exists"]);
        expect(await store.users.count()).toBe(0);
        expect((await store.tokens.list()).length).toBe(1);
      });
    });

    describe("tokens", () => {
      test("add, findById, findBySerial, list, list by user", async () => {
        const u = await store.users.add(newUser("alice"));
        const t1 = await store.tokens.add(newToken("T1", { userId: u.id }));
        const t2 = await store.tokens.add(newToken("H1", { kind: "hotp", counter: 5, algorithm: "SHA256", digits: 8 }));
        expect(t1).toEqual({ ...newToken("T1", { userId: u.id }), id: t1.id, counter: 0, lastStep: -1, drift: 0, createdAt: NOW });
        expect(await store.tokens.findById(t1.id)).toEqual(t1);
        expect(await store.tokens.findBySerial("H1")).toEqual(t2);
        expect(await store.tokens.findBySerial("nope")).toBeUndefined();
        expect((await store.tokens.list()).map((t) => t.serial)).toEqual(["T1", "H1"]);
        expect((await store.tokens.list(u.id)).map((t) => t.serial)).toEqual(["T1"]);
      });

      test("duplicate serial is a conflict; unknown user is not_found", async () => {
        await store.tokens.add(newToken("T1"));
        expect((await storeError(store.tokens.add(newToken("T1")))).code).toBe("conflict");
        expect((await storeError(store.tokens.add(newToken("T2", { userId: 777 })))).code).toBe("not_found");
      });

      test("activeForUser returns only active tokens of that user", async () => {
        const a = await store.users.add(newUser("alice"));
        const b = await store.users.add(newUser("bob"));
        const t1 = await store.tokens.add(newToken("T1", { userId: a.id }));
        const t2 = await store.tokens.add(newToken("T2", { userId: a.id }));
        await store.tokens.add(newToken("T3", { userId: a.id, state: "lost" }));
        await store.tokens.add(newToken("T4", { userId: b.id }));
        await store.tokens.setState(t2.id, "disabled");
        expect((await store.tokens.activeForUser(a.id)).map((t) => t.serial)).toEqual(["T1"]);
        await store.tokens.setState(t2.id, "active");
        expect((await store.tokens.activeForUser(a.id)).map((t) => t.serial).sort()).toEqual(["T1", "T2"]);
        await store.tokens.assign(t1.id, b.id);
        expect((await store.tokens.activeForUser(b.id)).map((t) => t.serial).sort()).toEqual(["T1", "T4"]);
        await store.tokens.assign(t1.id, null);
        expect((await store.tokens.findById(t1.id))!.userId).toBeNull();
      });

      test("assign/setState/resync on a missing token are not_found; assign to a missing user too", async () => {
        const t = await store.tokens.add(newToken("T1"));
        expect((await storeError(store.tokens.assign(999, null))).code).toBe("not_found");
        expect((await storeError(store.tokens.assign(t.id, 999))).code).toBe("not_found");
        expect((await storeError(store.tokens.setState(999, "lost"))).code).toBe("not_found");
        expect((await storeError(store.tokens.resync(999, { counter: 1 }))).code).toBe("not_found");
      });

      test("remove", async () => {
        const t = await store.tokens.add(newToken("T1"));
        expect(await store.tokens.remove(t.id)).toBe(true);
        expect(await store.tokens.remove(t.id)).toBe(false);
      });

      test("addMany is all or nothing", async () => {
        await store.tokens.add(newToken("X3"));
        const err = await storeError(store.tokens.addMany([newToken("X1"), newToken("X2"), newToken("X3")]));
        expect([err.code, err.message]).toEqual(["conflict", "token 'X3' exists"]);
        expect((await store.tokens.list()).map((t) => t.serial)).toEqual(["X3"]);
        const added = await store.tokens.addMany([newToken("X1"), newToken("X2")]);
        expect(added.map((t) => t.serial)).toEqual(["X1", "X2"]);
      });

      test("TOTP high-water mark: only a higher step advances", async () => {
        const t = await store.tokens.add(newToken("T1"));
        const steps: [number, number, boolean][] = [
          [100, 0, true], // first use
          [100, 0, false], // same step again: replay
          [99, -1, false], // older step inside the window: replay too
          [101, 1, true],
          [50, 0, false],
        ];
        for (const [step, drift, expected] of steps) expect(await store.tokens.advanceTOTP(t.id, step, drift)).toBe(expected);
        const after = (await store.tokens.findById(t.id))!;
        expect([after.lastStep, after.drift]).toEqual([101, 1]);
        expect(await store.tokens.advanceTOTP(999, 500, 0)).toBe(false);
      });

      test("two Store instances on one file racing for one step: exactly one wins", async () => {
        const t = await store.tokens.add(newToken("T1"));
        const other = await openIn(stores.dir);
        try {
          for (let step = 0; step < 50; step++) {
            const results = await Promise.all([store.tokens.advanceTOTP(t.id, step, 0), other.tokens.advanceTOTP(t.id, step, 0)]);
            expect(results.filter(Boolean).length).toBe(1);
          }
        } finally {
          await other.close();
        }
      });

      onlySqlite(`writes of one turn share a commit, which closes at ${GROUP_COMMIT_MAX} writes without waiting for the turn to end`, async () => {
        const tokens = [];
        for (let i = 0; i <= GROUP_COMMIT_MAX; i++) tokens.push(await store.tokens.add(newToken(`G${i}`)));
        const settled: boolean[] = [];
        const writes = tokens.map((t, i) => store.tokens.advanceTOTP(t.id, 100, 0).then((ok) => void (settled[i] = ok)));
        // the first GROUP_COMMIT_MAX are committed and settled already: only microtasks have run
        for (let i = 0; i < 5; i++) await Promise.resolve();
        expect(settled.filter((ok) => ok).length).toBe(GROUP_COMMIT_MAX);
        expect(settled[GROUP_COMMIT_MAX]).toBeUndefined(); // the last one waits for the end of the turn
        await Promise.all(writes);
        expect(settled.every((ok) => ok)).toBe(true);
        expect((await store.tokens.findById(tokens[GROUP_COMMIT_MAX]!.id))!.lastStep).toBe(100);
      });

      test("two uses of one step in the same commit: exactly one wins, at every position in the group", async () => {
        const t = await store.tokens.add(newToken("T1"));
        const others = [];
        for (let i = 0; i < GROUP_COMMIT_MAX; i++) others.push(await store.tokens.add(newToken(`O${i}`)));
        for (let step = 1; step <= GROUP_COMMIT_MAX; step++) {
          // calls in this order: step-1 other tokens, the pair, the rest; at step = GROUP_COMMIT_MAX the
          // pair straddles the boundary between two commits, elsewhere it sits inside one
          const before = others.slice(0, step - 1).map((o) => store.tokens.advanceTOTP(o.id, step, 0));
          const pair = [store.tokens.advanceTOTP(t.id, step, 0), store.tokens.advanceTOTP(t.id, step, 0)];
          const after = others.slice(step - 1).map((o) => store.tokens.advanceTOTP(o.id, step, 0));
          expect((await Promise.all(pair)).filter(Boolean).length).toBe(1);
          expect((await Promise.all([...before, ...after])).every(Boolean)).toBe(true);
        }
      });

      test("HOTP counter: only a higher counter advances", async () => {
        const t = await store.tokens.add(newToken("H1", { kind: "hotp", counter: 3 }));
        expect(await store.tokens.advanceHOTP(t.id, 3)).toBe(false);
        expect(await store.tokens.advanceHOTP(t.id, 4)).toBe(true);
        expect(await store.tokens.advanceHOTP(t.id, 4)).toBe(false);
        expect(await store.tokens.advanceHOTP(t.id, 10)).toBe(true);
        expect(await store.tokens.advanceHOTP(t.id, 9)).toBe(false);
        expect((await store.tokens.findById(t.id))!.counter).toBe(10);
      });

      test("resync sets the given values unconditionally, leaves the rest", async () => {
        const t = await store.tokens.add(newToken("T1"));
        await store.tokens.advanceTOTP(t.id, 1000, 0);
        await store.tokens.resync(t.id, { lastStep: 900, drift: -3 });
        expect(await store.tokens.findById(t.id)).toEqual({ ...t, lastStep: 900, drift: -3 });
        await store.tokens.resync(t.id, { counter: 42 });
        expect(await store.tokens.findById(t.id)).toEqual({ ...t, lastStep: 900, drift: -3, counter: 42 });
      });
    });

    function challenge(id: string, userId: number, patch: Partial<Challenge> = {}): Challenge {
      return { id, clientName: "vpn", userId, username: "alice", expiresAt: NOW + 60_000, failures: 0, data: '{"leg":2}', ...patch };
    }

    describe("challenges", () => {
      let userId: number;
      beforeEach(async () => {
        userId = (await store.users.add(newUser("alice"))).id;
      });

      test("put, find, consume once", async () => {
        const c = challenge("c1", userId);
        await store.challenges.put(c);
        expect(await store.challenges.find("c1", NOW)).toEqual(c);
        expect(await store.challenges.find("c1", NOW)).toEqual(c); // find does not consume
        expect(await store.challenges.consume("c1", NOW)).toEqual(c);
        expect(await store.challenges.consume("c1", NOW)).toBeUndefined();
        expect(await store.challenges.find("c1", NOW)).toBeUndefined();
      });

      test("two stores consuming the same challenge: exactly one gets it", async () => {
        const other = await openIn(stores.dir);
        try {
          for (let i = 0; i < 20; i++) {
            await store.challenges.put(challenge(`c${i}`, userId));
            const got = await Promise.all([store.challenges.consume(`c${i}`, NOW), other.challenges.consume(`c${i}`, NOW)]);
            expect(got.filter(Boolean).length).toBe(1);
          }
        } finally {
          await other.close();
        }
      });

      test.each([
        ["one ms before expiry", -1, true],
        ["at expiry", 0, false],
        ["after expiry", 1, false],
      ])("expiry: %s", async (_name, offset, live) => {
        const c = challenge("c1", userId);
        await store.challenges.put(c);
        const at = c.expiresAt + offset;
        expect((await store.challenges.find("c1", at)) !== undefined).toBe(live);
        expect((await store.challenges.consume("c1", at)) !== undefined).toBe(live);
      });

      test("put replaces; fail counts; purgeExpired removes only expired", async () => {
        await store.challenges.put(challenge("c1", userId));
        await store.challenges.put(challenge("c1", userId, { data: "{}" }));
        expect((await store.challenges.find("c1", NOW))!.data).toBe("{}");
        expect(await store.challenges.fail("c1")).toBe(1);
        expect(await store.challenges.fail("c1")).toBe(2);
        expect(await store.challenges.fail("missing")).toBeUndefined();
        expect((await store.challenges.find("c1", NOW))!.failures).toBe(2);
        await store.challenges.put(challenge("old", userId, { expiresAt: NOW - 1 }));
        await store.challenges.put(challenge("edge", userId, { expiresAt: NOW }));
        expect(await store.challenges.purgeExpired(NOW)).toBe(2);
        expect(await store.challenges.purgeExpired(NOW)).toBe(0);
        expect(await store.challenges.find("c1", NOW)).toBeDefined();
      });
    });

    describe("lockouts", () => {
      const backoff: FailurePolicy = {
        staleBefore: NOW - 60_000,
        lockedUntil: (scope, failures) => (scope === "identity" ? (failures >= 4 ? NOW + 60_000 : 0) : failures >= 3 ? NOW + 1000 * 2 ** failures : 0),
      };
      const SRC = "csid:203.0.113.7";

      test("recordFailure counts per identity, kind and source, and across sources, with the policy's lockedUntil", async () => {
        expect(await store.lockouts.get("alice", "password")).toBeUndefined();
        expect(await store.lockouts.recordFailure("alice", "password", SRC, NOW, backoff)).toEqual({
          source: { key: "alice", kind: "password", source: SRC, failures: 1, lockedUntil: 0, lastFailureAt: NOW },
          identity: { key: "alice", kind: "password", source: "", failures: 1, lockedUntil: 0, lastFailureAt: NOW },
        });
        await store.lockouts.recordFailure("alice", "password", SRC, NOW + 1, backoff);
        const third = await store.lockouts.recordFailure("alice", "password", SRC, NOW + 2, backoff);
        expect(third.source).toEqual({ key: "alice", kind: "password", source: SRC, failures: 3, lockedUntil: NOW + 8000, lastFailureAt: NOW + 2 });
        expect(await store.lockouts.get("alice", "password", SRC)).toEqual(third.source);
        const other = await store.lockouts.recordFailure("alice", "password", "nas:vpn", NOW + 3, backoff);
        expect(other.source.failures).toBe(1);
        expect(other.identity).toEqual({ key: "alice", kind: "password", source: "", failures: 4, lockedUntil: NOW + 60_000, lastFailureAt: NOW + 3 });
        expect(await store.lockouts.get("alice", "password")).toEqual(other.identity);
        await store.lockouts.recordFailure("alice", "code", SRC, NOW, backoff);
        expect((await store.lockouts.get("alice", "code"))!.failures).toBe(1);
        expect(await store.lockouts.get("bob", "password")).toBeUndefined();
        expect((await store.lockouts.list("alice")).map((s) => `${s.kind} ${s.source} ${s.failures}`)).toEqual([
          "code  1",
          `code ${SRC} 1`,
          "password  4",
          `password ${SRC} 3`,
          "password nas:vpn 1",
        ]);
        await expect(store.lockouts.recordFailure("alice", "code", "", NOW, backoff)).rejects.toThrow(TypeError);
      });

      test("a counter whose last failure is before staleBefore restarts from one", async () => {
        await store.lockouts.recordFailure("alice", "password", SRC, NOW, backoff);
        await store.lockouts.recordFailure("alice", "password", SRC, NOW, backoff);
        const later = { ...backoff, staleBefore: NOW + 1 };
        const r = await store.lockouts.recordFailure("alice", "password", SRC, NOW + 100_000, later);
        expect([r.source.failures, r.identity.failures]).toEqual([1, 1]);
      });

      test("reset clears one counter; clear clears every kind and source and says whether anything was there", async () => {
        await store.lockouts.recordFailure("alice", "password", SRC, NOW, backoff);
        await store.lockouts.recordFailure("alice", "code", SRC, NOW, backoff);
        await store.lockouts.reset("alice", "password", SRC);
        expect(await store.lockouts.get("alice", "password", SRC)).toBeUndefined();
        expect(await store.lockouts.get("alice", "password")).toBeDefined();
        await store.lockouts.reset("alice", "password");
        expect(await store.lockouts.get("alice", "password")).toBeUndefined();
        expect(await store.lockouts.get("alice", "code", SRC)).toBeDefined();
        expect(await store.lockouts.clear("alice")).toBe(true);
        expect(await store.lockouts.list("alice")).toEqual([]);
        expect(await store.lockouts.clear("alice")).toBe(false);
      });

      test("known sources: upserted, newest first, bounded per identity, expired ones forgotten", async () => {
        expect(await store.lockouts.knownSource("alice", SRC)).toBeUndefined();
        const bounds = { keep: 3, forgetBefore: NOW - 10_000 };
        await store.lockouts.recordSuccess("alice", SRC, NOW, bounds);
        expect(await store.lockouts.knownSource("alice", SRC)).toBe(NOW);
        for (const [i, s] of ["nas:a", "nas:b", "nas:c"].entries()) await store.lockouts.recordSuccess("alice", s, NOW + 1 + i, bounds);
        // the oldest of four went: three kept
        expect((await store.lockouts.knownSources("alice")).map((k) => k.source)).toEqual(["nas:c", "nas:b", "nas:a"]);
        await store.lockouts.recordSuccess("alice", "nas:a", NOW + 10, bounds);
        expect(await store.lockouts.knownSources("alice")).toEqual([
          { key: "alice", source: "nas:a", lastSuccessAt: NOW + 10 },
          { key: "alice", source: "nas:c", lastSuccessAt: NOW + 3 },
          { key: "alice", source: "nas:b", lastSuccessAt: NOW + 2 },
        ]);
        // an older success never moves a record back
        await store.lockouts.recordSuccess("alice", "nas:a", NOW, bounds);
        expect(await store.lockouts.knownSource("alice", "nas:a")).toBe(NOW + 10);
        // a success long after forgets what expired for this identity
        await store.lockouts.recordSuccess("alice", SRC, NOW + 100_000, { keep: 3, forgetBefore: NOW + 5 });
        expect((await store.lockouts.knownSources("alice")).map((k) => k.source)).toEqual([SRC, "nas:a"]);
        await store.lockouts.recordSuccess("bob", SRC, NOW, bounds);
        expect(await store.lockouts.forgetSources(NOW + 50)).toBe(2);
        expect(await store.lockouts.knownSources()).toEqual([{ key: "alice", source: SRC, lastSuccessAt: NOW + 100_000 }]);
      });

      test("known-source writes of one turn share commits (more than one group of them), each applied in order", async () => {
        const bounds = { keep: 2, forgetBefore: 0 };
        const writes = Array.from({ length: GROUP_COMMIT_MAX + 8 }, (_, i) => store.lockouts.recordSuccess(`u${i % 20}`, `nas:${i}`, NOW + i, bounds));
        await Promise.all(writes);
        const known = await store.lockouts.knownSources();
        expect(known.length).toBe(40); // 20 identities, two sources each
        expect(known.filter((k) => k.key === "u0").map((k) => k.source)).toEqual(["nas:20", "nas:0"]);
      });

      test("failures recorded through two stores add up", async () => {
        const other = await openIn(stores.dir);
        try {
          await Promise.all([
            store.lockouts.recordFailure("alice", "code", SRC, NOW, backoff),
            other.lockouts.recordFailure("alice", "code", SRC, NOW, backoff),
            store.lockouts.recordFailure("alice", "code", "nas:vpn", NOW, backoff),
          ]);
          expect((await other.lockouts.get("alice", "code"))!.failures).toBe(3);
          expect((await other.lockouts.get("alice", "code", SRC))!.failures).toBe(2);
        } finally {
          await other.close();
        }
      });
    });

    describe("generation and writable", () => {
      test("changes after a commit by another Store instance (the CLI beside the server)", async () => {
        const g0 = await store.generation();
        expect(await store.generation()).toBe(g0);
        const cli = await openIn(stores.dir);
        try {
          await cli.users.add(newUser("alice"));
          const g1 = await store.generation();
          expect(g1).not.toBe(g0);
          expect(await store.generation()).toBe(g1);
          await cli.clients.add(newClient("vpn"));
          expect(await store.generation()).not.toBe(g1);
        } finally {
          await cli.close();
        }
      });

      test("changes after this connection's own admin writes, not after its OTP writes", async () => {
        const g0 = await store.generation();
        const u = await store.users.add(newUser("alice"));
        const g1 = await store.generation();
        expect(g1).not.toBe(g0);
        const t = await store.tokens.add(newToken("T1", { userId: u.id }));
        const g2 = await store.generation();
        expect(g2).not.toBe(g1);
        await store.tokens.advanceTOTP(t.id, 5, 0);
        await store.challenges.put(challenge("c1", u.id));
        expect(await store.generation()).toBe(g2);
      });

      test("writable() is true on an open store and false once closed", async () => {
        expect(await store.writable()).toBe(true);
        const other = await openIn(stores.dir);
        await other.close();
        expect(await other.writable()).toBe(false);
      });
    });
  });
}
