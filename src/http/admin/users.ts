// Admin API: users (list, show, add, update, remove, unlock, CSV import, self-service sign-in links), as `portcullis user …` does.

import * as v from "valibot";
import { createEnrolLink } from "../../admin/enrol-links.ts";
import { importUsers } from "../../admin/user-import.ts";
import { svgQR } from "../../otp/index.ts";
import { addUser, findUser, listUsers, removeUser, unlockUser, updateUser, userView as adminUserView } from "../../admin/users.ts";
import type { Store, User } from "../../store/types.ts";
import { BODY_LIMITS } from "../middleware.ts";
import { LEAST_ROLE } from "../../admin/audit.ts";
import { adminContextOf } from "./audit.ts";
import type { AdminRouter } from "./route.ts";
import { authTypeSchema, daySchema, userListItem, usernameParams, userView, warningsSchema } from "./schemas.ts";

const TAG = "users";
/** Longest password accepted (RADIUS User-Password carries at most 128 octets, RFC 2865 §5.2). */
const MAX_PASSWORD = 128;

const passwordSchema = v.pipe(v.string(), v.minLength(1), v.maxLength(MAX_PASSWORD), v.description("set as argon2id; never returned"));

const addBody = v.strictObject({
  username: v.pipe(v.string(), v.minLength(1), v.maxLength(253)),
  password: v.optional(passwordSchema),
  directory: v.optional(v.pipe(v.string(), v.description("a configured [[ldap]] profile: the directory checks the password (hybrid user)"))),
  phone: v.optional(v.pipe(v.string(), v.maxLength(32), v.description("E.164, or local form when `region` is set"))),
  email: v.optional(v.pipe(v.string(), v.maxLength(254))),
  type: v.optional(authTypeSchema),
});

const updateBody = v.strictObject({
  password: v.optional(v.nullable(passwordSchema)),
  phone: v.optional(v.nullable(v.pipe(v.string(), v.maxLength(32)))),
  email: v.optional(v.nullable(v.pipe(v.string(), v.maxLength(254)))),
  type: v.optional(v.nullable(authTypeSchema)),
  disabled: v.optional(v.boolean()),
  expires: v.optional(v.nullable(daySchema)),
});

const importBody = v.strictObject({ csv: v.pipe(v.string(), v.minLength(1), v.description("the `user import` CSV, header line first")) });

/** `user show --json`'s view of a user (the same operation, so both show the same). */
export async function describeUser(store: Store, user: User, now: number): Promise<v.InferOutput<typeof userView>> {
  return adminUserView(store, user, now);
}

/** Registers /users routes. */
export function userRoutes(r: AdminRouter): void {
  const { deps } = r;
  const { store } = deps;

  r.route({ method: "get", path: "/users", summary: "List users", tag: TAG, minRole: "operator", responses: { 200: { description: "Users", schema: v.array(userListItem) } } }, async (c) =>
    c.json(await listUsers(deps)),
  );

  r.route(
    { method: "get", path: "/users/:name", summary: "Show a user, their tokens and lockout counters", tag: TAG, minRole: "operator", params: usernameParams, responses: { 200: { description: "The user", schema: userView } }, errors: [404] },
    async (c, { params }) => {
      const user = await findUser(deps, params.name, "name");
      return c.json(await describeUser(store, user, deps.now()));
    },
  );

  r.route(
    { method: "post", path: "/users", summary: "Add a local or directory-linked (hybrid) user", tag: TAG, minRole: "admin", body: addBody, responses: { 201: { description: "The new user", schema: userView } }, errors: [409] },
    async (c, { body }) => {
      const user = await addUser(adminContextOf(deps, c), body);
      return c.json(await describeUser(store, user, deps.now()), 201);
    },
  );

  r.route(
    {
      method: "patch",
      path: "/users/:name",
      summary: "Change a user's password, type, phone, e-mail, status or expiry (null clears)",
      tag: TAG,
      minRole: "admin",
      params: usernameParams,
      body: updateBody,
      responses: { 200: { description: "The user after the change", schema: userView } },
      errors: [404],
    },
    async (c, { params, body }) => {
      const updated = await updateUser(adminContextOf(deps, c), params.name, body, "name");
      return c.json(await describeUser(store, updated, deps.now()));
    },
  );

  r.route(
    { method: "delete", path: "/users/:name", summary: "Remove a user (their tokens are kept, unassigned)", tag: TAG, minRole: "admin", params: usernameParams, responses: { 204: { description: "Removed" } }, errors: [404] },
    async (c, { params }) => {
      await removeUser(adminContextOf(deps, c), params.name, "name");
      return c.body(null, 204);
    },
  );

  r.route(
    {
      method: "post",
      path: "/users/:name/unlock",
      summary: "Clear the user's password and code lockout counters (operators may)",
      tag: TAG,
      minRole: LEAST_ROLE.unlock,
      params: usernameParams,
      responses: { 200: { description: "Whether anything was cleared", schema: v.object({ cleared: v.boolean() }) } },
    },
    async (c, { params }) => {
      const { cleared } = await unlockUser(adminContextOf(deps, c), params.name, "name");
      return c.json({ cleared });
    },
  );

  r.route(
    {
      method: "post",
      path: "/users/:name/enrol-link",
      summary: "Make a single-use sign-in link to the self-service portal ({public_url}/self-service/link/CODE, valid [self_service] enrol_link_ttl_h) for a user without a factor yet",
      tag: TAG,
      minRole: "admin",
      params: usernameParams,
      responses: {
        201: {
          description: "The link, once",
          schema: v.object({ user: v.string(), link: v.string(), qrSvg: v.pipe(v.string(), v.description("the link as an SVG QR code")), expiresAt: v.string() }),
        },
      },
      errors: [404, 409],
    },
    async (c, { params }) => {
      const made = await createEnrolLink(adminContextOf(deps, c), params.name);
      return c.json({ user: made.user.username, link: made.link, qrSvg: await svgQR(made.link), expiresAt: new Date(made.expiresAt).toISOString() }, 201);
    },
  );

  r.route(
    {
      method: "post",
      path: "/users/import",
      summary: "Import users from the `user import` CSV, all or nothing",
      tag: TAG,
      minRole: "admin",
      body: importBody,
      maxBodyBytes: BODY_LIMITS.adminImport,
      responses: {
        201: {
          description: "How many were imported; warnings about weak but accepted input (TOTP secrets shorter than 128 bits)",
          schema: v.object({ imported: v.number(), withToken: v.number(), warnings: warningsSchema }),
        },
      },
      errors: [409],
    },
    async (c, { body }) => {
      const { imported, withToken, warnings } = await importUsers(adminContextOf(deps, c), body.csv);
      return c.json({ imported, withToken, warnings }, 201);
    },
  );
}
