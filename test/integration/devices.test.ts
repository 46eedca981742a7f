// The approver-app device protocol end to end through the compiled binary: `device enrol` prints the
// link, a client without a browser (WebCrypto keys) enrols with its code and a subscription to the
// test push service, replaces the subscription with a signed PUT, and the server's test push arrives
// encrypted and VAPID-signed; a replay is refused, `device remove` turns the device away with 403 and
// is audited as the user's last device. The VAPID key survives `key rotate` and a restart with only
// the new key left.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Appliance, eventually, type ServerProcess } from "./helpers/appliance.ts";
import { DeviceClient } from "./helpers/device-client.ts";
import { TestPushService } from "./helpers/push-service.ts";

const SUBJECT = "mailto:ops@example.com";

/** A port free right now (the public URL must be known before serve starts). */
function freePort(): number {
  const l = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  const port = l.port;
  l.stop(true);
  return port;
}

let appliance: Appliance;
let server: ServerProcess;
let service: TestPushService;
let base: string;
let port: number;

async function start(): Promise<ServerProcess> {
  const s = await appliance.serve({ httpListen: `127.0.0.1:${port}` });
  await s.waitForLog((l) => l.event === "http.listening" && l.listener === "public");
  return s;
}

beforeAll(async () => {
  service = new TestPushService(SUBJECT);
  // The sealing key in a key file (no $PORTCULLIS_KEY), so that `key rotate` can append to it.
  appliance = new Appliance({ PORTCULLIS_KEY: "" });
  port = freePort();
  base = `http://127.0.0.1:${port}`;
  appliance.writeConfig(`[http]\npublic_url = "${base}"\ntls = false\n[push]\nsubject = "${SUBJECT}"\nallowed_hosts = ["127.0.0.1"]\ntimeout_ms = 3000\n`);
  await appliance.cli(["user", "add", "alice"]);
  server = await start();
});

afterAll(async () => {
  await appliance?.[Symbol.asyncDispose]();
  service?.stop();
});

/** Runs `device enrol alice` and returns the code from the printed link. */
async function enrolmentCode(): Promise<string> {
  const out = await appliance.cli(["device", "enrol", "alice"]);
  const link = /^(http:\/\/\S+\/app\/#enrol=([A-Za-z0-9_-]{22}))$/m.exec(out);
  expect(link?.[1]?.startsWith(`${base}/app/#enrol=`)).toBe(true);
  // Standard output is not a terminal here: no QR code.
  expect(out).not.toContain("█");
  return link![2]!;
}

async function enrol(client: DeviceClient, push?: unknown): Promise<{ device: string; vapid_public_key: string }> {
  const res = await fetch(`${base}/app/api/v1/devices`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ enrolment: await enrolmentCode(), public_key: client.publicJwk, name: "Alice's phone", ...(push ? { push } : {}) }),
  });
  expect(res.status).toBe(201);
  return (await res.json()) as { device: string; vapid_public_key: string };
}

describe("approver devices through the binary", () => {
  let client: DeviceClient;
  let vapid: string;
  let adminKey: string;

  test("enrol from the CLI link, then a signed PUT replaces the subscription; a test push arrives on the new one", async () => {
    client = await DeviceClient.create();
    const first = service.subscribe();
    const made = await enrol(client, TestPushService.json(first));
    client.id = made.device;
    vapid = made.vapid_public_key;
    expect(Buffer.from(vapid, "base64url").length).toBe(65);

    const second = service.subscribe();
    const put = await client.request(base, "PUT", "/app/api/v1/push", TestPushService.json(second));
    const replay = put.clone() as Request;
    expect((await fetch(put)).status).toBe(204);
    // The same signed request again: refused, whatever process sees it.
    const again = await fetch(replay);
    expect(again.status).toBe(401);
    expect(await again.json()).toMatchObject({ reason: "replayed" });

    adminKey = (await appliance.cli(["apikey", "add", "it-admin", "--role", "admin"])).trim();
    const test = await fetch(`http://127.0.0.1:${server.adminPort}/api/admin/v1/devices/${client.id}/push-test`, { method: "POST", headers: { "api-key": adminKey } });
    expect(await test.json()).toMatchObject({ result: "sent", status: 201 });
    const [m] = await service.waitFor(1);
    expect(m!.path).toBe(new URL(second.endpoint).pathname);
    expect(JSON.parse(m!.payload)).toEqual({ v: 1, id: expect.stringMatching(/^test-/) });
    expect(m!.urgency).toBe("high");
    expect(m!.k).toBe(vapid);
    expect(m!.claims).toMatchObject({ aud: service.origin, sub: SUBJECT });
    expect(service.hits.get(new URL(first.endpoint).pathname)).toBeUndefined();

    const listed = JSON.parse(await appliance.cli(["device", "list", "alice", "--json"])) as Array<{ id: string; push: string }>;
    expect(listed).toEqual([expect.objectContaining({ id: client.id, user: "alice", push: new URL(service.origin).host })]);
    // No log line carries the endpoint's secret path.
    const logs = JSON.stringify(server.logs);
    expect(logs).not.toContain(new URL(second.endpoint).pathname);
    // Every line is JSON, and nothing (such as a Node deprecation warning from web-push) went to stderr.
    expect(server.logs.find((l) => l.event === "non_json")).toBeUndefined();
    expect(server.stderrTail(200)).not.toContain("Warning");
  });

  test("the VAPID key survives key rotation and a restart with only the new key in the key file", async () => {
    await appliance.cli(["key", "rotate"]);
    await server.stop();
    const keyFile = join(appliance.dataDir, "portcullis.key");
    const keys = readFileSync(keyFile, "utf8").split("\n").filter((l) => /^[0-9a-f]+ /.test(l));
    expect(keys.length).toBe(2);
    writeFileSync(keyFile, `${keys.at(-1)}\n`, { mode: 0o600 });
    server = await start();
    const other = await DeviceClient.create();
    const made = await enrol(other);
    expect(made.vapid_public_key).toBe(vapid);
    expect(server.logs.find((l) => l.event === "store.server_secret.replaced")).toBeUndefined();
    // Two devices now; remove the new one so that the next test removes the last.
    await appliance.cli(["device", "remove", made.device]);
  });

  test("device remove: the device is refused with 403 from then on, and the server audits the user's last device as a warning", async () => {
    const r = await appliance.run(["device", "remove", client.id]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`removed device ${client.id} of alice`);
    expect(r.stderr).toContain("alice has no approver device left");
    const res = await fetch(await client.request(base, "DELETE", "/app/api/v1/push"));
    expect(res.status).toBe(403);
    expect(await res.json()).toMatchObject({ error: "forbidden", reason: "removed_device" });
    const line = await server.waitForLog((l) => l.event === "admin.device_removed" && l.device === client.id);
    expect(line).toMatchObject({ level: "warn", user: "alice", last_device: true, by: expect.stringMatching(/^cli:/) });
    await eventually("the refusal's audit line", () => server.logs.find((l) => l.event === "device.request_refused" && l.reason === "removed_device"));
    expect((await appliance.run(["device", "remove", client.id])).code).toBe(1);
  });
});
