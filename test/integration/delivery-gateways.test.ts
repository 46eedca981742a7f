// Two [[delivery.gateway]] channels from a config file against two real HTTP gateways on 127.0.0.1: the first fails (500, a 200 error body under success_match, a timeout), the second delivers; order and the delivery log.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { loadConfig } from "../../src/config/index.ts";
import { createDispatcher } from "../../src/delivery/dispatcher.ts";
import { allowListFromConfig, channelsFromConfig, limitsFromConfig } from "../../src/delivery/from-config.ts";
import type { SqliteStore } from "../../src/store/sqlite/store.ts";
import { cleanup, openIn, tempDir } from "../unit/store/helpers.ts";
import { SmsGateway, answer, type GatewayRequest, type GatewayReply } from "./helpers/sms-gateway.ts";

const LINK = "https://mfa.example.com/ml/GwTokenAbCdEfGhIjKlMnOp";
const TEXT = `Approve the sign-in: ${LINK}`;
const PRIMARY_PASSWORD = "primary-pass-s3cret";
const BACKUP_PASSWORD = "backup-pass-s3cret";
const BACKUP_KEY = "backup-header-s3cret";

/** Every request to either gateway, in arrival order. */
const arrivals: Array<{ gateway: string; authorization: string | undefined; apiKey: string | undefined; body: string }> = [];

let dir: string;
let store: SqliteStore;
/** An SMS gateway on 127.0.0.1 that adds each request to `arrivals` under `name`. */
function gateway(name: string): SmsGateway {
  return new SmsGateway((req: GatewayRequest) => arrivals.push({ gateway: name, authorization: req.headers.authorization, apiKey: req.headers["x-api-key"], body: req.body }));
}
const primary = gateway("primary");
const backup = gateway("backup");
let primaryURL: string;
let backupURL: string;

beforeAll(async () => {
  dir = tempDir();
  store = await openIn(dir);
  primaryURL = primary.url;
  backupURL = backup.url;
});
afterAll(async () => {
  await primary.stop();
  await backup.stop();
  await store.close();
  cleanup(dir);
});

/** The config file: the backup is declared first, but `[delivery] channels` puts the primary first. */
function configure(): ReturnType<typeof loadConfig>["config"] {
  const cfgDir = join(dir, "cfg");
  mkdirSync(cfgDir, { recursive: true });
  writeFileSync(join(cfgDir, "backup.pass"), `${BACKUP_PASSWORD}\n`, { mode: 0o600 });
  writeFileSync(
    join(cfgDir, "portcullis.toml"),
    [
      'region = "SE"',
      "[delivery]",
      'channels = ["primary", "backup"]',
      "",
      "[[delivery.gateway]]",
      'name = "backup"',
      `url = "${backupURL}/v1/messages"`,
      'content_type = "json"',
      'body = \'{"recipient": "{to}", "text": "{message}"}\'',
      `headers = { "X-Api-Key" = "${BACKUP_KEY}" }`,
      'user = "acme"',
      `password_file = "${join(cfgDir, "backup.pass")}"`,
      "",
      "[[delivery.gateway]]",
      'name = "primary"',
      `url = "${primaryURL}/sms/json"`,
      'body = "from=Acme&to={to_digits}&text={message}"',
      'user = "key1"',
      'success_match = \'"status":\\s*"0"\'',
      "timeout_ms = 300",
    ].join("\n"),
  );
  return loadConfig({ configFile: join(cfgDir, "portcullis.toml"), env: { PORTCULLIS_DELIVERY_GATEWAY_PRIMARY_PASSWORD: PRIMARY_PASSWORD }, dataDir: dir, systemFile: "/nonexistent" }).config;
}

test("the first gateway fails three ways and each message goes out through the second, in order, with both attempts logged", async () => {
  const config = configure();
  const channels = channelsFromConfig(config.delivery);
  expect(channels.map((c) => [c.name, c.kind])).toEqual([
    ["primary", "sms"],
    ["backup", "sms"],
  ]);
  const metrics: Array<[string, string]> = [];
  const d = createDispatcher({
    channels,
    region: config.region,
    allowList: allowListFromConfig(config.delivery),
    limits: limitsFromConfig(config.delivery),
    rateLimits: store.rateLimits,
    deliveryLog: store.deliveryLog,
    onDelivered: (channel, result) => metrics.push([channel, result]),
  });
  backup.reply = answer(202, { id: "bk-1" });

  const primaryAnswers = (reply: GatewayReply) => () => void (primary.reply = reply);
  const cases: Array<[string, () => void]> = [
    ["HTTP 500", primaryAnswers(answer(500, "internal error"))],
    ["200 with an error body", primaryAnswers(answer(200, '{"messages":[{"status":"4","error-text":"Bad Credentials"}]}', { "content-type": "application/json" }))],
    ["timeout", () => primary.hold()],
  ];
  for (const [name, arrange] of cases) {
    arrange();
    arrivals.length = 0;
    const r = await d.deliver({ msisdn: "070-123 45 67", text: TEXT, endpoint: "default", apiKeyId: `k-${name}` });
    expect([name, r]).toEqual([name, { ok: true, channel: "backup" }]);
    // Order: the primary was asked first, then the backup, each with its own credentials.
    expect(arrivals.map((a) => a.gateway)).toEqual(["primary", "backup"]);
    expect(arrivals[0]!.authorization).toBe(`Basic ${Buffer.from(`key1:${PRIMARY_PASSWORD}`).toString("base64")}`);
    expect(Object.fromEntries(new URLSearchParams(arrivals[0]!.body))).toEqual({ from: "Acme", to: "46701234567", text: TEXT });
    expect(arrivals[1]!.authorization).toBe(`Basic ${Buffer.from(`acme:${BACKUP_PASSWORD}`).toString("base64")}`);
    expect(arrivals[1]!.apiKey).toBe(BACKUP_KEY);
    expect(JSON.parse(arrivals[1]!.body)).toEqual({ recipient: "+46701234567", text: TEXT });
  }

  // A working primary: the backup is not asked.
  primary.reply = answer(200, JSON.stringify({ messages: [{ "message-id": "pr-1", status: "0" }] }));
  arrivals.length = 0;
  expect(await d.deliver({ msisdn: "+46701234567", text: TEXT, endpoint: "default", apiKeyId: "k-ok" })).toEqual({ ok: true, channel: "primary" });
  expect(arrivals.map((a) => a.gateway)).toEqual(["primary"]);

  const rows = (await store.deliveryLog.recent(100)).reverse();
  expect(rows.map((r) => [r.channel, r.destination, r.result, r.reason, r.detail, r.providerId])).toEqual([
    ["primary", "+46…67", "failed", "gateway_error", "HTTP 500", null],
    ["backup", "+46…67", "sent", null, null, "bk-1"],
    ["primary", "+46…67", "failed", "rejected", "HTTP 200 without a success_match match", null],
    ["backup", "+46…67", "sent", null, null, "bk-1"],
    ["primary", "+46…67", "failed", "timeout", "no answer within 300 ms", null],
    ["backup", "+46…67", "sent", null, null, "bk-1"],
    ["primary", "+46…67", "sent", null, null, "pr-1"],
  ]);
  expect(metrics).toEqual([
    ["primary", "gateway_error"],
    ["backup", "ok"],
    ["primary", "rejected"],
    ["backup", "ok"],
    ["primary", "timeout"],
    ["backup", "ok"],
    ["primary", "ok"],
  ]);
  const logged = JSON.stringify(rows);
  for (const s of [LINK, "701234567", PRIMARY_PASSWORD, BACKUP_PASSWORD, BACKUP_KEY]) expect(logged).not.toContain(s);
});

test("both gateways failing is all_channels_failed naming each channel", async () => {
  const config = configure();
  const d = createDispatcher({ channels: channelsFromConfig(config.delivery), region: config.region, allowList: allowListFromConfig(config.delivery), rateLimits: store.rateLimits, deliveryLog: store.deliveryLog });
  primary.reply = answer(503);
  backup.reply = answer(401);
  arrivals.length = 0;
  expect(await d.deliver({ msisdn: "+46701234567", text: TEXT, endpoint: "default", apiKeyId: "k-both" })).toEqual({
    ok: false,
    reason: "all_channels_failed",
    detail: "primary: gateway_error; backup: rejected",
  });
  expect(arrivals.map((a) => a.gateway)).toEqual(["primary", "backup"]);
});
