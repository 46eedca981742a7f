// Admin operations on RADIUS clients: list (with how their networks overlap), show, add (with its
// shared secret, never shown again), change the phone-factor settings, remove. Shared by
// `portcullis client …` and /api/admin/v1/clients.

import { parseCIDR } from "../config/index.ts";
import { clientOverlaps, type ClientOverlap } from "../radius/server/client-table.ts";
import { DEFAULT_CLIENT_PHONE, NetworkTakenError, StoreError, type ClientPhoneSettings, type FirstFactor, type OTPMode, type RadiusClient, type Store } from "../store/types.ts";
import { changedPhoneFields, checkClientPhone, ClientPhoneError } from "./client-phone.ts";
import type { AdminContext } from "./context.ts";
import { AdminError, invalid } from "./errors.ts";
import { NAME } from "./validate.ts";

/** Shared secrets shorter than this get a warning (RFC 2865 §3 asks for at least 16 octets). */
export const MIN_SECRET_LENGTH = 16;

/** Longest shared secret, in UTF-8 bytes. */
export const MAX_SECRET_BYTES = 128;

/** "local" names the local users; every other name must be a configured [[ldap]] profile. */
export const LOCAL_DIRECTORY = "local";

/** A client as shown: never the shared secret, with its network as matched and its overlaps. */
export type ClientView = Omit<RadiusClient, "secret" | "createdAt"> & {
  createdAt: string;
  network: string | null;
  overlaps: Omit<ClientOverlap, "network">;
};

/** The view of `c` with its overlaps among `all` (which holds it). */
export function describeClient(c: RadiusClient, all: ReadonlyMap<string, ClientOverlap>): ClientView {
  const { network, ...overlaps } = all.get(c.name) ?? { network: null, shadows: [], shadowedBy: [], duplicateOf: null, unreachable: true };
  return {
    id: c.id,
    name: c.name,
    address: c.address,
    firstFactor: c.firstFactor,
    otpMode: c.otpMode,
    requireMessageAuthenticator: c.requireMessageAuthenticator,
    allowPasswordOnly: c.allowPasswordOnly,
    directories: c.directories,
    approvalHoldS: c.approvalHoldS,
    approvalMode: c.approvalMode,
    approvalNumberMatch: c.approvalNumberMatch,
    smsCodeLength: c.smsCodeLength,
    smsCodeAlphabet: c.smsCodeAlphabet,
    createdAt: new Date(c.createdAt).toISOString(),
    network,
    overlaps,
  };
}

/** Every client with its overlaps. */
export async function listClients(ctx: { store: Store }): Promise<ClientView[]> {
  const clients = await ctx.store.clients.list();
  const overlaps = clientOverlaps(clients);
  return clients.map((c) => describeClient(c, overlaps));
}

function noClient(name: string): AdminError {
  return new AdminError("not_found", `no client named ${NAME.test(name) ? name : "so"}`, { field: "name" });
}

/** One client with its overlaps. Throws AdminError("not_found"). */
export async function showClient(ctx: { store: Store }, name: string): Promise<ClientView> {
  const client = (await listClients(ctx)).find((x) => x.name === name);
  if (!client) throw noClient(name);
  return client;
}

/**
 * Checks an ordered list of directories: configured [[ldap]] profile names and "local", each once.
 * Throws AdminError("invalid", field `directories`) naming the first bad entry.
 */
export function checkDirectories(names: readonly string[], profiles: readonly string[]): string[] {
  const expose = "configured [[ldap]] profile names and local, each once";
  if (names.length === 0 || names.some((n) => n === "")) {
    throw new AdminError("invalid", "{directories} must be a comma-separated list of profile names and local, e.g. corp,local", { field: "directories", expose });
  }
  const seen = new Set<string>();
  for (const n of names) {
    if (n !== LOCAL_DIRECTORY && !profiles.includes(n)) {
      const known = [...profiles, LOCAL_DIRECTORY].join(", ");
      throw new AdminError("invalid", `{directories}: ${n.length <= 64 ? n : "a name"} is not a configured [[ldap]] profile nor local (known: ${known})`, { field: "directories", expose });
    }
    if (seen.has(n)) throw new AdminError("invalid", `{directories} names ${n.length <= 64 ? n : "a name"} twice`, { field: "directories", expose });
    seen.add(n);
  }
  return [...names];
}

/** The phone settings checked together (admin/client-phone.ts) as an AdminError on the setting's field. */
function checkedPhone(current: ClientPhoneSettings, patch: Partial<ClientPhoneSettings>, otpMode: OTPMode): ClientPhoneSettings {
  try {
    return checkClientPhone(current, patch, otpMode);
  } catch (e) {
    if (e instanceof ClientPhoneError) throw new AdminError("invalid", e.message, { field: e.field, expose: e.message });
    throw e;
  }
}

export interface AddClientInput extends Partial<ClientPhoneSettings> {
  name: string;
  /** An IPv4 or IPv6 address or CIDR network. */
  address: string;
  /** The RADIUS shared secret: never shown again. */
  secret: string;
  firstFactor?: string;
  otpMode?: string;
  requireMessageAuthenticator?: boolean;
  allowPasswordOnly?: boolean;
  /** Profile names and "local", in order; null or absent: every profile, then local. */
  directories?: readonly string[] | null;
}

/**
 * Adds a RADIUS client and records admin.client_added. Returns its view and warnings about weak but
 * accepted settings (a short secret, Message-Authenticator optional). Throws AdminError: "invalid"
 * (field named), "conflict" when the name exists or another client has exactly this network.
 */
export async function addClient(ctx: AdminContext, input: AddClientInput): Promise<{ client: ClientView; warnings: string[] }> {
  const { name } = input;
  if (!NAME.test(name)) throw new AdminError("invalid", "client {name} must be 1-64 letters, digits, '.', '_' or '-'", { field: "name", expose: "1-64 letters, digits, '.', '_' or '-'" });
  const address = parseCIDR(input.address.trim());
  if (!address) throw invalid("address", "must be an IPv4 or IPv6 address or CIDR network (192.0.2.10, 192.0.2.0/24, 2001:db8::/64)");
  const firstFactor = (input.firstFactor ?? "password") as FirstFactor;
  if (firstFactor !== "password" && firstFactor !== "none") throw invalid("firstFactor", "must be password or none");
  const otpMode = (input.otpMode ?? "challenge") as OTPMode;
  if (otpMode !== "challenge" && otpMode !== "concat") throw invalid("otpMode", "must be challenge or concat");
  const requireMessageAuthenticator = input.requireMessageAuthenticator ?? true;
  const allowPasswordOnly = input.allowPasswordOnly ?? false;
  if (firstFactor === "none" && allowPasswordOnly) {
    // With no first factor a password-only user would be let in on nothing at all.
    throw new AdminError("invalid", "{firstFactor} none cannot be combined with {allowPasswordOnly} true", { field: "allowPasswordOnly", expose: "false when firstFactor is none" });
  }
  const directories = input.directories == null ? null : checkDirectories(input.directories, ctx.config.ldap.map((p) => p.name));
  const { name: _n, address: _a, secret: _s, firstFactor: _f, otpMode: _o, requireMessageAuthenticator: _r, allowPasswordOnly: _p, directories: _d, ...phonePatch } = input;
  const phone = checkedPhone(DEFAULT_CLIENT_PHONE, definedOnly(phonePatch), otpMode);
  const { secret } = input;
  if (secret === "") throw new AdminError("invalid", "the shared secret must not be empty", { field: "secret", expose: "must not be empty" });
  if (new TextEncoder().encode(secret).length > MAX_SECRET_BYTES) throw new AdminError("invalid", `the shared secret must be at most ${MAX_SECRET_BYTES} bytes`, { field: "secret", expose: `at most ${MAX_SECRET_BYTES} bytes` });
  const warnings: string[] = [];
  if (secret.length < MIN_SECRET_LENGTH) warnings.push(`the shared secret is shorter than ${MIN_SECRET_LENGTH} characters; use a long random secret`);
  if (!requireMessageAuthenticator) warnings.push("requests from this client are accepted without Message-Authenticator (CVE-2024-3596); enable it on the NAS when it can");
  let client: RadiusClient;
  try {
    client = await ctx.audit.change(
      () => ctx.store.clients.add({ name, address, secret, firstFactor, otpMode, requireMessageAuthenticator, allowPasswordOnly, directories, ...phone }),
      () => ({ type: "admin.client_added", client: name, address }),
    );
  } catch (e) {
    if (e instanceof StoreError && e.code === "conflict") throw new AdminError("conflict", `client ${name} already exists`, { field: "name", expose: "a client with this name exists" });
    // Exactly the same network could never be matched; an overlapping one is fine (the narrower wins).
    if (e instanceof NetworkTakenError) {
      throw new AdminError("conflict", `client ${e.client} already has the network ${e.network}; a second client for it could never be matched (an overlapping network is fine: the most specific one wins)`, {
        field: "address",
        expose: `client ${e.client} already has this network; a second client for it could never be matched`,
      });
    }
    throw e;
  }
  const view = (await listClients(ctx)).find((x) => x.name === client.name) ?? describeClient(client, new Map());
  return { client: view, warnings };
}

/** `patch` without its undefined entries. */
function definedOnly<T extends object>(patch: T): Partial<T> {
  return Object.fromEntries(Object.entries(patch).filter(([, v]) => v !== undefined)) as Partial<T>;
}

/**
 * Changes phone-factor settings of client `name`, checked as a whole against its stored ones, and
 * records admin.client_updated naming the settings that changed (nothing when none did). Returns
 * the client. Throws AdminError: "invalid" (the setting's field), "not_found".
 */
export async function updateClientPhone(ctx: AdminContext, name: string, patch: Partial<ClientPhoneSettings>): Promise<ClientView> {
  const current = await ctx.store.clients.findByName(name);
  if (!current) throw noClient(name);
  const next = checkedPhone(current, definedOnly(patch), current.otpMode);
  const fields = changedPhoneFields(current, next);
  const updated = await ctx.audit.change(
    () => ctx.store.clients.updatePhone(name, next),
    (ok) => (ok && fields.length > 0 ? { type: "admin.client_updated", client: name, fields } : null),
  );
  if (!updated) throw noClient(name);
  return showClient(ctx, name);
}

/** Removes client `name` and records admin.client_removed. Throws AdminError("not_found"). */
export async function removeClient(ctx: AdminContext, name: string): Promise<void> {
  const removed = await ctx.audit.change(
    () => ctx.store.clients.remove(name),
    (ok) => (ok ? { type: "admin.client_removed", client: name } : null),
  );
  if (!removed) throw noClient(name);
}
