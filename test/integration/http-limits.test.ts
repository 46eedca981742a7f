// The compiled binary's HTTP listeners under unauthenticated floods (scripts/attack/http-floods.ts):
// stalled bodies keep RSS bounded, held connections are closed by the header deadline and capped per
// address, the admin listener keeps answering throughout, and oversize bodies get a JSON 413.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { connect } from "node:tls";
import { join } from "node:path";
import { heldConnections, memoryOf, peakRSSWhile, probeWhile, stalledBodies, type Target } from "../../scripts/attack/http-floods.ts";
import { Appliance, eventually, type ServerProcess } from "./helpers/appliance.ts";

let app: Appliance;
let server: ServerProcess;
let cert: string;
let adminKey: string;
let target: Target;

beforeAll(async () => {
  app = new Appliance();
  app.writeConfig(`
[http]
header_timeout_s = 2
body_timeout_s = 2
[admin]
body_timeout_s = 2
`);
  adminKey = /pcl_[A-Za-z0-9_-]{43}/.exec(await app.cli(["apikey", "add", "ops", "--role", "admin"]))![0];
  server = await app.serve();
  cert = readFileSync(join(app.dataDir, "http-cert.pem"), "utf8");
  target = { host: "127.0.0.1", port: server.httpPort, tls: true };
}, 60_000);

afterAll(async () => {
  await app[Symbol.asyncDispose]();
});

const adminUrl = (path: string) => `http://127.0.0.1:${server.adminPort}${path}`;
const pub = (path: string, init: RequestInit = {}) => fetch(`https://127.0.0.1:${server.httpPort}${path}`, { ...init, tls: { ca: cert } } as RequestInit);

/** `portcullis_http_connections_closed_total{listener,reason}` and `portcullis_http_connections{listener}` from /metrics. */
async function connectionMetrics(): Promise<{ closed: Record<string, number>; open: Record<string, number> }> {
  const text = await (await fetch(adminUrl("/metrics"))).text();
  const closed: Record<string, number> = {};
  for (const m of text.matchAll(/^portcullis_http_connections_closed_total\{listener="(\w+)",reason="(\w+)"\} (\d+)$/gm)) closed[`${m[1]}/${m[2]}`] = Number(m[3]);
  const open: Record<string, number> = {};
  for (const m of text.matchAll(/^portcullis_http_connections\{listener="(\w+)"\} (\d+)$/gm)) open[m[1]!] = Number(m[2]);
  return { closed, open };
}

describe("unauthenticated floods of the public listener", () => {
  test("1,000 stalled 1 MB bodies to /ml/x: each is answered 413 or refused and closed at once; RSS stays bounded; the admin listener answers throughout", async () => {
    const before = memoryOf(server.proc.pid);
    const probed = await probeWhile(adminUrl("/healthz"), peakRSSWhile(server.proc.pid, stalledBodies(target, { connections: 1000, holdMs: 8000 })), { everyMs: 50 });
    const outcome = probed.result.result;
    expect(outcome.attempted).toBe(1000);
    // Nothing waits for the hold to end: the server closed every connection itself.
    expect(outcome.closedByServer).toBe(1000);
    expect(Object.keys(outcome.statuses).filter((s) => s !== "413")).toEqual([]);
    // The old server read each body in full: RSS grew by about 1 GB. Now only headers are read.
    expect(probed.result.peakRssMiB - before.rssMiB).toBeLessThan(100);
    expect(probed.failures).toBe(0);
    expect(probed.samples).toBeGreaterThan(0);
  }, 60_000);

  test("2,000 held half request heads: capped per address at accept, the rest closed by the header deadline; the admin listener and other addresses still get in", async () => {
    const flood = heldConnections(target, { connections: 2000, holdMs: 10_000 });
    // While the flood holds its connections, a client from another loopback address is served.
    const fromOther = (async () => {
      await Bun.sleep(500);
      return new Promise<string>((resolve) => {
        const s = connect({ host: "127.0.0.1", port: server.httpPort, localAddress: "127.0.0.2", ca: cert } as Parameters<typeof connect>[0]);
        let text = "";
        s.on("secureConnect", () => s.write("GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"));
        s.on("data", (d) => (text += d.toString()));
        s.on("error", () => resolve("error"));
        s.on("close", () => resolve(text));
      });
    })();
    const probed = await probeWhile(adminUrl("/healthz"), flood, { everyMs: 50 });
    const outcome = probed.result;
    expect(outcome.closedByServer).toBe(2000);
    // Admitted connections end at the 2 s header deadline, never at the client's 10 s hold: the server
    // closed all 2,000 (above: a connection counts only if the server closed it before the flood let go
    // of it), and the header-deadline counter below saw them. No wall-clock bound: on a loaded machine
    // the closes are late, not missing.
    expect(probed.failures).toBe(0);
    expect(await fromOther).toMatch(/^HTTP\/1\.1 200/);
    const m = await connectionMetrics();
    expect(m.closed["public/per_address"]).toBeGreaterThan(0);
    expect(m.closed["public/header"]).toBeGreaterThan(0);
    await eventually("connections released", async () => ((await connectionMetrics()).open.public === 0 ? true : undefined));
    expect(server.logs.some((l) => l.event === "http.connection_refused" && l.reason === "per_address" && l.client === "127.0.0.1")).toBe(true);
  }, 60_000);
});

describe("body caps", () => {
  test("a body over the public listener's cap is a JSON 413 with the security headers, before any route runs", async () => {
    const r = await pub("/ml/x", { method: "POST", body: "a=".padEnd(100_000, "b"), headers: { "content-type": "application/x-www-form-urlencoded" } });
    expect(r.status).toBe(413);
    expect(await r.json()).toMatchObject({ error: "payload_too_large" });
    expect(r.headers.get("content-security-policy")).toContain("default-src 'self'");
    expect(r.headers.get("x-content-type-options")).toBe("nosniff");
    expect(r.headers.get("strict-transport-security")).toBe("max-age=31536000");
  });

  test("an approval-page POST to an unknown link is 404 without reading its body", async () => {
    const r = await pub("/ml/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", { method: "POST", body: "csrf=x&action=approve", headers: { "content-type": "application/x-www-form-urlencoded" } });
    expect(r.status).toBe(404);
  });

  test("admin API: the key is checked before the body (401), an ordinary call is capped at 64 KiB, an import at 8 MiB", async () => {
    const big = JSON.stringify({ name: "x", pad: "y".repeat(100_000) });
    const anon = await fetch(adminUrl("/api/admin/v1/users"), { method: "POST", body: big, headers: { "content-type": "application/json" } });
    expect(anon.status).toBe(401);
    const keyed = await fetch(adminUrl("/api/admin/v1/users"), { method: "POST", body: big, headers: { "content-type": "application/json", "api-key": adminKey } });
    expect(keyed.status).toBe(413);
    expect(await keyed.json()).toMatchObject({ error: "payload_too_large" });
    expect(keyed.headers.get("x-content-type-options")).toBe("nosniff");
    // 2 MiB of CSV is read (and refused as CSV), not cut off as too large.
    const csv = "username,password\n" + "u,p\n".repeat(500_000);
    const imp = await fetch(adminUrl("/api/admin/v1/users/import"), { method: "POST", body: JSON.stringify({ csv }), headers: { "content-type": "application/json", "api-key": adminKey } });
    expect(imp.status).not.toBe(413);
    const huge = await fetch(adminUrl("/api/admin/v1/users/import"), { method: "POST", body: JSON.stringify({ csv: "x".repeat(9 * 1024 * 1024) }), headers: { "content-type": "application/json", "api-key": adminKey } });
    expect(huge.status).toBe(413);
  });

  test("an admin body that does not arrive within body_timeout_s closes the connection", async () => {
    const { connect: tcp } = await import("node:net");
    const s = tcp({ host: "127.0.0.1", port: server.adminPort });
    const t0 = Date.now();
    let text = "";
    s.on("data", (d) => (text += d.toString()));
    s.on("error", () => {});
    s.write(`POST /api/admin/v1/users HTTP/1.1\r\nHost: x\r\napi-key: ${adminKey}\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"name":`);
    // The client never finishes its body, so the connection closes only if the server's deadline closes it.
    await new Promise((resolve) => s.once("close", resolve));
    expect(Date.now() - t0).toBeGreaterThanOrEqual(1500);
    expect(text).toBe("");
    expect((await connectionMetrics()).closed["admin/body"]).toBeGreaterThanOrEqual(1);
  }, 30_000);
});
