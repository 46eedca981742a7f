// Admin API: RADIUS clients (list, show, add with its shared secret, remove), as `portcullis client …` does.
// The shared secret is accepted on add and never answered.

import * as v from "valibot";
import { addClient, describeClient as adminDescribeClient, listClients, removeClient, showClient, updateClientPhone } from "../../admin/clients.ts";
import { APPROVAL_HOLD_MAX_S, APPROVAL_HOLD_MIN_S, SMS_CODE_LENGTH_MAX, SMS_CODE_LENGTH_MIN } from "../../admin/client-phone.ts";
import type { ClientOverlap } from "../../radius/server/client-table.ts";
import type { ClientPhoneSettings, RadiusClient } from "../../store/types.ts";
import { adminContextOf } from "./audit.ts";
import type { AdminRouter } from "./route.ts";
import { clientView, nameParams, nameSchema, warningsSchema } from "./schemas.ts";

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
  return adminDescribeClient(c, all);
}

/** Registers /clients routes. */
export function clientRoutes(r: AdminRouter): void {
  const { deps } = r;

  r.route({ method: "get", path: "/clients", summary: "List RADIUS clients", tag: TAG, minRole: "operator", responses: { 200: { description: "Clients", schema: v.array(clientView) } } }, async (c) =>
    c.json(await listClients(deps)),
  );

  r.route(
    { method: "get", path: "/clients/:name", summary: "Show a RADIUS client", tag: TAG, minRole: "operator", params: nameParams, responses: { 200: { description: "The client", schema: clientView } }, errors: [404] },
    async (c, { params }) => c.json(await showClient(deps, params.name)),
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
    async (c, { body }) => c.json(await addClient(adminContextOf(deps, c), body), 201),
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
    async (c, { params, body }) => c.json(await updateClientPhone(adminContextOf(deps, c), params.name, phonePatch(body))),
  );

  r.route(
    { method: "delete", path: "/clients/:name", summary: "Remove a RADIUS client", tag: TAG, minRole: "admin", params: nameParams, responses: { 204: { description: "Removed" } }, errors: [404] },
    async (c, { params }) => {
      await removeClient(adminContextOf(deps, c), params.name);
      return c.body(null, 204);
    },
  );
}
