// The appliance's side: the switch channel (link rewriting, failures as channel results), the push
// fetch over the relay, and the rate limits the relay keeps in memory.

import { expect, test } from "bun:test";
import { createSwitchChannel, createSwitchChannels, remoteSwitchChannels, remoteSwitchPushFetch, switchCallHandler, switchPushFetch, SWITCH_LINK_PLACEHOLDER } from "../../../src/switch/appliance.ts";
import type { SwitchClient } from "../../../src/switch/client.ts";
import { MemoryRateLimits } from "../../../src/switch/memory.ts";

function fakeClient(answer: Record<string, unknown> | undefined, state = "connected") {
  const sent: Array<{ t: string; fields: Record<string, unknown> }> = [];
  const client = {
    state,
    publicUrl: "https://relay.example",
    request: async (t: string, fields: Record<string, unknown>) => {
      sent.push({ t, fields });
      return answer === undefined ? undefined : { id: 1, t: "result", ...answer };
    },
  } as unknown as SwitchClient;
  return { client, sent };
}

const TOKEN = "t".repeat(43);

test("links on the placeholder become links on the relay's public_url", async () => {
  const { client, sent } = fakeClient({ ok: true, channel: "sms" });
  const ch = createSwitchChannel(client, SWITCH_LINK_PLACEHOLDER);
  expect(ch).toMatchObject({ name: "switch", kind: "sms" });
  const r = await ch.send({ to: "+46701234567", text: `Approve: ${SWITCH_LINK_PLACEHOLDER}/ml/${TOKEN}` }, {});
  expect(r).toEqual({ ok: true, providerId: "switch:sms" });
  expect(sent[0]).toMatchObject({ t: "deliver", fields: { to: "+46701234567", text: `Approve: https://relay.example/ml/${TOKEN}` } });
});

test("the e-mail channel of the same name sends the address as `email`, with the subject", async () => {
  const { client, sent } = fakeClient({ ok: true, channel: "email" });
  const [sms, email] = createSwitchChannels(client, "https://appliance.example");
  expect([sms!.name, sms!.kind, email!.name, email!.kind]).toEqual(["switch", "sms", "switch", "email"]);
  expect(await email!.send({ to: "ann@example.com", text: `https://appliance.example/ml/${TOKEN}`, subject: "Sign-in request" }, {})).toMatchObject({ ok: true });
  expect(sent[0]!.fields).toMatchObject({ email: "ann@example.com", subject: "Sign-in request", text: `https://relay.example/ml/${TOKEN}` });
  expect(sent[0]!.fields.to).toBeUndefined();
});

test("not connected, no answer, or refused by the relay: a failed delivery, never a throw", async () => {
  expect(await createSwitchChannel(fakeClient({ ok: true }, "connecting").client, "https://a.example").send({ to: "+46701234567", text: "x" }, {})).toMatchObject({ ok: false, reason: "network" });
  expect(await createSwitchChannel(fakeClient(undefined).client, "https://a.example").send({ to: "+46701234567", text: "x" }, {})).toMatchObject({ ok: false, reason: "timeout" });
  expect(await createSwitchChannel(fakeClient({ ok: false, reason: "rate_limited" }).client, "https://a.example").send({ to: "+46701234567", text: "x" }, {})).toEqual({ ok: false, reason: "rejected", detail: "switch: rate_limited" });
  expect(await createSwitchChannel(fakeClient({ ok: false, reason: "all_channels_failed" }).client, "https://a.example").send({ to: "+46701234567", text: "x" }, {})).toMatchObject({ ok: false, reason: "gateway_error" });
});

test("push through the relay: the encrypted body and headers travel as they are; the relay's status comes back", async () => {
  const { client, sent } = fakeClient({ ok: true, status: 201 });
  const f = switchPushFetch(client);
  const res = await f("https://push.example/x", { method: "POST", headers: { TTL: "20", Authorization: "vapid t=a, k=b" }, body: new Uint8Array([1, 2, 3]) });
  expect(res.status).toBe(201);
  expect(sent[0]).toMatchObject({ t: "push", fields: { url: "https://push.example/x", headers: { ttl: "20", authorization: "vapid t=a, k=b" }, body: "AQID" } });
  await expect(switchPushFetch(fakeClient(undefined).client)("https://push.example/x", { method: "POST" })).rejects.toThrow();
});

test("in-memory limits: sliding windows in one-second slots, a refused call counts nothing", async () => {
  const rl = new MemoryRateLimits();
  const b = [{ key: "k:m", windowMs: 60_000, limit: 2 }, { key: "all", windowMs: 60_000, limit: 10 }];
  expect(await rl.consume(b, 1000)).toEqual({ allowed: true });
  expect(await rl.consume(b, 2000)).toEqual({ allowed: true });
  expect(await rl.consume(b, 3000)).toEqual({ allowed: false, bucket: "k:m", retryAt: 62_000 });
  expect(await rl.consume([{ key: "all", windowMs: 60_000, limit: 2 }], 3000)).toEqual({ allowed: false, bucket: "all", retryAt: 62_000 });
  // A new calendar minute does not reopen it: the hit at 1 s is less than a minute (and its slot) old.
  expect((await rl.consume(b, 60_000)).allowed).toBe(false);
  expect(await rl.consume(b, 62_000)).toEqual({ allowed: true });
  expect((await rl.consume(b, 62_500)).allowed).toBe(false);
  expect(await rl.purgeExpired(62_000)).toBe(2);
  expect(await rl.purgeExpired(62_000)).toBe(0);
});

test("a RADIUS worker's switch channels and push go through its supervisor's connection, which rewrites the links", async () => {
  const { client, sent } = fakeClient({ ok: true, channel: "sms" });
  const handler = switchCallHandler(client, SWITCH_LINK_PLACEHOLDER);
  // The IPC channel carries plain data only: what the worker sends is cloned on the way.
  const viaIpc = (op: string, args: unknown) => handler(op, structuredClone(args)).then((r) => structuredClone(r));
  const [sms, email] = remoteSwitchChannels(viaIpc);
  expect([sms!.name, sms!.kind, email!.name, email!.kind]).toEqual(["switch", "sms", "switch", "email"]);
  expect(await sms!.send({ to: "+46701234567", text: `Approve: ${SWITCH_LINK_PLACEHOLDER}/ml/${TOKEN}` }, {})).toEqual({ ok: true, providerId: "switch:sms" });
  expect(sent[0]).toMatchObject({ t: "deliver", fields: { to: "+46701234567", text: `Approve: https://relay.example/ml/${TOKEN}` } });
  expect(await email!.send({ to: "ann@example.com", text: "x", subject: "Sign-in request" }, {})).toMatchObject({ ok: true });
  expect(sent[1]!.fields).toMatchObject({ email: "ann@example.com", subject: "Sign-in request" });

  // A supervisor that does not answer (or is gone): a failed delivery, never a throw.
  const [silent] = remoteSwitchChannels(async () => undefined);
  expect(await silent!.send({ to: "+46701234567", text: "x" }, {})).toEqual({ ok: false, reason: "timeout", detail: "the supervisor did not answer" });

  const pushed = fakeClient({ ok: true, status: 201 });
  const pushHandler = switchCallHandler(pushed.client, SWITCH_LINK_PLACEHOLDER);
  const f = remoteSwitchPushFetch((op, args) => pushHandler(op, structuredClone(args)));
  const res = await f("https://push.example/abc", { method: "POST", headers: { TTL: "60", "Content-Encoding": "aes128gcm" }, body: new Uint8Array([1, 2, 3]) });
  expect(res.status).toBe(201);
  expect(pushed.sent[0]).toMatchObject({ t: "push", fields: { url: "https://push.example/abc", body: Buffer.from([1, 2, 3]).toString("base64"), headers: { ttl: "60", "content-encoding": "aes128gcm" } } });
  const down = remoteSwitchPushFetch(switchCallHandler(fakeClient(undefined).client, SWITCH_LINK_PLACEHOLDER));
  await expect(down("https://push.example/abc", { method: "POST", body: "x" })).rejects.toMatchObject({ name: "NetworkError" });
});
