// Three `serve` nodes on loopback ports sharing one throwaway PostgreSQL (started and removed by
// this file): a challenge from one node completed on another, a code used on one refused on
// another, a token disabled or a lockout made elsewhere honoured by a node that remembers the user, the same Access-Request answered the same by two nodes (idempotency records, also for logins decided from memory), an admin
// change seen by every node, a Magic Link call and a held RADIUS request waiting on one node
// answered through another's page, one audit log for every node, `key rotate` while every node serves, a node killed with SIGKILL mid-flow, and PostgreSQL stopped and started under load
// (Status-Server and /readyz stop, then resume; nothing that should be refused is accepted).

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { randomBytes } from "node:crypto";
import { buildAccessRequest, decodeBase32, encodeBase32, totp } from "../../scripts/bench/radius-wire.ts";
import { Appliance, Attr, Code, UDPClient, eventually, identifier, pap, statusServer, type ServerProcess } from "./helpers/appliance.ts";
import { POSTGRES_SKIP_REASON, startPostgres, type PostgresServer } from "./helpers/postgres.ts";
import { openPostgres } from "../../src/runtime/postgres.ts";
import { SmsGateway, linkIn } from "./helpers/sms-gateway.ts";

const secret = `it-${randomBytes(12).toString("hex")}`;
const PHONE = "+46701239001";
const te = new TextEncoder();

/** A user with a TOTP token of its own (so each test's high-water mark is its own). */
interface TotpUser {
  name: string;
  password: string;
  seed: string;
}
const code = (u: TotpUser, stepOffset = 0) => totp(decodeBase32(u.seed), { now: Date.now(), stepOffset });
const stateOf = (r: { attributes: readonly (readonly [number, Uint8Array])[] }) => r.attributes.find(([t]) => t === Attr.State)![1];

function freePort(): number {
  const l = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  const port = l.port;
  l.stop(true);
  return port;
}

/** Status-Server to `port`: true when answered within `timeoutMs`. */
async function statusAnswered(udp: UDPClient, port: number, timeoutMs = 400): Promise<boolean> {
  const probe = statusServer(secret);
  const from = udp.received.length;
  udp.send(probe, port);
  return (await udp.next(probe[1]!, { from, timeoutMs })) !== null;
}

describe.skipIf(POSTGRES_SKIP_REASON !== undefined)("three nodes on one PostgreSQL", () => {
  let pg: PostgresServer;
  let app: Appliance;
  let gateway: SmsGateway;
  let apiKey: string;
  const nodes: ServerProcess[] = [];
  const httpPorts: number[] = [];
  let userCount = 0;
  let url: string;

  async function totpUser(): Promise<TotpUser> {
    const u = { name: `u${++userCount}`, password: `pw-${randomBytes(6).toString("hex")}`, seed: encodeBase32(randomBytes(20)) };
    await app.cli(["user", "add", u.name, "--password-stdin"], { stdin: `${u.password}\n` });
    await app.cli(["token", "add", u.name, "--totp", "--secret", u.seed]);
    return u;
  }

  beforeAll(async () => {
    pg = await startPostgres();
    url = await pg.createDatabase();
    gateway = new SmsGateway();
    for (let i = 0; i < 3; i++) httpPorts.push(freePort());
    // A key file in the shared data directory (not $PORTCULLIS_KEY), so that `key rotate` can append to it.
    app = new Appliance({ PORTCULLIS_KEY: "" });
    app.writeConfig(`
region = "SE"
[store]
url = "${url}"
[http]
public_url = "http://127.0.0.1:${httpPorts[0]}"
tls = false
[delivery]
allowed_prefixes = ["+467"]
${gateway.smsConfig()}
`);
    await app.cli(["client", "add", "nas", "--address", "127.0.0.1/32", "--secret", secret]);
    await app.cli(["client", "add", "otp", "--address", "127.0.0.3/32", "--secret", secret, "--first-factor", "none"]);
    await app.cli(["user", "add", "mallory", "--phone", PHONE]);
    const out = await app.cli(["apikey", "add", "web"]);
    apiKey = /pcl_[A-Za-z0-9_-]{43}/.exec(out)![0];
    for (let i = 0; i < 3; i++) nodes.push(await app.serve({ httpListen: `127.0.0.1:${httpPorts[i]}` }));
  }, 180_000);

  afterAll(async () => {
    await app?.[Symbol.asyncDispose]();
    await gateway?.stop();
    pg?.destroy();
  });

  test("a challenge issued by node 1 is completed on node 2", async () => {
    const u = await totpUser();
    using udp = await UDPClient.open();
    const first = await pap(udp, nodes[0]!.port, secret, u.name, u.password);
    expect(first.code).toBe(Code.AccessChallenge);
    const second = await pap(udp, nodes[1]!.port, secret, u.name, code(u), { state: stateOf(first) });
    expect(second.code).toBe(Code.AccessAccept);
  }, 30_000);

  test("a code used on node 1 is refused on node 3", async () => {
    const u = await totpUser();
    using udp = await UDPClient.open();
    const c = code(u);
    const a = await pap(udp, nodes[0]!.port, secret, u.name, u.password);
    expect((await pap(udp, nodes[0]!.port, secret, u.name, c, { state: stateOf(a) })).code).toBe(Code.AccessAccept);
    const b = await pap(udp, nodes[2]!.port, secret, u.name, u.password);
    expect(b.code).toBe(Code.AccessChallenge);
    expect((await pap(udp, nodes[2]!.port, secret, u.name, c, { state: stateOf(b) })).code).toBe(Code.AccessReject);
  }, 30_000);

  test("code-only logins: a token disabled and enabled through the CLI and a lockout made on node 3 are honoured by node 2's next login (its login cache)", async () => {
    const u = await totpUser();
    const { id } = (JSON.parse(await app.cli(["token", "list", u.name, "--json"])) as Array<{ id: number }>)[0]!;
    // Three codes of consecutive steps, all inside the window: keep clear of a step's end.
    const left = 30_000 - (Date.now() % 30_000);
    if (left < 6_000) await Bun.sleep(left + 100);
    const now = Date.now();
    const [c1, c2, c3] = [-1, 0, 1].map((stepOffset) => totp(decodeBase32(u.seed), { now, stepOffset }));
    using udp = await UDPClient.open("127.0.0.3");
    const node2 = nodes[1]!.port;
    // Node 2 reads the user and the token, and remembers them.
    expect((await pap(udp, node2, secret, u.name, c1!)).code).toBe(Code.AccessAccept);
    await app.cli(["token", "disable", String(id)]);
    expect((await pap(udp, node2, secret, u.name, c2!)).code).toBe(Code.AccessReject);
    await app.cli(["token", "enable", String(id)]);
    expect((await pap(udp, node2, secret, u.name, c2!)).code).toBe(Code.AccessAccept);
    // Wrong codes on node 3 lock this NAS out (back-off after five): node 2 refuses the right code.
    for (let i = 0; i < 5; i++) expect((await pap(udp, nodes[2]!.port, secret, u.name, "000000")).code).toBe(Code.AccessReject);
    expect((await pap(udp, node2, secret, u.name, c3!)).code).toBe(Code.AccessReject);
    await app.cli(["user", "unlock", u.name]);
    expect((await pap(udp, node2, secret, u.name, c3!)).code).toBe(Code.AccessAccept);
  }, 90_000);

  test("the same Access-Request (same authenticator) sent to node 1 and then node 2 gets the same answer", async () => {
    const u = await totpUser();
    using udp = await UDPClient.open();
    const a = await pap(udp, nodes[0]!.port, secret, u.name, u.password);
    const request = buildAccessRequest({
      identifier: identifier(),
      secret,
      attributes: [
        [Attr.UserName, te.encode(u.name)],
        [Attr.UserPassword, te.encode(code(u))],
        [Attr.State, stateOf(a)],
      ],
    });
    const one = await udp.exchange(request, nodes[0]!.port, secret);
    expect(one.code).toBe(Code.AccessAccept);
    // The NAS fails over with the very same packet: node 2 answers from node 1's record (a second
    // evaluation would refuse the code, already used).
    const two = await udp.exchange(request, nodes[1]!.port, secret);
    expect(two.code).toBe(Code.AccessAccept);
    expect(Buffer.from(two.raw).equals(Buffer.from(one.raw))).toBe(true);
    // A different packet with the same code is evaluated afresh, and refused.
    const b = await pap(udp, nodes[1]!.port, secret, u.name, u.password);
    expect((await pap(udp, nodes[1]!.port, secret, u.name, code(u), { state: stateOf(b) })).code).toBe(Code.AccessReject);
  }, 30_000);

  test("code-only logins each node remembers: the same Access-Request to node 1 and then node 2 gets the same answer; its code in a new packet is refused", async () => {
    const u = await totpUser();
    // A second token, untouched by the logins that fill each node's memory: its code is then
    // matched from memory on both nodes (a mark moved by the first token's codes would shift the
    // window).
    const seed2 = encodeBase32(randomBytes(20));
    await app.cli(["token", "add", u.name, "--totp", "--secret", seed2]);
    const left = 30_000 - (Date.now() % 30_000);
    if (left < 6_000) await Bun.sleep(left + 100);
    const now = Date.now();
    const [c1, c2] = [-1, 0].map((stepOffset) => totp(decodeBase32(u.seed), { now, stepOffset }));
    const fresh = totp(decodeBase32(seed2), { now });
    using udp = await UDPClient.open("127.0.0.3");
    // Each node reads the user and the tokens once and remembers them: the next login there is
    // decided from memory, by the one statement that also looks the packet's record up.
    expect((await pap(udp, nodes[0]!.port, secret, u.name, c1!)).code).toBe(Code.AccessAccept);
    expect((await pap(udp, nodes[1]!.port, secret, u.name, c2!)).code).toBe(Code.AccessAccept);
    const request = buildAccessRequest({ identifier: identifier(), secret, attributes: [[Attr.UserName, te.encode(u.name)], [Attr.UserPassword, te.encode(fresh)]] });
    const one = await udp.exchange(request, nodes[0]!.port, secret);
    expect(one.code).toBe(Code.AccessAccept);
    // node 2 repeats node 1's recorded answer (deciding afresh would refuse the code, used)
    const two = await udp.exchange(request, nodes[1]!.port, secret);
    expect(Buffer.from(two.raw).equals(Buffer.from(one.raw))).toBe(true);
    expect((await pap(udp, nodes[1]!.port, secret, u.name, fresh)).code).toBe(Code.AccessReject);
    expect((await pap(udp, nodes[0]!.port, secret, u.name, fresh)).code).toBe(Code.AccessReject);
  }, 60_000);

  test("a client added through the CLI is served by every node without a restart", async () => {
    const other = `it-${randomBytes(12).toString("hex")}`;
    await app.cli(["client", "add", "nas2", "--address", "127.0.0.2/32", "--secret", other]);
    using udp = await UDPClient.open("127.0.0.2");
    for (const n of nodes) {
      await eventually(`node ${n.port} to serve the new client`, async () => {
        const probe = statusServer(other);
        const from = udp.received.length;
        udp.send(probe, n.port);
        return (await udp.next(probe[1]!, { from, timeoutMs: 300 })) ?? undefined;
      }, { tries: 40, timeoutMs: 15_000, everyMs: 0 });
    }
  }, 30_000);

  test("the audit log is shared: logins rejected on node 2 and an unlock made through node 3 are in node 1's GET /audit", async () => {
    const u = await totpUser();
    const key = /pcl_[A-Za-z0-9_-]{43}/.exec(await app.cli(["apikey", "add", "auditor", "--role", "operator"]))![0];
    const api = (n: number, path: string, init: RequestInit = {}) => fetch(`http://127.0.0.1:${nodes[n]!.adminPort}/api/admin/v1${path}`, { ...init, headers: { "api-key": key } });
    {
      using udp = await UDPClient.open();
      for (let i = 0; i < 2; i++) expect((await pap(udp, nodes[1]!.port, secret, u.name, "wrong password")).code).toBe(Code.AccessReject);
    }
    expect((await api(2, `/users/${u.name}/unlock`, { method: "POST" })).status).toBe(200);
    const events = await eventually("node 2's failures and node 3's unlock in node 1's audit log", async () => {
      const r = (await (await api(0, `/audit?user=${u.name}`)).json()) as { events: Array<{ event: string; node: string; actor: string | null }> };
      // The CLI's user add (emitted by whichever node claimed it) is there too, by cli:<OS user>.
      const done = r.events.some((e) => e.event === "admin.user_unlocked") && r.events.filter((e) => e.event === "auth.failure").length >= 2 && r.events.some((e) => e.event === "admin.user_added");
      return done ? r.events : undefined;
    });
    expect(events.find((e) => e.event === "admin.user_added")?.actor).toStartWith("cli:");
    const ours = events.filter((e) => e.event === "auth.failure" || e.event === "admin.user_unlocked");
    expect(ours.map((e) => e.event)).toEqual(["admin.user_unlocked", "auth.failure", "auth.failure"]);
    expect(ours[0]).toMatchObject({ actor: "auditor", node: expect.stringContaining(`:${nodes[2]!.proc.pid}`) });
    expect(ours.slice(1).every((e) => e.node.endsWith(`:${nodes[1]!.proc.pid}`))).toBe(true);
  }, 30_000);

  test("key rotate through the CLI while the nodes serve: every node keeps accepting logins, every sealed value is under the new key", async () => {
    const users = [await totpUser(), await totpUser(), await totpUser()];
    using udp = await UDPClient.open();
    const login = async (u: TotpUser, port: number, stepOffset: number) => {
      const a = await pap(udp, port, secret, u.name, u.password);
      expect(a.code).toBe(Code.AccessChallenge);
      return (await pap(udp, port, secret, u.name, code(u, stepOffset), { state: stateOf(a) })).code;
    };
    // Logins on every node while the rotation runs.
    const during = Promise.all(users.map((u, i) => login(u, nodes[i]!.port, 0)));
    const out = await app.cli(["key", "rotate"]);
    const keyId = /^new key ([0-9a-f]+);/.exec(out)![1]!;
    expect(await during).toEqual([Code.AccessAccept, Code.AccessAccept, Code.AccessAccept]);
    // And after it, the next step of each user's code, on another node than before.
    expect(await Promise.all(users.map((u, i) => login(u, nodes[(i + 1) % 3]!.port, 1)))).toEqual([Code.AccessAccept, Code.AccessAccept, Code.AccessAccept]);
    const db = openPostgres(url, { max: 1 });
    try {
      const { rows } = await db.query<{ v: string }>(
        "SELECT secret AS v FROM tokens UNION ALL SELECT secret FROM radius_clients UNION ALL SELECT value FROM server_secrets",
      );
      expect(rows.length).toBeGreaterThan(users.length);
      expect(new Set(rows.map((r) => r.v.split(".")[1]))).toEqual(new Set([keyId]));
    } finally {
      await db.close();
    }
  }, 60_000);

  test("a Magic Link call waiting on node 1 is answered through node 2's approval page", async () => {
    const from = gateway.messages.length;
    const pending = fetch(`http://127.0.0.1:${httpPorts[0]}/api/sfwa/auth?msisdn=${encodeURIComponent(PHONE)}`, {
      headers: { "api-key": apiKey, Accept: "application/json" },
      signal: AbortSignal.timeout(60_000),
    }).then(async (r) => ({ status: r.status, body: await r.text() }));
    const link = linkIn(await gateway.waitFor(PHONE, from))!;
    // The same link on node 2.
    const onNode2 = link.replace(`127.0.0.1:${httpPorts[0]}`, `127.0.0.1:${httpPorts[1]}`);
    expect(onNode2).not.toBe(link);
    const html = await (await fetch(onNode2)).text();
    const csrf = /name="csrf" value="([^"]+)"/.exec(html)?.[1] ?? "";
    const answered = await fetch(onNode2, { method: "POST", body: new URLSearchParams({ csrf, action: "approve" }) });
    expect(answered.status).toBe(200);
    expect(await pending).toEqual({ status: 200, body: '{"code":"TOUCH_ACCEPTED"}' });
  }, 60_000);

  test("a RADIUS request held on node 1 is answered through node 2's approval page", async () => {
    const phone = "+46701239002";
    await app.cli(["user", "add", "touchy", "--password-stdin", "--type", "touch", "--phone", phone], { stdin: "touchy-pass-1\n" });
    const from = gateway.messages.length;
    using udp = await UDPClient.open();
    const held = pap(udp, nodes[0]!.port, secret, "touchy", "touchy-pass-1", { timeoutMs: 60_000 });
    const link = linkIn(await gateway.waitFor(phone, from))!;
    const onNode2 = link.replace(`127.0.0.1:${httpPorts[0]}`, `127.0.0.1:${httpPorts[1]}`);
    const html = await (await fetch(onNode2)).text();
    const csrf = /name="csrf" value="([^"]+)"/.exec(html)?.[1] ?? "";
    expect((await fetch(onNode2, { method: "POST", body: new URLSearchParams({ csrf, action: "approve" }) })).status).toBe(200);
    expect((await held).code).toBe(Code.AccessAccept);
  }, 90_000);

  test("node 1 killed with SIGKILL between the two legs: node 2 completes the challenge; the others keep answering", async () => {
    const u = await totpUser();
    using udp = await UDPClient.open();
    const first = await pap(udp, nodes[0]!.port, secret, u.name, u.password);
    expect(first.code).toBe(Code.AccessChallenge);
    nodes[0]!.proc.kill("SIGKILL");
    await nodes[0]!.proc.exited;
    const second = await pap(udp, nodes[1]!.port, secret, u.name, code(u), { state: stateOf(first) });
    expect(second.code).toBe(Code.AccessAccept);
    expect(await statusAnswered(udp, nodes[2]!.port)).toBe(true);
  }, 30_000);

  test("PostgreSQL stopped and started under load: Status-Server and /readyz stop, then resume; nothing wrong is accepted", async () => {
    const node = nodes[1]!;
    const readyz = async () => (await fetch(`http://127.0.0.1:${httpPorts[1]}/readyz`, { signal: AbortSignal.timeout(5000) })).status;
    const used = await totpUser();
    const spent = code(used);
    {
      using udp = await UDPClient.open();
      const a = await pap(udp, node.port, secret, used.name, used.password);
      expect((await pap(udp, node.port, secret, used.name, spent, { state: stateOf(a) })).code).toBe(Code.AccessAccept);
    }
    expect(await readyz()).toBe(200);
    // Load: a wrong password and a spent code over and over on nodes 2 and 3, every one of which
    // must be refused or dropped, whatever the database does meanwhile.
    const results = { accept: 0, reject: 0, challenge: 0, none: 0 };
    let stop = false;
    const load = async (port: number) => {
      using udp = await UDPClient.open();
      for (let i = 0; i < 2000 && !stop; i++) {
        const password = i % 2 ? "wrong-password" : spent;
        const request = buildAccessRequest({ identifier: identifier(), secret, attributes: [[Attr.UserName, te.encode(used.name)], [Attr.UserPassword, te.encode(password)]] });
        const from = udp.received.length;
        udp.send(request, port);
        const raw = await udp.next(request[1]!, { from, timeoutMs: 1500 });
        if (!raw) results.none++;
        else if (raw[0] === Code.AccessAccept) results.accept++;
        else if (raw[0] === Code.AccessReject) results.reject++;
        else results.challenge++;
      }
    };
    const loads = [load(node.port), load(node.port), load(nodes[2]!.port)];
    using probe = await UDPClient.open();
    try {
      const logsFrom = node.logs.length;
      pg.stop();
      await eventually("Status-Server to go unanswered", async () => ((await statusAnswered(probe, node.port)) ? undefined : true), { tries: 20, timeoutMs: 15_000, everyMs: 100 });
      expect(await readyz()).toBe(503);
      await node.waitForLog((l) => l.event === "store.unwritable", { from: logsFrom, timeoutMs: 10_000 });
      pg.start();
      await eventually("Status-Server to be answered again", async () => ((await statusAnswered(probe, node.port)) ? true : undefined), { tries: 100, timeoutMs: 30_000, everyMs: 100 });
      await eventually("/readyz to be 200 again", async () => ((await readyz()) === 200 ? true : undefined), { tries: 50, timeoutMs: 10_000, everyMs: 100 });
      await node.waitForLog((l) => l.event === "store.writable", { from: logsFrom, timeoutMs: 10_000 });
      // Failed logins during the outage were audited as store errors.
      expect(node.logs.slice(logsFrom).some((l) => l.event === "auth.failure" && l.reason === "store_error")).toBe(true);
    } finally {
      stop = true;
      await Promise.all(loads);
    }
    expect(results.accept).toBe(0);
    expect(results.reject).toBeGreaterThan(0);
    // And the node works again without a restart: a fresh login is accepted.
    const u = await totpUser();
    using udp = await UDPClient.open();
    const first = await pap(udp, node.port, secret, u.name, u.password);
    expect((await pap(udp, nodes[2]!.port, secret, u.name, code(u), { state: stateOf(first) })).code).toBe(Code.AccessAccept);
  }, 120_000);
});
