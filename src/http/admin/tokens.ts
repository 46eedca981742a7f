// Admin API: TOTP/HOTP tokens (list, enrol with otpauth URI and SVG QR code, assign, disable/enable,
// resync from two codes, remove, PSKC/CSV import), as `portcullis token …` does.

import * as v from "valibot";
import { BODY_LIMITS } from "../middleware.ts";
import { importedTokens } from "../../cli/token.ts";
import { newSerial } from "../../cli/user-import.ts";
import { cleanUsername } from "../../admin/validate.ts";
import {
  decodeBase32,
  generateSecret,
  MAX_SECRET_BYTES,
  MIN_SECRET_BYTES,
  OTPError,
  otpauthURI,
  parsePSKC,
  parseTokenCSV,
  RECOMMENDED_MIN_SECRET_BYTES,
  resyncHOTP,
  resyncTOTP,
  svgQR,
  type ImportedToken,
  type PSKCOptions,
} from "../../otp/index.ts";
import { StoreError, type NewToken, type Token, type TokenState, type User } from "../../store/types.ts";
import type { HttpDeps } from "../types.ts";
import { badRequest, fail, type AdminRouter } from "./route.ts";
import { idParams, tokenView } from "./schemas.ts";

const TAG = "tokens";

const algorithmSchema = v.picklist(["SHA1", "SHA256", "SHA512"]);

const enrolBody = v.strictObject({
  user: v.pipe(v.string(), v.minLength(1), v.maxLength(253)),
  kind: v.optional(v.picklist(["totp", "hotp"]), "totp"),
  secret: v.optional(v.pipe(v.string(), v.maxLength(160), v.description(`base32 (RFC 4648) of ${MIN_SECRET_BYTES}-${MAX_SECRET_BYTES} bytes; generated when absent`))),
  digits: v.optional(v.picklist([6, 8])),
  period: v.optional(v.pipe(v.number(), v.integer(), v.minValue(10), v.maxValue(300), v.description("TOTP step in seconds"))),
  algorithm: v.optional(algorithmSchema),
  counter: v.optional(v.pipe(v.number(), v.integer(), v.minValue(0), v.maxValue(Number.MAX_SAFE_INTEGER), v.description("HOTP initial counter"))),
});

const enrolled = v.object({
  token: tokenView,
  otpauthUri: v.pipe(v.string(), v.description("otpauth:// provisioning URI; it holds the seed, shown only now")),
  qrSvg: v.pipe(v.string(), v.description("the URI as an SVG QR code")),
  warnings: v.array(v.string()),
});

const assignBody = v.strictObject({ user: v.nullable(v.pipe(v.string(), v.minLength(1), v.maxLength(253), v.description("username; null unassigns"))) });

const resyncBody = v.strictObject({
  code1: v.pipe(v.string(), v.regex(/^\d{6,8}$/), v.description("a code")),
  code2: v.pipe(v.string(), v.regex(/^\d{6,8}$/), v.description("the next code")),
});

const importBody = v.strictObject({
  format: v.picklist(["pskc", "csv"]),
  content: v.pipe(v.string(), v.minLength(1), v.description("the PSKC XML (RFC 6030) or token CSV file")),
  pskHex: v.optional(v.pipe(v.string(), v.regex(/^([0-9a-fA-F]{2})+$/), v.description("PSKC pre-shared key, hex"))),
  password: v.optional(v.pipe(v.string(), v.minLength(1), v.description("PSKC PBKDF2 password"))),
  privateKeyPem: v.optional(v.pipe(v.string(), v.minLength(1), v.description("PSKC RSA private key, PEM"))),
});

const listQuery = v.object({
  user: v.optional(v.pipe(v.string(), v.minLength(1), v.maxLength(253))),
  serial: v.optional(v.pipe(v.string(), v.minLength(1), v.maxLength(64))),
});

/** The API view of a token: never the seed. */
export function describeToken(t: Token, owner: string | null): v.InferOutput<typeof tokenView> {
  return { id: t.id, serial: t.serial, kind: t.kind, state: t.state, user: owner, digits: t.digits, algorithm: t.algorithm, period: t.kind === "totp" ? t.period : null };
}

/** Registers /tokens routes. */
export function tokenRoutes(r: AdminRouter): void {
  const { deps } = r;
  const { store } = deps;
  const userByName = async (raw: string): Promise<User | undefined> => {
    const name = cleanUsername(raw, deps.config.radius.realms);
    return name === undefined ? undefined : store.users.findByName(name);
  };
  const ownerName = async (t: Token) => (t.userId === null ? null : ((await store.users.findById(t.userId))?.username ?? null));
  const tokenById = (id: string) => store.tokens.findById(Number(id));

  r.route(
    { method: "get", path: "/tokens", summary: "List tokens, optionally of one user or by serial", tag: TAG, minRole: "operator", query: listQuery, responses: { 200: { description: "Tokens", schema: v.array(tokenView) } }, errors: [404] },
    async (c, { query }) => {
      let owner: User | undefined;
      if (query.user !== undefined) {
        owner = await userByName(query.user);
        if (!owner) return fail(c, 404);
      }
      const [tokens, users] = await Promise.all([store.tokens.list(owner?.id), store.users.list()]);
      const names = new Map(users.map((u) => [u.id, u.username]));
      const rows = tokens.filter((t) => query.serial === undefined || t.serial === query.serial);
      return c.json(rows.map((t) => describeToken(t, t.userId === null ? null : (names.get(t.userId) ?? null))));
    },
  );

  r.route(
    { method: "get", path: "/tokens/:id", summary: "Show a token", tag: TAG, minRole: "operator", params: idParams, responses: { 200: { description: "The token", schema: tokenView } }, errors: [404] },
    async (c, { params }) => {
      const t = await tokenById(params.id);
      if (!t) return fail(c, 404);
      return c.json(describeToken(t, await ownerName(t)));
    },
  );

  r.route(
    {
      method: "post",
      path: "/tokens",
      summary: "Enrol a TOTP or HOTP token for a user; answers the otpauth URI and a QR code (SVG) once",
      tag: TAG,
      minRole: "admin",
      body: enrolBody,
      responses: { 201: { description: "The token and its provisioning URI", schema: enrolled } },
      errors: [404],
    },
    async (c, { body }) => {
      const { otp } = deps.config;
      const kind = body.kind;
      if (kind === "totp" && body.counter !== undefined) return badRequest(c, "counter", "absent for a TOTP token");
      if (kind === "hotp" && body.period !== undefined) return badRequest(c, "period", "absent for an HOTP token");
      const warnings: string[] = [];
      let secret: Uint8Array;
      if (body.secret !== undefined) {
        const rule = `base32 (RFC 4648) of ${MIN_SECRET_BYTES} to ${MAX_SECRET_BYTES} bytes`;
        try {
          secret = decodeBase32(body.secret.replace(/[\s-]/g, ""));
        } catch {
          return badRequest(c, "secret", rule);
        }
        if (secret.length < MIN_SECRET_BYTES || secret.length > MAX_SECRET_BYTES) return badRequest(c, "secret", rule);
        if (secret.length < RECOMMENDED_MIN_SECRET_BYTES) warnings.push(`the secret is shorter than ${RECOMMENDED_MIN_SECRET_BYTES * 8} bits (RFC 4226 §4 R6); prefer a generated one`);
      } else {
        secret = generateSecret({ random: deps.random });
      }
      const user = await userByName(body.user);
      if (!user) return fail(c, 404, "no such user");
      const digits = body.digits ?? otp.default_digits;
      const period = body.period ?? otp.default_period;
      const algorithm = body.algorithm ?? otp.default_algorithm;
      const counter = body.counter ?? 0;
      let token: Token | undefined;
      for (let attempt = 0; !token; attempt++) {
        try {
          token = await store.tokens.add({ serial: newSerial(kind, deps.random), userId: user.id, kind, secret, algorithm, digits, period, counter, state: "active" });
        } catch (e) {
          // A random serial collided with an existing one: draw another.
          if (!(e instanceof StoreError && e.code === "conflict") || attempt >= 3) throw e;
        }
      }
      const uri = otpauthURI({ kind, issuer: otp.issuer, account: user.username, secret, algorithm, digits, period, counter });
      deps.audit({ type: "admin.token_enrolled", user: user.username, token: token.id, kind, by: c.get("apiKey").name });
      return c.json({ token: describeToken(token, user.username), otpauthUri: uri, qrSvg: await svgQR(uri), warnings }, 201);
    },
  );

  r.route(
    {
      method: "post",
      path: "/tokens/:id/assign",
      summary: "Assign a token to a user (null: unassign)",
      tag: TAG,
      minRole: "admin",
      params: idParams,
      body: assignBody,
      responses: { 200: { description: "The token", schema: tokenView } },
      errors: [404],
    },
    async (c, { params, body }) => {
      const t = await tokenById(params.id);
      if (!t) return fail(c, 404);
      let owner: User | undefined;
      if (body.user !== null) {
        owner = await userByName(body.user);
        if (!owner) return fail(c, 404, "no such user");
      }
      await store.tokens.assign(t.id, owner?.id ?? null);
      deps.audit({ type: "admin.token_assigned", token: t.id, user: owner?.username ?? null, by: c.get("apiKey").name });
      return c.json(describeToken({ ...t, userId: owner?.id ?? null }, owner?.username ?? null));
    },
  );

  for (const [action, state] of [
    ["disable", "disabled"],
    ["enable", "active"],
  ] as const satisfies ReadonlyArray<readonly [string, TokenState]>) {
    r.route(
      { method: "post", path: `/tokens/:id/${action}`, summary: `${action === "disable" ? "Disable" : "Enable"} a token`, tag: TAG, minRole: "admin", params: idParams, responses: { 200: { description: "The token", schema: tokenView } }, errors: [404] },
      async (c, { params }) => {
        const t = await tokenById(params.id);
        if (!t) return fail(c, 404);
        await store.tokens.setState(t.id, state);
        deps.audit({ type: "admin.token_state", token: t.id, state, by: c.get("apiKey").name });
        return c.json(describeToken({ ...t, state }, await ownerName(t)));
      },
    );
  }

  r.route(
    {
      method: "post",
      path: "/tokens/:id/resync",
      summary: "Resynchronise a token from two consecutive codes (TOTP drift or HOTP counter)",
      tag: TAG,
      minRole: "admin",
      params: idParams,
      body: resyncBody,
      responses: { 200: { description: "The new state", schema: v.object({ drift: v.nullable(v.number()), counter: v.nullable(v.number()) }) } },
      errors: [404, 409],
    },
    async (c, { params, body }) => {
      const t = await tokenById(params.id);
      if (!t) return fail(c, 404);
      const shape = new RegExp(`^\\d{${t.digits}}$`);
      if (!shape.test(body.code1)) return badRequest(c, "code1", `a ${t.digits}-digit code`);
      if (!shape.test(body.code2)) return badRequest(c, "code2", `a ${t.digits}-digit code`);
      if (t.kind === "totp") {
        const res = resyncTOTP(t, body.code1, body.code2, { now: deps.now() });
        if (!res) return fail(c, 409, "the two codes are not consecutive codes of this token; nothing changed");
        await store.tokens.resync(t.id, { lastStep: res.lastStep, drift: res.drift });
        deps.audit({ type: "admin.token_resynced", token: t.id, by: c.get("apiKey").name });
        return c.json({ drift: res.drift, counter: null });
      }
      const res = resyncHOTP(t, body.code1, body.code2);
      if (!res) return fail(c, 409, "the two codes are not consecutive codes of this token; nothing changed");
      await store.tokens.resync(t.id, { counter: res.counter });
      deps.audit({ type: "admin.token_resynced", token: t.id, by: c.get("apiKey").name });
      return c.json({ drift: null, counter: res.counter });
    },
  );

  r.route(
    { method: "delete", path: "/tokens/:id", summary: "Remove a token", tag: TAG, minRole: "admin", params: idParams, responses: { 204: { description: "Removed" } }, errors: [404] },
    async (c, { params }) => {
      const t = await tokenById(params.id);
      if (!t || !(await store.tokens.remove(t.id))) return fail(c, 404);
      deps.audit({ type: "admin.token_removed", token: t.id, by: c.get("apiKey").name });
      return c.body(null, 204);
    },
  );

  r.route(
    {
      method: "post",
      path: "/tokens/import",
      summary: "Import tokens from PSKC (RFC 6030) or CSV, all or nothing; owners are matched by username",
      tag: TAG,
      minRole: "admin",
      body: importBody,
      maxBodyBytes: BODY_LIMITS.adminImport,
      responses: { 201: { description: "How many were imported and assigned", schema: v.object({ imported: v.number(), assigned: v.number(), unknownOwners: v.number() }) } },
      errors: [409],
    },
    async (c, { body }) => importTokens(deps, c, body),
  );
}

async function importTokens(deps: HttpDeps, c: Parameters<Parameters<AdminRouter["route"]>[1]>[0], body: { format: "pskc" | "csv"; content: string; pskHex?: string; password?: string; privateKeyPem?: string }): Promise<Response> {
  const keyOptions = [body.pskHex, body.password, body.privateKeyPem].filter((x) => x !== undefined).length;
  if (keyOptions > 1) return badRequest(c, "pskHex", "at most one of pskHex, password and privateKeyPem");
  if (body.format === "csv" && keyOptions > 0) return badRequest(c, "format", "pskc when pskHex, password or privateKeyPem is given");
  const options: PSKCOptions = {};
  if (body.pskHex !== undefined) options.preSharedKey = new Uint8Array(Buffer.from(body.pskHex, "hex"));
  if (body.password !== undefined) options.password = body.password;
  if (body.privateKeyPem !== undefined) options.privateKeyPem = body.privateKeyPem;
  let imported: ImportedToken[];
  try {
    imported = body.format === "pskc" ? parsePSKC(body.content, options) : parseTokenCSV(body.content);
  } catch (e) {
    // OTPError messages never hold a seed, key or password (otp/errors.ts); the code is enough here.
    if (e instanceof OTPError) return badRequest(c, "content", `a valid ${body.format === "pskc" ? "PSKC document" : "token CSV"} (${e.code})`);
    throw e;
  }
  if (imported.length === 0) return badRequest(c, "content", "at least one token");
  const { store } = deps;
  const { tokens, assigned, unknownOwners } = await importedTokens(store, imported, deps.config.radius.realms);
  try {
    await store.tokens.addMany(tokens);
  } catch (e) {
    if (e instanceof StoreError && e.code === "conflict") return fail(c, 409, "a token serial exists; nothing was imported");
    throw e;
  }
  deps.audit({ type: "admin.tokens_imported", count: tokens.length, by: c.get("apiKey").name });
  return c.json({ imported: tokens.length, assigned, unknownOwners }, 201);
}
