// The appliance's use of the switch: its identity (an Ed25519 key made at `switch join`, sealed in
// the store with the name the relay knows it by), the `switch` delivery channel, and push sent
// through the relay.

import { randomBytes, type KeyObject } from "node:crypto";
import type { Channel, DeliveryResult, OutboundMessage } from "../delivery/types.ts";
import type { ServerSecretRepo } from "../store/types.ts";
import type { SwitchClient } from "./client.ts";
import { APPLIANCE_NAME, keyFromSeed, LINK_ROUTE_MS } from "./protocol.ts";

/** The server secret that holds the switch identity: 32 bytes of key seed, then the name (UTF-8). */
const IDENTITY = "switch.identity";

export interface SwitchIdentity {
  name: string;
  privateKey: KeyObject;
  publicKey: string;
}

class NotJoined extends Error {}

function identityOf(bytes: Uint8Array): SwitchIdentity {
  const name = new TextDecoder().decode(bytes.subarray(32));
  return { name, ...keyFromSeed(bytes.subarray(0, 32)) };
}

/**
 * The appliance's switch identity, or undefined before `switch join`. With `join`, it is made (a new
 * key seed with that name) when none exists; an existing one is returned as it is, whatever its name.
 */
export async function switchIdentity(secrets: ServerSecretRepo, join?: string): Promise<SwitchIdentity | undefined> {
  if (join !== undefined && !APPLIANCE_NAME.test(join)) throw new TypeError("switch: appliance name must be 1-64 letters, digits, '_' or '-'");
  try {
    const bytes = await secrets.get(
      IDENTITY,
      () => {
        if (join === undefined) throw new NotJoined();
        return new Uint8Array(Buffer.concat([randomBytes(32), Buffer.from(join, "utf8")]));
      },
      { minBytes: 33 },
    );
    return identityOf(bytes);
  } catch (err) {
    if (err instanceof NotJoined) return undefined;
    throw err;
  }
}

/** Where links point when the appliance has no public_url of its own but a switch: rewritten by the channel. */
export const SWITCH_LINK_PLACEHOLDER = "https://switch.invalid";

/**
 * The `switch` delivery channels: an SMS and an e-mail channel of that one name, each sending its
 * message to the relay, which sends it through its own channels and limits. Approval links built
 * from `linkBase` (the appliance's public_url, or the placeholder) are rewritten to the relay's
 * public_url, which serves their pages.
 */
export function createSwitchChannels(client: SwitchClient, linkBase: string): Channel[] {
  return [createSwitchChannel(client, linkBase, "sms"), createSwitchChannel(client, linkBase, "email")];
}

/** One `switch` channel of `kind` (default SMS). */
export function createSwitchChannel(client: SwitchClient, linkBase: string, kind: "sms" | "email" = "sms"): Channel {
  const from = linkBase.replace(/\/+$/, "") + "/ml/";
  return {
    name: "switch",
    kind,
    async send(msg: OutboundMessage): Promise<DeliveryResult> {
      const relay = client.publicUrl;
      if (client.state !== "connected" || !relay) return { ok: false, reason: "network", detail: "no switch connected" };
      const text = msg.text.split(from).join(relay.replace(/\/+$/, "") + "/ml/");
      const r = await client.request("deliver", { [kind === "sms" ? "to" : "email"]: msg.to, text, ...(msg.subject ? { subject: msg.subject } : {}), ttl_s: LINK_ROUTE_MS / 1000 });
      if (!r) return { ok: false, reason: "timeout", detail: "the switch did not answer" };
      if (r.ok === true) return { ok: true, providerId: typeof r.channel === "string" ? `switch:${r.channel}` : "switch" };
      const reason = typeof r.reason === "string" ? r.reason : "error";
      return { ok: false, reason: reason === "all_channels_failed" ? "gateway_error" : "rejected", detail: `switch: ${reason}`.slice(0, 100) };
    },
  };
}

/**
 * A fetch for the push sender that posts through the relay: the appliance encrypts and signs each
 * message (RFC 8291, RFC 8292) itself; the relay only forwards the bytes to the push service.
 */
export function switchPushFetch(client: SwitchClient): typeof fetch {
  const f = async (input: string | URL | Request, init?: RequestInit): Promise<Response> => {
    const url = typeof input === "string" ? input : input instanceof URL ? input.href : input.url;
    const headers: Record<string, string> = {};
    new Headers(init?.headers).forEach((v, k) => (headers[k] = v));
    const body = init?.body instanceof Uint8Array ? Buffer.from(init.body).toString("base64") : typeof init?.body === "string" ? Buffer.from(init.body).toString("base64") : "";
    const r = await client.request("push", { url, headers, body });
    if (!r) throw Object.assign(new Error("no switch connected"), { name: "NetworkError" });
    if (r.ok !== true || typeof r.status !== "number") throw Object.assign(new Error(`switch: ${String(r.reason)}`), { name: r.reason === "timeout" ? "TimeoutError" : "NetworkError" });
    return new Response(null, { status: r.status });
  };
  return f as typeof fetch;
}

/**
 * A call to the process that holds the switch connection (a RADIUS worker's supervisor: the relay
 * knows one connection per appliance); undefined when that process does not answer.
 */
export type SwitchCall = (op: string, args: unknown) => Promise<unknown>;

function isDeliveryResult(r: unknown): r is DeliveryResult {
  const o = r as { ok?: unknown; reason?: unknown; detail?: unknown } | null;
  return typeof o === "object" && o !== null && (o.ok === true || (o.ok === false && typeof o.reason === "string" && typeof o.detail === "string"));
}

/** A RADIUS worker's `switch` channels: each message goes to its supervisor's switch channel of the same kind. */
export function remoteSwitchChannels(call: SwitchCall): Channel[] {
  return (["sms", "email"] as const).map((kind) => ({
    name: "switch",
    kind,
    async send(msg: OutboundMessage): Promise<DeliveryResult> {
      const r = await call("switch.deliver", { kind, to: msg.to, text: msg.text, ...(msg.subject ? { subject: msg.subject } : {}) });
      return isDeliveryResult(r) ? r : { ok: false, reason: "timeout", detail: "the supervisor did not answer" };
    },
  }));
}

/** A RADIUS worker's push fetch: its supervisor posts the (already encrypted and signed) message through the relay. */
export function remoteSwitchPushFetch(call: SwitchCall): typeof fetch {
  const f = async (input: string | URL | Request, init?: RequestInit): Promise<Response> => {
    const url = typeof input === "string" ? input : input instanceof URL ? input.href : input.url;
    const headers: Record<string, string> = {};
    new Headers(init?.headers).forEach((v, k) => (headers[k] = v));
    const body = init?.body instanceof Uint8Array ? Buffer.from(init.body).toString("base64") : typeof init?.body === "string" ? Buffer.from(init.body).toString("base64") : "";
    const r = (await call("switch.push", { url, headers, body })) as { status?: unknown; error?: unknown } | undefined;
    if (r && typeof r.status === "number" && r.status >= 200 && r.status <= 599) return new Response(null, { status: r.status });
    throw Object.assign(new Error("switch: no answer"), { name: r?.error === "TimeoutError" ? "TimeoutError" : "NetworkError" });
  };
  return f as typeof fetch;
}

/** The supervisor's side of its workers' `switch.deliver` and `switch.push` calls, over its own connection. */
export function switchCallHandler(client: SwitchClient, linkBase: string): SwitchCall {
  const [sms, email] = createSwitchChannels(client, linkBase) as [Channel, Channel];
  const push = switchPushFetch(client);
  return async (op, args) => {
    const a = (args ?? {}) as Record<string, unknown>;
    if (op === "switch.deliver") {
      if (typeof a.to !== "string" || typeof a.text !== "string") return undefined;
      return (a.kind === "email" ? email : sms).send({ to: a.to, text: a.text, ...(typeof a.subject === "string" ? { subject: a.subject } : {}) }, {});
    }
    if (op === "switch.push") {
      try {
        const res = await push(String(a.url), { method: "POST", headers: (a.headers ?? {}) as Record<string, string>, body: Buffer.from(typeof a.body === "string" ? a.body : "", "base64") });
        return { status: res.status };
      } catch (err) {
        return { error: (err as Error | null)?.name ?? "NetworkError" };
      }
    }
    return undefined;
  };
}
