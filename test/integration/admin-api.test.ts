// The admin REST API on the compiled binary: only on the admin listener, keys from `apikey add`,
// a token enrolled through the API works for a RADIUS login, and the CLI and the API see the same data.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { decodeBase32, totp } from "../../scripts/bench/radius-wire.ts";
import { Appliance, Code, eventually, statusServer, UDPClient, type ServerProcess } from "./helpers/appliance.ts";
import { attr, quote, radclient, runRadclientTests } from "./helpers/radclient.ts";
import { BASE_DN, GROUPS, PEOPLE, runSlapdTests, SERVICE_DN, SERVICE_PASSWORD, slapdPath, startSlapd, type Slapd } from "./helpers/slapd.ts";
import { tomlString } from "./helpers/appliance.ts";

const rtest = runRadclientTests ? test : test.skip;

let app: Appliance;
let server: ServerProcess;
let adminKey: string;
let operatorKey: string;
let cert: string;

beforeAll(async () => {
  app = new Appliance();
  adminKey = (await app.cli(["apikey", "add", "it-admin", "--role", "admin"])).trim();
  operatorKey = (await app.cli(["apikey", "add", "it-operator", "--role", "operator"])).trim();
  server = await app.serve();
  cert = readFileSync(join(app.dataDir, "http-cert.pem"), "utf8");
}, 60_000);

afterAll(async () => {
  await app?.[Symbol.asyncDispose]();
});

const api = (path: string, { method = "GET", body, key = adminKey }: { method?: string; body?: unknown; key?: string } = {}) =>
  fetch(`http://127.0.0.1:${server.adminPort}/api/admin/v1${path}`, {
    method,
    headers: { "api-key": key, ...(body === undefined ? {} : { "content-type": "application/json" }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });

describe("listeners", () => {
  test.each(["/api/admin/v1/users", "/api/admin/v1/tokens", "/api/openapi.json"])("%s is 404 on the public listener, even with a valid key", async (path) => {
    const r = await fetch(`https://127.0.0.1:${server.httpPort}${path}`, { headers: { "api-key": adminKey }, tls: { ca: cert } } as RequestInit);
    expect(r.status).toBe(404);
  });

  test("the admin listener answers with a key and refuses without one", async () => {
    expect((await api("/users")).status).toBe(200);
    expect((await api("/users", { key: "pcl_wrong" })).status).toBe(401);
    expect((await api("/users", { method: "POST", key: operatorKey, body: { username: "x" } })).status).toBe(403);
  });

  test("/api/openapi.json on the admin listener", async () => {
    const r = await fetch(`http://127.0.0.1:${server.adminPort}/api/openapi.json`);
    expect(r.status).toBe(200);
    const doc = (await r.json()) as { openapi: string; paths: Record<string, unknown> };
    expect(doc.openapi).toBe("3.1.0");
    expect(Object.keys(doc.paths)).toContain("/api/admin/v1/tokens/{id}/resync");
  });
});

describe("end to end", () => {
  const secret = `it-${randomBytes(12).toString("hex")}`;
  let seed: Uint8Array;

  beforeAll(async () => {
    const client = await api("/clients", { method: "POST", body: { name: "nas", address: "127.0.0.1/32", secret } });
    expect(client.status).toBe(201);
    expect(await client.text()).not.toContain(secret);
    expect((await api("/users", { method: "POST", body: { username: "alice", password: "alice-pass-1" } })).status).toBe(201);
    const enrol = await api("/tokens", { method: "POST", body: { user: "alice" } });
    expect(enrol.status).toBe(201);
    const { otpauthUri, qrSvg } = (await enrol.json()) as { otpauthUri: string; qrSvg: string };
    expect(qrSvg).toStartWith("<svg");
    seed = decodeBase32(/secret=([A-Z2-7]+)/.exec(otpauthUri)![1]!);
    // The server must see the API's new client without a restart: poll Status-Server (bounded).
    using udp = await UDPClient.open();
    await eventually("the new client to be served", async () => {
      const from = udp.received.length;
      const probe = statusServer(secret);
      udp.send(probe, server.port);
      const reply = await udp.next(probe[1]!, { from, timeoutMs: 200 });
      return reply && reply[0] === Code.AccessAccept ? reply : undefined;
    }, { tries: 50, timeoutMs: 10_000, everyMs: 0 });
  }, 60_000);

  rtest("a token enrolled through the API works for a RADIUS login (password, then code)", async () => {
    const first = await radclient(server.port, secret, ["User-Name = alice", `User-Password = ${quote("alice-pass-1")}`]);
    expect(first.code).toBe("Access-Challenge");
    const code = totp(seed, { now: Date.now() });
    const second = await radclient(server.port, secret, ["User-Name = alice", `User-Password = ${quote(code)}`, `State = ${attr(first, "State")}`]);
    expect(second.code).toBe("Access-Accept");
  });

  rtest("GET /users/:name shows lockout counters by source and known sources; POST unlock clears them in the running server", async () => {
    const station = ["Calling-Station-Id = \"203.0.113.66\""];
    for (let i = 0; i < 5; i++) await radclient(server.port, secret, ["User-Name = alice", `User-Password = ${quote(`guess-${i}`)}`, ...station]);
    expect((await radclient(server.port, secret, ["User-Name = alice", `User-Password = ${quote("alice-pass-1")}`, ...station])).code).toBe("Access-Reject");
    const view = (await (await api("/users/alice", { key: operatorKey })).json()) as { lockout: { password: unknown; sources: unknown[]; knownSources: { source: string }[] } };
    // The cap (4 across sources) refused the fifth before the station's own back-off (from 5) began.
    expect(view.lockout.password).toEqual({ failures: 4, lockedUntil: expect.any(String) });
    expect(view.lockout.sources).toEqual([{ source: "csid:203.0.113.66", kind: "password", failures: 4, lockedUntil: null }]);
    expect(view.lockout.knownSources.map((k) => k.source)).toEqual(["nas:nas"]); // the login above, without a station
    expect(await (await api("/users/alice/unlock", { method: "POST" })).json()).toEqual({ cleared: true });
    expect((await radclient(server.port, secret, ["User-Name = alice", `User-Password = ${quote("alice-pass-1")}`, ...station])).code).toBe("Access-Challenge");
  });

  test("the CLI sees what the API wrote, and the API sees what the CLI wrote", async () => {
    const users = JSON.parse(await app.cli(["user", "list", "--json"])) as { username: string; tokens: number }[];
    expect(users.find((u) => u.username === "alice")).toMatchObject({ tokens: 1 });
    const clients = JSON.parse(await app.cli(["client", "list", "--json"])) as { name: string }[];
    expect(clients.map((c) => c.name)).toContain("nas");

    await app.cli(["user", "add", "bob", "--password-stdin"], { stdin: "bob-pass-1\n" });
    const bob = await api("/users/bob", { key: operatorKey });
    expect(bob.status).toBe(200);
    expect(await bob.json()).toMatchObject({ username: "bob", password: "set", type: "totp" });

    const keys = (await (await api("/apikeys", { key: operatorKey })).json()) as { name: string; role: string }[];
    expect(keys.map((k) => [k.name, k.role])).toEqual(expect.arrayContaining([["it-admin", "admin"], ["it-operator", "operator"]]));

    expect((await api("/users/bob", { method: "DELETE" })).status).toBe(204);
    const after = JSON.parse(await app.cli(["user", "list", "--json"])) as { username: string }[];
    expect(after.map((u) => u.username)).not.toContain("bob");
  });

  test("one rule for the CLI and the API: exactly the network of another client is refused by both, naming it; an overlapping one is added and both lists say who wins", async () => {
    const dup = await api("/clients", { method: "POST", body: { name: "nas-copy", address: "::ffff:127.0.0.1", secret: "a-second-shared-secret" } });
    expect(dup.status).toBe(409);
    const body = await dup.text();
    expect(JSON.parse(body).message).toContain("client nas already has this network");
    expect(body).not.toContain("a-second-shared-secret");
    const cliDup = await app.run(["client", "add", "cli-copy", "--address", "127.0.0.1/32", "--secret", "a-third-shared-secret"]);
    expect(cliDup.code).toBe(1);
    expect(cliDup.stderr).toStartWith("portcullis: client nas already has the network 127.0.0.1/32;");
    expect(cliDup.stderr.trimEnd().split("\n")).toHaveLength(1);

    await app.cli(["client", "add", "loopback", "--address", "127.0.0.0/8", "--secret", `it-${randomBytes(12).toString("hex")}`]);
    try {
      const listed = (await (await api("/clients", { key: operatorKey })).json()) as { name: string; overlaps: { shadows: string[]; shadowedBy: string[] } }[];
      expect(listed.find((c) => c.name === "nas")!.overlaps).toMatchObject({ shadows: ["loopback"], shadowedBy: [] });
      expect(listed.find((c) => c.name === "loopback")!.overlaps).toMatchObject({ shadows: [], shadowedBy: ["nas"] });
      const table = await app.cli(["client", "list"]);
      expect(table).toMatch(/^nas .*shadows loopback$/m);
      expect(table).toMatch(/^loopback .*shadowed by nas$/m);
    } finally {
      await app.cli(["client", "remove", "loopback"]);
    }
  });

  test("a key created through the API works, and no secret reached the log", async () => {
    const r = await api("/apikeys", { method: "POST", body: { name: "via-api", role: "operator" } });
    expect(r.status).toBe(201);
    const { key } = (await r.json()) as { key: string };
    expect((await api("/clients", { key })).status).toBe(200);
    const logs = JSON.stringify(server.logs);
    for (const s of [key, adminKey, secret, "alice-pass-1"]) expect(logs).not.toContain(s);
  });
});

describe("endpoint profiles", () => {
  test("a text with a bidirectional override is refused (400 naming the field, never the value); a new profile does not allow custom SMS text", async () => {
    const bad = await api("/endpoints/shop", { method: "PUT", body: { title_text: "Shop \u202enigis-ngiS", button_accept_text: "Approve" } });
    expect(bad.status).toBe(400);
    const text = await bad.text();
    expect((JSON.parse(text) as { issues: Array<{ path: string }> }).issues.map((i) => i.path)).toEqual(["title_text"]);
    expect(text).not.toContain("nigis");
    expect((await api("/endpoints/shop")).status).toBe(404);
    const good = await api("/endpoints/shop", { method: "PUT", body: { title_text: "Shop sign-in" } });
    expect(good.status).toBe(200);
    expect(await good.json()).toMatchObject({ title_text: "Shop sign-in", allow_custom_sms_text: false });
  });
});

describe("key rotation and ldap test through the API (the CLI's key rotate and ldap test)", () => {
  const stest = runSlapdTests ? test : test.skip;
  let slapd: Slapd | undefined;
  let keyApp: Appliance;
  let keyServer: ServerProcess;
  let rootKey = "";
  let adminKey2 = "";
  const call = (path: string, key: string, body?: unknown) =>
    fetch(`http://127.0.0.1:${keyServer.adminPort}/api/admin/v1${path}`, {
      method: "POST",
      headers: { "api-key": key, ...(body === undefined ? {} : { "content-type": "application/json" }) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });

  beforeAll(async () => {
    // An empty $PORTCULLIS_KEY: the sealing key lives in the key file, which rotation extends.
    keyApp = new Appliance({ PORTCULLIS_KEY: "" });
    if (runSlapdTests) {
      if (!slapdPath) throw new Error("slapd not installed: apt-get install slapd ldap-utils (required in CI)");
      slapd = await startSlapd();
      keyApp.writeConfig(
        [
          'region = "SE"',
          "[[ldap]]",
          'name = "corp"',
          `urls = [${[slapd.ldapsUrl, "ldap://127.0.0.1:1"].map(tomlString).join(", ")}]`,
          `ca_file = ${tomlString(slapd.caFile)}`,
          `bind_dn = ${tomlString(SERVICE_DN)}`,
          `bind_password = ${tomlString(SERVICE_PASSWORD)}`,
          `base_dn = ${tomlString(BASE_DN)}`,
          'user_filter = "(&(objectClass=inetOrgPerson)(uid={username}))"',
          'type_attribute = "employeeType"',
          `required_groups = [${tomlString(`cn=vpn-users,${GROUPS}`)}]`,
          "timeout_ms = 3000",
          "",
        ].join("\n"),
      );
    }
    rootKey = (await keyApp.cli(["apikey", "add", "it-root", "--role", "root"])).trim();
    adminKey2 = (await keyApp.cli(["apikey", "add", "it-admin2", "--role", "admin"])).trim();
    await keyApp.cli(["client", "add", "nas", "--address", "127.0.0.1/32", "--secret-stdin"], { stdin: "a-long-shared-secret-for-it\n" });
    keyServer = await keyApp.serve();
  }, 60_000);

  afterAll(async () => {
    await keyApp?.[Symbol.asyncDispose]();
    await slapd?.stop();
  });

  test("POST /key/rotate: root only; the new key ID and the resealed count; the CLI still reads the secrets", async () => {
    expect((await call("/key/rotate", adminKey2)).status).toBe(403);
    const r = await call("/key/rotate", rootKey);
    expect(r.status).toBe(200);
    const body = (await r.json()) as { keyId: string; resealed: number };
    // The client's shared secret and the two server secrets serve created at start: the Magic Link
    // secret and the VAPID private key (push to approver devices).
    expect(body.resealed).toBe(3);
    expect(readFileSync(join(keyApp.dataDir, "portcullis.key"), "utf8")).toContain(body.keyId);
    // The CLI opens the store with the rotated key file: the client (its sealed secret) still loads.
    expect(JSON.parse(await keyApp.cli(["client", "list", "--json"])).map((c: { name: string }) => c.name)).toEqual(["nas"]);
  });

  test("POST /key/rotate with a key from $PORTCULLIS_KEY (the main appliance): 409, as `key rotate` refuses", async () => {
    const rootMain = (await app.cli(["apikey", "add", "it-root-main", "--role", "root"])).trim();
    const r = await api("/key/rotate", { method: "POST", key: rootMain });
    expect(r.status).toBe(409);
    expect(await r.text()).not.toContain(app.env.PORTCULLIS_KEY!);
    expect((await app.run(["key", "rotate"])).code).not.toBe(0);
  });

  stest("POST /ldap/corp/test against slapd: URL findings, the user's DN, phone, type and groups; never the bind password", async () => {
    const r = await call("/ldap/corp/test", adminKey2, { user: "alice" });
    expect(r.status).toBe(200);
    const text = await r.text();
    expect(text).not.toContain(SERVICE_PASSWORD);
    const d = JSON.parse(text);
    expect(d.ok).toBe(false); // the closed port
    expect(d.urls[0]).toMatchObject({ url: slapd!.ldapsUrl, transport: "ldaps", reachable: true, serviceBind: { ok: true, error: null } });
    expect(d.urls[0].tls.protocol).toMatch(/^TLSv1\.[23]$/);
    expect(d.urls[0].tls.certificate.subject).toContain("CN=localhost");
    expect(d.urls[1]).toMatchObject({ url: "ldap://127.0.0.1:1", reachable: false, error: "ECONNREFUSED", serviceBind: null });
    expect(d.user).toMatchObject({ query: "alice", found: true, dn: `uid=alice,${PEOPLE}`, phone: "+46701234567", type: "totp", typeNumber: 11, typeSource: "attribute", status: "ok", refused: false });
    expect(d.user.requiredGroups).toEqual([{ group: `cn=vpn-users,${GROUPS}`, member: true }]);
    const nobody = (await (await call("/ldap/corp/test", adminKey2, { user: "nobody" })).json()) as { user: { found: boolean; refused: boolean } };
    expect(nobody.user).toMatchObject({ found: false, refused: true });
    expect((await call("/ldap/nope/test", adminKey2)).status).toBe(404);
    expect(JSON.stringify(keyServer.logs)).not.toContain(SERVICE_PASSWORD);
  });
});
