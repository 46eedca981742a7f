// The PostgreSQL store end to end: `store check` on both back-ends, `store copy` of a populated
// SQLite appliance into a throwaway PostgreSQL, then TOTP logins through two real `serve` nodes on
// it (a challenge issued by one node completed on the other; a code used on one refused on the other).

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { randomBytes } from "node:crypto";
import { decodeBase32, encodeBase32, totp } from "../../scripts/bench/radius-wire.ts";
import { Appliance, Attr, Code, UDPClient, pap, type ServerProcess } from "./helpers/appliance.ts";
import { POSTGRES_SKIP_REASON, startPostgres, type PostgresServer } from "./helpers/postgres.ts";

const seed = encodeBase32(randomBytes(20));
const secret = `it-${randomBytes(12).toString("hex")}`;
const codeAt = (stepOffset: number) => totp(decodeBase32(seed), { now: Date.now(), stepOffset });

describe.skipIf(POSTGRES_SKIP_REASON !== undefined)("PostgreSQL store end to end", () => {
  let pg: PostgresServer;
  let url: string;
  let app: Appliance;
  const nodes: ServerProcess[] = [];

  beforeAll(async () => {
    pg = await startPostgres();
    url = await pg.createDatabase();
    app = new Appliance();
    await app.cli(["client", "add", "nas", "--address", "127.0.0.1/32", "--secret", secret]);
    await app.cli(["user", "add", "alice", "--password-stdin"], { stdin: "alice-pass-1\n" });
    await app.cli(["token", "add", "alice", "--totp", "--secret", seed]);
  }, 120_000);
  afterAll(async () => {
    await app?.[Symbol.asyncDispose]();
    pg?.destroy();
  });

  test("store check on SQLite: reachable, current schema, writable, exit 0", async () => {
    const r = await app.run(["store", "check"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^driver: sqlite\npath: .*portcullis\.db\nreachable: yes\nschema: \d+ \(this build: \d+; current\)\nwritable: yes\n$/);
  });

  test("store copy moves the data; a second copy into the now non-empty database is refused", async () => {
    const r = await app.run(["store", "copy", "--to-stdin"], { stdin: `${url}\n` });
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("users: 1\n");
    expect(r.stdout).toContain("tokens: 1\n");
    expect(r.stdout).toContain("radius_clients: 1\n");
    expect(r.stdout).not.toContain("test-password");
    const again = await app.run(["store", "copy", "--to", url]);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain("not empty");
    expect(again.stderr).toContain("--replace");
  }, 60_000);

  test("store check on PostgreSQL names the URL without its password", async () => {
    const r = await app.run(["store", "check"], { env: { PORTCULLIS_STORE_URL: url } });
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("driver: postgres\n");
    expect(r.stdout).toContain(`url: postgres://postgres:***@127.0.0.1:${pg.port}/`);
    expect(r.stdout).toContain("reachable: yes\n");
    expect(r.stdout).toContain("writable: yes\n");
    expect(r.stdout + r.stderr).not.toContain("test-password");
  });

  test("two nodes on the copied data: a challenge from node 1 completes on node 2; the code is then refused on node 1", async () => {
    for (let i = 0; i < 2; i++) nodes.push(await app.serve({ env: { PORTCULLIS_STORE_URL: url } }));
    for (const n of nodes) expect(JSON.stringify(n.logs)).not.toContain("test-password");
    using udp = await UDPClient.open();
    const first = await pap(udp, nodes[0]!.port, secret, "alice", "alice-pass-1");
    expect(first.code).toBe(Code.AccessChallenge);
    const state = first.attributes.find(([t]) => t === Attr.State)![1];
    const code = codeAt(0);
    const second = await pap(udp, nodes[1]!.port, secret, "alice", code, { state });
    expect(second.code).toBe(Code.AccessAccept);
    // The same code again, through the other node: the shared high-water mark refuses it.
    const replayChallenge = await pap(udp, nodes[0]!.port, secret, "alice", "alice-pass-1");
    expect(replayChallenge.code).toBe(Code.AccessChallenge);
    const replayState = replayChallenge.attributes.find(([t]) => t === Attr.State)![1];
    const replay = await pap(udp, nodes[0]!.port, secret, "alice", code, { state: replayState });
    expect(replay.code).toBe(Code.AccessReject);
  }, 120_000);

  test("store check with PostgreSQL down: exit 3, no password in the output", async () => {
    pg.stop();
    try {
      const r = await app.run(["store", "check"], { env: { PORTCULLIS_STORE_URL: url } });
      expect(r.code).toBe(3);
      expect(r.stdout).toContain("reachable: no");
      expect(r.stdout + r.stderr).not.toContain("test-password");
    } finally {
      pg.start();
    }
  }, 60_000);
});
