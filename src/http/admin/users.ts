// Admin API: users (list, show, add, update, remove, unlock, CSV import), as `portcullis user …` does.

import * as v from "valibot";
import { BODY_LIMITS } from "../middleware.ts";
import { parseAuthType, type AuthType } from "../../domain/auth-types.ts";
import { CLIError } from "../../cli/context.ts";
import { parseExpiry } from "../../cli/apikey.ts";
import { ImportError, prepareImportRows, validateUserCSV } from "../../cli/user-import.ts";
import { userView as cliUserView } from "../../cli/user.ts";
import { cleanUsername, isEmail, normalizePhone, PHONE_RULE } from "../../cli/validate.ts";
import { hashPassword } from "../../runtime/password.ts";
import { CSVError } from "../../util/csv.ts";
import { StoreError, type NewUser, type Store, type User } from "../../store/types.ts";
import type { HttpDeps } from "../types.ts";
import { badRequest, fail, type AdminRouter } from "./route.ts";
import { authTypeSchema, daySchema, userListItem, usernameParams, userView } from "./schemas.ts";

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

/** The normalised name, or undefined (empty, too long, control characters). */
function normalName(deps: HttpDeps, raw: string): string | undefined {
  return cleanUsername(raw, deps.config.radius.realms);
}

/** `user show --json`'s view of a user (the CLI's own function, so both show the same). */
export async function describeUser(store: Store, user: User, now: number): Promise<v.InferOutput<typeof userView>> {
  return cliUserView(store, user, now);
}

function toAuthType(input: string | number): AuthType | undefined {
  return parseAuthType(String(input));
}

/** Registers /users routes. */
export function userRoutes(r: AdminRouter): void {
  const { deps } = r;
  const { store } = deps;

  r.route({ method: "get", path: "/users", summary: "List users", tag: TAG, minRole: "operator", responses: { 200: { description: "Users", schema: v.array(userListItem) } } }, async (c) => {
    const [users, tokens] = await Promise.all([store.users.list(), store.tokens.list()]);
    const count = new Map<number, number>();
    for (const t of tokens) if (t.userId !== null) count.set(t.userId, (count.get(t.userId) ?? 0) + 1);
    return c.json(
      users.map((u) => ({
        username: u.username,
        directory: u.directory,
        externalId: u.externalId,
        type: u.type,
        phone: u.phone,
        email: u.email,
        password: u.passwordHash !== null,
        disabled: u.disabled,
        tokens: count.get(u.id) ?? 0,
      })),
    );
  });

  r.route(
    { method: "get", path: "/users/:name", summary: "Show a user, their tokens and lockout counters", tag: TAG, minRole: "operator", params: usernameParams, responses: { 200: { description: "The user", schema: userView } }, errors: [404] },
    async (c, { params }) => {
      const name = normalName(deps, params.name);
      const user = name === undefined ? undefined : await store.users.findByName(name);
      if (!user) return fail(c, 404);
      return c.json(await describeUser(store, user, deps.now()));
    },
  );

  r.route(
    { method: "post", path: "/users", summary: "Add a local or directory-linked (hybrid) user", tag: TAG, minRole: "admin", body: addBody, responses: { 201: { description: "The new user", schema: userView } }, errors: [409] },
    async (c, { body }) => {
      const name = normalName(deps, body.username);
      if (name === undefined) return badRequest(c, "username", "a login name of 1-253 characters without control characters");
      let directory: string | null = null;
      if (body.directory !== undefined) {
        if (!deps.config.ldap.some((p) => p.name === body.directory)) return badRequest(c, "directory", "a configured [[ldap]] profile");
        if (body.password !== undefined) return badRequest(c, "password", "absent for a directory user: the directory checks the password");
        directory = body.directory;
      }
      let type: AuthType | null = directory === null ? "totp" : null;
      if (body.type !== undefined) type = toAuthType(body.type) ?? null;
      const phone = body.phone === undefined ? null : (normalizePhone(body.phone, deps.config.region) ?? null);
      if (body.phone !== undefined && phone === null) return badRequest(c, "phone", PHONE_RULE);
      if (body.email !== undefined && !isEmail(body.email.trim())) return badRequest(c, "email", "an e-mail address");
      const passwordHash = body.password === undefined ? null : await hashPassword(body.password);
      const record: NewUser = { username: name, passwordHash, type, phone, email: body.email?.trim() ?? null, disabled: false, expiresAt: null, directory, externalId: null, directoryPhone: null };
      let user: User;
      try {
        user = await store.users.add(record);
      } catch (e) {
        if (e instanceof StoreError && e.code === "conflict") return fail(c, 409, "a user with this name exists");
        throw e;
      }
      deps.audit({ type: "admin.user_added", user: user.username, by: c.get("apiKey").name });
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
      const name = normalName(deps, params.name);
      const user = name === undefined ? undefined : await store.users.findByName(name);
      if (!user) return fail(c, 404);
      const patch: Partial<NewUser> = {};
      if (body.password !== undefined) {
        if (user.directory !== null && body.password !== null) return badRequest(c, "password", "absent for a directory user: the directory checks the password");
        patch.passwordHash = body.password === null ? null : await hashPassword(body.password);
      }
      if (body.type !== undefined) {
        // null ("as the directory says") exists only on a directory-linked record.
        if (body.type === null && user.directory === null) return badRequest(c, "type", "a type (null only for a directory user)");
        patch.type = body.type === null ? null : (toAuthType(body.type) ?? null);
      }
      if (body.phone !== undefined) {
        const phone = body.phone === null ? null : (normalizePhone(body.phone, deps.config.region) ?? null);
        if (body.phone !== null && phone === null) return badRequest(c, "phone", PHONE_RULE);
        patch.phone = phone;
      }
      if (body.email !== undefined) {
        if (body.email !== null && !isEmail(body.email.trim())) return badRequest(c, "email", "an e-mail address");
        patch.email = body.email === null ? null : body.email.trim();
      }
      if (body.disabled !== undefined) patch.disabled = body.disabled;
      if (body.expires !== undefined) {
        if (body.expires === null) patch.expiresAt = null;
        else {
          try {
            patch.expiresAt = parseExpiry(body.expires, deps.now());
          } catch (e) {
            if (e instanceof CLIError) return badRequest(c, "expires", "a calendar date YYYY-MM-DD, today or later");
            throw e;
          }
        }
      }
      await store.users.update(user.id, patch);
      deps.audit({ type: "admin.user_updated", user: user.username, fields: Object.keys(patch).map((k) => (k === "passwordHash" ? "password" : k)), by: c.get("apiKey").name });
      const updated = (await store.users.findById(user.id)) ?? user;
      return c.json(await describeUser(store, updated, deps.now()));
    },
  );

  r.route(
    { method: "delete", path: "/users/:name", summary: "Remove a user (their tokens are kept, unassigned)", tag: TAG, minRole: "admin", params: usernameParams, responses: { 204: { description: "Removed" } }, errors: [404] },
    async (c, { params }) => {
      const name = normalName(deps, params.name);
      if (name === undefined || !(await store.users.remove(name))) return fail(c, 404);
      deps.audit({ type: "admin.user_removed", user: name, by: c.get("apiKey").name });
      return c.body(null, 204);
    },
  );

  r.route(
    {
      method: "post",
      path: "/users/:name/unlock",
      summary: "Clear the user's password and code lockout counters",
      tag: TAG,
      minRole: "admin",
      params: usernameParams,
      responses: { 200: { description: "Whether anything was cleared", schema: v.object({ cleared: v.boolean() }) } },
    },
    async (c, { params }) => {
      // Lockout is keyed on the normalised identity, local or directory user alike: no lookup.
      const name = normalName(deps, params.name);
      if (name === undefined) return badRequest(c, "name", "a login name of 1-253 characters without control characters");
      const counters = await store.lockouts.clear(name);
      // The approver app's lock after a report and back-off after rejections end too.
      const cleared = (await store.approvalBlocks.clear(name)) || counters;
      deps.audit({ type: "admin.user_unlocked", user: name, cleared, by: c.get("apiKey").name });
      return c.json({ cleared });
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
      responses: { 201: { description: "How many were imported", schema: v.object({ imported: v.number(), withToken: v.number() }) } },
      errors: [409],
    },
    async (c, { body }) => {
      const { config } = deps;
      let users;
      try {
        users = validateUserCSV(body.csv, {
          region: config.region,
          realms: config.radius.realms,
          defaults: { algorithm: config.otp.default_algorithm, digits: config.otp.default_digits, period: config.otp.default_period },
        });
      } catch (e) {
        // ImportError reasons never repeat a field's value (cli/user-import.ts).
        if (e instanceof ImportError) return badRequest(c, `csv.line.${e.line}`, e.reason);
        if (e instanceof CSVError) return badRequest(c, "csv", "well-formed CSV (RFC 4180)");
        throw e;
      }
      const existing = new Set((await store.users.list()).map((u) => u.username));
      const clash = users.find((u) => existing.has(u.username));
      if (clash) return fail(c, 409, `line ${clash.line}: the user exists; nothing was imported`);
      const rows = await prepareImportRows(users);
      try {
        await store.users.importMany(rows);
      } catch (e) {
        if (e instanceof StoreError && e.code === "conflict") return fail(c, 409, "a user or token serial exists; nothing was imported");
        throw e;
      }
      const withToken = rows.filter((row) => row.tokens.length > 0).length;
      deps.audit({ type: "admin.users_imported", count: rows.length, by: c.get("apiKey").name });
      return c.json({ imported: rows.length, withToken }, 201);
    },
  );
}

