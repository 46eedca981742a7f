// Admin API: RADIUS clients (list, show, add with its shared secret, remove), as `portcullis client …` does.
// The shared secret is accepted on add and never answered.

import * as v from "valibot";
import { CLIError } from "../../cli/context.ts";
import { MIN_SECRET_LENGTH, parseDirectories } from "../../cli/client.ts";
import { APPROVAL_HOLD_MAX_S, APPROVAL_HOLD_MIN_S, changedPhoneFields, checkClientPhone, ClientPhoneError, SMS_CODE_LENGTH_MAX, SMS_CODE_LENGTH_MIN } from "../../admin/client-phone.ts";
import { parseCIDR } from "../../config/index.ts";
import { clientOverlaps, type ClientOverlap } from "../../radius/server/client-table.ts";
import { DEFAULT_CLIENT_PHONE, NetworkTakenError, StoreError, type ClientPhoneSettings, type RadiusClient, type Store } from "../../store/types.ts";
import { badRequest, fail, type AdminRouter } from "./route.ts";
import { clientView, iso, nameParams, nameSchema, warningsSchema } from "./schemas.ts";

const TAG = "clients";

/** The phone-factor settings, each optional (POST: the default; PATCH: unchanged). */
const phoneEntries = {
  approvalHoldS: v.optional(v.pipe(v.number(), v.integer(), v.minValue(APPROVAL_HOLD_MIN_S), v.maxValue(APPROVAL_HOLD_MAX_S), v.description("seconds a held request waits for its phone approval (default 25); in challenge mode how long the approval lives"))),
  approvalMode: v.optional(v.pipe(v.picklist(["hold", "challenge"]), v.description("hold the request until the approval ends (default), or answer Access-Challenge at once and check on the next leg"))),
  approvalNumberMatch: v.optional(v.pipe(v.boolean(), v.description("number matching on the approval page; challenge mode only (its prompt shows the number)"))),
  smsCodeLength: v.optional(v.pipe(v.nullable(v.pipe(v.number(), v.integer(), v.minValue(SMS_CODE_LENGTH_MIN), v.maxValue(SMS_CODE_LENGTH_MAX))), v.description("SMS one-time code length; null: [delivery] sms_code_length"))),
  smsCodeAlphabet: v.optional(v.pipe(v.nullable(v.picklist(["numeric", "alphabetic", "alphanumeric"])), v.description("SMS one-time code characters; null: [delivery] sms_code_alphabet"))),
};

const patchBody = v.strictObject(phoneEntries);

/** The phone settings a body names (only those keys; undefined entries left out). */
function phonePatch(body: Partial<ClientPhoneSettings>): Partial<ClientPhoneSettings> {
  const patch: Record<string, unknown> = {};
  for (const key of Object.keys(phoneEntries) as (keyof ClientPhoneSettings)[]) if (body[key] !== undefined) patch[key] = body[key];
  return patch as Partial<ClientPhoneSettings>;
}

const addBody = v.strictObject({
  name: nameSchema,
  address: v.pipe(v.string(), v.maxLength(64), v.description("IPv4 or IPv6 address or CIDR network")),
  secret: v.pipe(v.string(), v.minLength(1), v.maxLength(128), v.description("the RADIUS shared secret (at most 128 bytes); never answered")),
  firstFactor: v.optional(v.picklist(["password", "none"]), "password"),
  otpMode: v.optional(v.picklist(["challenge", "concat"]), "challenge"),
  requireMessageAuthenticator: v.optional(v.boolean(), true),
  allowPasswordOnly: v.optional(v.boolean(), false),
  directories: v.optional(v.nullable(v.pipe(v.array(nameSchema), v.minLength(1), v.description("[[ldap]] profile names and \"local\", in order; null: all, then local"))), null),
  ...phoneEntries,
});

/** The API view of a client, with its overlaps among `all` (which holds it): never the shared secret. */
export function describeClient(c: RadiusClient, all: ReadonlyMap<string, ClientOverlap>): v.InferOutput<typeof clientView> {
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
    createdAt: iso(c.createdAt)!,
    network,
    overlaps,
  };
}

/** Every client with its overlaps, as `client list` computes them. */
async function described(store: Store): Promise<v.InferOutput<typeof clientView>[]> {
  const clients = await store.clients.list();
  const overlaps = clientOverlaps(clients);
  return clients.map((c) => describeClient(c, overlaps));
}

/** Registers /clients routes. */
export function clientRoutes(r: AdminRouter): void {
  const { deps } = r;
  const { store } = deps;

  r.route({ method: "get", path: "/clients", summary: "List RADIUS clients", tag: TAG, minRole: "operator", responses: { 200: { description: "Clients", schema: v.array(clientView) } } }, async (c) =>
    c.json(await described(store)),
  );

  r.route(
    { method: "get", path: "/clients/:name", summary: "Show a RADIUS client", tag: TAG, minRole: "operator", params: nameParams, responses: { 200: { description: "The client", schema: clientView } }, errors: [404] },
    async (c, { params }) => {
      const client = (await described(store)).find((x) => x.name === params.name);
      return client ? c.json(client) : fail(c, 404);
    },
  );

  r.route(
    {
      method: "post",
      path: "/clients",
      summary: "Add a RADIUS client",
      tag: TAG,
      minRole: "admin",
      body: addBody,
      responses: { 201: { description: "The new client and warnings", schema: v.object({ client: clientView, warnings: warningsSchema }) } },
      // 409: the name exists, or another client has exactly the same network
      errors: [409],
    },
    async (c, { body }) => {
      const address = parseCIDR(body.address.trim());
      if (!address) return badRequest(c, "address", "an IPv4 or IPv6 address or CIDR network (192.0.2.10, 192.0.2.0/24, 2001:db8::/64)");
      if (body.firstFactor === "none" && body.allowPasswordOnly) {
        // With no first factor a password-only user would be let in on nothing at all.
        return badRequest(c, "allowPasswordOnly", "false when firstFactor is none");
      }
      if (new TextEncoder().encode(body.secret).length > 128) return badRequest(c, "secret", "at most 128 bytes");
      let directories: string[] | null = null;
      if (body.directories !== null) {
        try {
          directories = parseDirectories(body.directories.join(","), deps.config.ldap.map((p) => p.name));
        } catch (e) {
          if (e instanceof CLIError) return badRequest(c, "directories", "configured [[ldap]] profile names and local, each once");
          throw e;
        }
      }
      let phone: ClientPhoneSettings;
      try {
        phone = checkClientPhone(DEFAULT_CLIENT_PHONE, phonePatch(body), body.otpMode);
      } catch (e) {
        if (e instanceof ClientPhoneError) return badRequest(c, e.field, e.message);
        throw e;
      }
      const warnings: string[] = [];
      if (body.secret.length < MIN_SECRET_LENGTH) warnings.push(`the shared secret is shorter than ${MIN_SECRET_LENGTH} characters; use a long random secret`);
      if (!body.requireMessageAuthenticator) warnings.push("requests from this client are accepted without Message-Authenticator (CVE-2024-3596); enable it on the NAS when it can");
      let client: RadiusClient;
      try {
        client = await store.clients.add({
          name: body.name,
          address,
          secret: body.secret,
          firstFactor: body.firstFactor,
          otpMode: body.otpMode,
          requireMessageAuthenticator: body.requireMessageAuthenticator,
          allowPasswordOnly: body.allowPasswordOnly,
          directories,
          ...phone,
        });
      } catch (e) {
        if (e instanceof StoreError && e.code === "conflict") return fail(c, 409, "a client with this name exists");
        // Exactly the same network could never be matched; an overlapping one is fine (the narrower wins).
        if (e instanceof NetworkTakenError) return fail(c, 409, `client ${e.client} already has this network; a second client for it could never be matched`);
        throw e;
      }
      deps.audit({ type: "admin.client_added", client: client.name, address, by: c.get("apiKey").name });
      const view = (await described(store)).find((x) => x.name === client.name) ?? describeClient(client, new Map());
      return c.json({ client: view, warnings }, 201);
    },
  );

  r.route(
    {
      method: "patch",
      path: "/clients/:name",
      summary: "Change a RADIUS client's phone-factor settings",
      tag: TAG,
      minRole: "admin",
      params: nameParams,
      body: patchBody,
      responses: { 200: { description: "The client", schema: clientView } },
      errors: [404],
    },
    async (c, { params, body }) => {
      const current = await store.clients.findByName(params.name);
      if (!current) return fail(c, 404);
      let next: ClientPhoneSettings;
      try {
        next = checkClientPhone(current, phonePatch(body), current.otpMode);
      } catch (e) {
        if (e instanceof ClientPhoneError) return badRequest(c, e.field, e.message);
        throw e;
      }
      const fields = changedPhoneFields(current, next);
      if (!(await store.clients.updatePhone(params.name, next))) return fail(c, 404);
      if (fields.length > 0) deps.audit({ type: "admin.client_updated", client: params.name, fields, by: c.get("apiKey").name });
      const view = (await described(store)).find((x) => x.name === params.name);
      return view ? c.json(view) : fail(c, 404);
    },
  );

  r.route(
    { method: "delete", path: "/clients/:name", summary: "Remove a RADIUS client", tag: TAG, minRole: "admin", params: nameParams, responses: { 204: { description: "Removed" } }, errors: [404] },
    async (c, { params }) => {
      if (!(await store.clients.remove(params.name))) return fail(c, 404);
      deps.audit({ type: "admin.client_removed", client: params.name, by: c.get("apiKey").name });
      return c.body(null, 204);
    },
  );
}
