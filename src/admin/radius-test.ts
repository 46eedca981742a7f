// Admin operation: a test authentication through the appliance's own RADIUS listener, as a client's
// NAS would send it: an Access-Request from the loopback address with the client's shared secret
// (Message-Authenticator first, User-Password hidden), and for a challenge a second leg with the
// code and the State. The server picks the client by the packet's source address, so the test is
// offered only for a client whose network is the most specific one holding the loopback address.
// The password and code are never recorded; admin.client_tested (a client's test) or
// admin.user_tested (a user's) records the outcome.

import { createSocket } from "node:dgram";
import { isIPv6 } from "node:net";
import { Attr, Code, decodePacket, encodeRequest, getAttribute, verifyResponse } from "../radius/codec/index.ts";
import { contains, parseAddress, parseCIDR } from "../util/cidr.ts";
import type { AdminContext } from "./context.ts";
import { AdminError, invalid } from "./errors.ts";
import { findUser } from "./users.ts";

export type RadiusTestOutcome = "accept" | "reject" | "challenge" | "no_answer";

export interface RadiusTestResult {
  outcome: RadiusTestOutcome;
  /** The Reply-Message (a prompt, or why the user was rejected), cut to 200 characters. */
  message: string | null;
  /** The State of a challenge, base64url, for the second leg. */
  state: string | null;
}

const encoder = new TextEncoder();

/**
 * Where the test comes from and goes to, or why it cannot be made: the loopback address of a
 * listener's family, and the client that address selects.
 */
export async function radiusTestRoute(
  ctx: Pick<AdminContext, "store">,
  clientName: string,
  listeners: ReadonlyArray<{ address: string; port: number }>,
): Promise<{ ok: true; source: string; target: { address: string; port: number } } | { ok: false; reason: string }> {
  const clients = await ctx.store.clients.list();
  const client = clients.find((c) => c.name === clientName);
  if (!client) throw new AdminError("not_found", "no RADIUS client named {name}", { field: "name", expose: "no such client" });
  for (const l of listeners) {
    const six = isIPv6(l.address);
    const source = six ? "::1" : "127.0.0.1";
    const target = l.address === "0.0.0.0" || l.address === "::" ? source : l.address;
    const addr = parseAddress(source)!;
    let best: { name: string; prefix: number } | undefined;
    for (const c of clients) {
      const net = parseCIDR(c.address);
      if (net && contains(net, addr) && (!best || net.prefix > best.prefix)) best = { name: c.name, prefix: net.prefix };
    }
    if (best?.name === client.name) return { ok: true, source, target: { address: target, port: l.port } };
  }
  return { ok: false, reason: "The server picks a client by the packet's source address, and this client's network does not hold the loopback address (or a narrower client does), so a test from this appliance would not reach it. Test from the NAS instead." };
}

/**
 * The clients a test can be made through: for each listener, the client whose network is the most
 * specific one holding the loopback address of its family (at most one per family).
 */
export async function testableClients(ctx: Pick<AdminContext, "store">, listeners: ReadonlyArray<{ address: string; port: number }>): Promise<string[]> {
  const clients = await ctx.store.clients.list();
  const names = new Set<string>();
  for (const l of listeners) {
    const addr = parseAddress(isIPv6(l.address) ? "::1" : "127.0.0.1")!;
    let best: { name: string; prefix: number } | undefined;
    for (const c of clients) {
      const net = parseCIDR(c.address);
      if (net && contains(net, addr) && (!best || net.prefix > best.prefix)) best = { name: c.name, prefix: net.prefix };
    }
    if (best) names.add(best.name);
  }
  return [...names];
}

interface TestInput {
  client: string;
  user: string;
  password: string;
  state?: string;
  listeners: ReadonlyArray<{ address: string; port: number }>;
  timeoutMs?: number;
}

/**
 * Sends one Access-Request for `user` (with `password`, and `state` for a challenge's second leg)
 * through the route found by radiusTestRoute, waits up to `timeoutMs` for the reply, and records
 * admin.client_tested. Throws AdminError: "not_found" for an unknown client, "invalid" when the
 * client cannot be tested from here (field `name`) or the user is empty (field `user`).
 */
export async function testRadiusAuthentication(ctx: AdminContext, input: TestInput): Promise<RadiusTestResult> {
  const { client, user, result } = await sendTest(ctx, input);
  await ctx.audit.note({ type: "admin.client_tested", client, user, outcome: result.outcome });
  return result;
}

/**
 * A user's test login: the Access-Request of testRadiusAuthentication for a user that exists,
 * through `client` (one of testableClients), recorded as admin.user_tested. A real login: it
 * counts in the user's lockout counters and is logged like any other. Throws AdminError:
 * "not_found" for an unknown user (field `user`) or client, "invalid" as testRadiusAuthentication.
 */
export async function testUserLogin(ctx: AdminContext, input: TestInput): Promise<RadiusTestResult> {
  const found = await findUser(ctx, input.user, "user");
  const { client, user, result } = await sendTest(ctx, { ...input, user: found.username });
  await ctx.audit.note({ type: "admin.user_tested", user, client, outcome: result.outcome });
  return result;
}

async function sendTest(ctx: AdminContext, input: TestInput): Promise<{ client: string; user: string; result: RadiusTestResult }> {
  const user = input.user.trim();
  if (user === "" || user.length > 253) throw invalid("user", "must be 1-253 characters");
  if (encoder.encode(input.password).length > 128) throw invalid("password", "must be at most 128 octets");
  const route = await radiusTestRoute(ctx, input.client, input.listeners);
  if (!route.ok) throw new AdminError("invalid", route.reason, { field: "name", expose: route.reason });
  const client = (await ctx.store.clients.findByName(input.client))!;
  const secret = encoder.encode(client.secret);
  const authenticator = ctx.random(16);
  const identifier = ctx.random(1)[0]!;
  const attributes = [
    { type: Attr.UserName, value: encoder.encode(user) },
    { type: Attr.NASIdentifier, value: encoder.encode("portcullis-admin-ui-test") },
    ...(input.state ? [{ type: Attr.State, value: new Uint8Array(Buffer.from(input.state, "base64url")) }] : []),
  ];
  const packet = encodeRequest({ code: Code.AccessRequest, identifier, authenticator, attributes }, secret, { userPassword: encoder.encode(input.password) });
  const reply = await exchange(packet, route.source, route.target, identifier, input.timeoutMs ?? (client.approvalHoldS + 3) * 1000, (data) => verifyResponse(data, authenticator, secret, { requireMessageAuthenticator: true }));
  let result: RadiusTestResult = { outcome: "no_answer", message: null, state: null };
  if (reply) {
    const p = decodePacket(reply);
    const msg = getAttribute(p, Attr.ReplyMessage);
    const state = getAttribute(p, Attr.State);
    result = {
      outcome: p.code === Code.AccessAccept ? "accept" : p.code === Code.AccessChallenge ? "challenge" : "reject",
      message: msg ? new TextDecoder().decode(msg).slice(0, 200) : null,
      state: state ? Buffer.from(state).toString("base64url") : null,
    };
  }
  return { client: client.name, user, result };
}

/** One request and its verified reply (undefined after `timeoutMs`); the socket is closed after. */
function exchange(packet: Uint8Array, source: string, target: { address: string; port: number }, identifier: number, timeoutMs: number, valid: (data: Uint8Array) => boolean): Promise<Uint8Array | undefined> {
  return new Promise((resolve) => {
    const socket = createSocket(isIPv6(source) ? "udp6" : "udp4");
    let done = false;
    const finish = (value: Uint8Array | undefined) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.close();
      resolve(value);
    };
    const timer = setTimeout(() => finish(undefined), timeoutMs);
    socket.on("error", () => finish(undefined));
    socket.on("message", (msg) => {
      const data = new Uint8Array(msg);
      if (data[1] === identifier && valid(data)) finish(data);
    });
    socket.bind(0, source, () => socket.send(packet, target.port, target.address));
  });
}
