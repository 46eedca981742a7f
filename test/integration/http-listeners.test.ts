// The compiled binary's HTTP listeners: HTTPS with the generated certificate, the admin listener
// apart (admin paths 404 on the public one), /healthz, /readyz, /metrics, and `apikey add`.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { X509Certificate } from "node:crypto";
import { readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { openDatabase } from "../../src/runtime/sqlite.ts";
import { Attr, buildAccessRequest } from "../../scripts/bench/radius-wire.ts";
import { Appliance, eventually, identifier, UDPClient, type ServerProcess, untilServed } from "./helpers/appliance.ts";

let app: Appliance;
let server: ServerProcess;
let cert: string;

beforeAll(async () => {
  app = new Appliance();
  server = await app.serve();
  cert = readFileSync(join(app.dataDir, "http-cert.pem"), "utf8");
}, 60_000);

afterAll(async () => {
  await app[Symbol.asyncDispose]();
});

const pub = (path: string, init: RequestInit = {}) => fetch(`https://127.0.0.1:${server.httpPort}${path}`, { ...init, tls: { ca: cert } } as RequestInit);
const adm = (path: string) => fetch(`http://127.0.0.1:${server.adminPort}${path}`);

describe("public listener", () => {
  test("speaks HTTPS with a generated ECDSA P-256 certificate for the listen address (key 0600), logged as self-signed", async () => {
    const x = new X509Certificate(cert);
    expect(x.subjectAltName).toBe("IP Address:127.0.0.1");
    expect(x.publicKey.asymmetricKeyDetails?.namedCurve).toBe("prime256v1");
    expect(statSync(join(app.dataDir, "http-key.pem")).mode & 0o777).toBe(0o600);
    expect(server.logs.find((l) => l.event === "http.certificate")).toMatchObject({ level: "warn", source: "generated" });
    const r = await pub("/healthz");
    expect(r.status).toBe(200);
    expect(await r.json()).toEqual({ status: "ok" });
    expect(r.headers.get("Strict-Transport-Security")).toBe("max-age=31536000");
  });

  test("a client that does not trust the certificate is refused", async () => {
    await expect(fetch(`https://127.0.0.1:${server.httpPort}/healthz`)).rejects.toThrow();
  });

  test("plain HTTP to the HTTPS port gets no HTTP answer", async () => {
    const r = await fetch(`http://127.0.0.1:${server.httpPort}/healthz`).then((x) => x.status, () => "error");
    expect(r).not.toBe(200);
  });

  test.each(["/metrics", "/api/admin/v1/users", "/api/openapi.json"])("%s is 404 JSON here", async (path) => {
    const r = await pub(path);
    expect(r.status).toBe(404);
    expect(await r.json()).toMatchObject({ error: "not_found" });
  });

  test("/readyz: store writable and RADIUS bound", async () => {
    const r = await pub("/readyz");
    expect(r.status).toBe(200);
    expect(await r.json()).toEqual({ status: "ready", checks: { store_writable: true, radius_bound: true, running: true } });
  });
});

describe("admin listener", () => {
  test("/healthz and /readyz", async () => {
    expect((await adm("/healthz")).status).toBe(200);
    expect((await adm("/readyz")).status).toBe(200);
  });

  test("/metrics in the Prometheus text format with RADIUS, Magic Link and delivery families", async () => {
    const r = await adm("/metrics");
    expect(r.headers.get("Content-Type")).toBe("text/plain; version=0.0.4; charset=utf-8");
    const text = await r.text();
    for (const family of [
      "portcullis_radius_packets_total",
      "portcullis_radius_dropped_total",
      "portcullis_radius_request_duration_seconds",
      "portcullis_magiclink_outcomes_total",
      "portcullis_deliveries_total",
      "portcullis_sms_messages_total",
      "portcullis_http_requests_total",
    ]) {
      expect(text).toContain(`# TYPE ${family} `);
    }
    expect(text).toMatch(/^portcullis_radius_packets_total\{outcome="received"\} \d+$/m);
    expect(text).toMatch(/^portcullis_http_requests_total\{listener="public",status="2xx"\} [1-9]\d*$/m);
  });

  test("a RADIUS reject and a drop show up in the packet counters and the latency histogram", async () => {
    const secret = "metrics-test-shared-secret";
    await app.cli(["client", "add", "nas", "--address", "127.0.0.1/32", "--secret", secret]);
    await untilServed(server, secret, "the new client to be served");
    using udp = await UDPClient.open();
    const enc = new TextEncoder();
    const req = buildAccessRequest({ identifier: identifier(), secret, attributes: [[Attr.UserName, enc.encode("nobody")], [Attr.UserPassword, enc.encode("wrong-password")]] });
    const reply = await udp.exchange(req, server.port, secret, { timeoutMs: 10_000 });
    expect(reply.code).toBe(3); // Access-Reject
    // A request without Message-Authenticator is dropped and counted by reason.
    udp.send(buildAccessRequest({ identifier: identifier(), secret, messageAuthenticator: "none", attributes: [[Attr.UserName, enc.encode("x")]] }), server.port);
    const text = await eventually("the drop to be counted", async () => {
      const t = await (await adm("/metrics")).text();
      return /portcullis_radius_dropped_total\{reason="missing_message_authenticator"\} 1/.test(t) ? t : undefined;
    });
    expect(text).toMatch(/^portcullis_radius_packets_total\{outcome="reject"\} 1$/m);
    expect(text).toMatch(/^portcullis_radius_request_duration_seconds_count\{result="reject"\} 1$/m);
    expect(text).toMatch(/^portcullis_radius_request_duration_seconds_bucket\{result="reject",le="\+Inf"\} 1$/m);
    expect(text).toMatch(/^portcullis_auth_failures_total\{reason="unknown_user"\} 1$/m);
  }, 30_000);

  test("the start-up log names both listeners, and the old http.not_started line is gone", () => {
    const lines = server.logs.filter((l) => l.event === "http.listening").map((l) => [l.listener, l.tls]);
    expect(lines).toEqual([
      ["public", true],
      ["admin", false],
    ]);
    expect(server.logs.some((l) => l.event === "http.not_started")).toBe(false);
  });
});

describe("apikey add", () => {
  test("prints the key once on stdout; the database holds only its SHA-256; list never shows it", async () => {
    const r = await app.run(["apikey", "add", "webapp", "--expires", "2099-12-31"]);
    expect(r.code).toBe(0);
    const key = r.stdout.trim();
    expect(key).toMatch(/^pcl_[A-Za-z0-9_-]{43}$/);
    expect(r.stderr).toContain("added API key webapp (role magiclink, endpoint default, valid through 2099-12-31 UTC)");
    expect(r.stderr).not.toContain(key);

    const db = openDatabase(join(app.dataDir, "portcullis.db"));
    const row = db.prepare<{ hash: string; prefix: string; expires_at: number }>("SELECT hash, prefix, expires_at FROM api_keys WHERE name = 'webapp'").get()!;
    db.close();
    expect(row.hash).toBe(new Bun.CryptoHasher("sha256").update(key).digest("hex"));
    expect(row.prefix).toBe(key.slice(0, 10));
    expect(row.expires_at).toBe(Date.UTC(2100, 0, 1));
    const raw = readFileSync(join(app.dataDir, "portcullis.db")).toString("latin1") + readFileSync(join(app.dataDir, "portcullis.db-wal")).toString("latin1");
    expect(raw).not.toContain(key);

    const list = await app.run(["apikey", "list", "--json"]);
    expect(list.stdout).not.toContain(key);
    expect(list.stdout).not.toContain(row.hash);
    expect(JSON.parse(list.stdout)).toMatchObject([{ name: "webapp", role: "magiclink", endpoint: "default", status: "active" }]);
  });

  test.each([
    [["apikey", "add", "bad name"], 2, "NAME must be"],
    [["apikey", "add", "k2", "--expires", "2020-01-01"], 2, "--expires is in the past"],
    [["apikey", "add", "k3", "--expires", "2030-02-30"], 2, "not a calendar date"],
    [["apikey", "add", "k4", "--endpoint", "nope"], 1, "no endpoint profile named nope"],
    [["apikey", "remove", "ghost"], 1, "no API key named ghost"],
  ])("%p exits %d: %s", async (args, code, message) => {
    const r = await app.run(args);
    expect(r.code).toBe(code);
    expect(r.stdout).toBe("");
    expect(r.stderr.trim().split("\n")).toHaveLength(1);
    expect(r.stderr).toContain(message);
  });

  test("second serve reuses the certificate", async () => {
    await server.stop();
    server = await app.serve();
    expect(server.logs.find((l) => l.event === "http.certificate")).toMatchObject({ source: "reused" });
    expect(readFileSync(join(app.dataDir, "http-cert.pem"), "utf8")).toBe(cert);
    expect((await pub("/healthz")).status).toBe(200);
  }, 60_000);
});
