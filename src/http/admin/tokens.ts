// Admin API: TOTP/HOTP tokens (list, enrol with otpauth URI and SVG QR code, assign, disable/enable,
// resync from two codes, remove, PSKC/CSV import), as `portcullis token …` does.

import * as v from "valibot";
import { assignToken, describeToken as adminDescribeToken, enrolToken, findToken, importTokens, listTokens, removeToken, resyncToken, setTokenState, showToken } from "../../admin/tokens.ts";
import { MAX_SECRET_BYTES, MIN_SECRET_BYTES, svgQR } from "../../otp/index.ts";
import type { Token, TokenState } from "../../store/types.ts";
import { BODY_LIMITS } from "../middleware.ts";
import { adminContextOf } from "./audit.ts";
import type { AdminRouter } from "./route.ts";
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
  return adminDescribeToken(t, owner);
}

/** Registers /tokens routes. */
export function tokenRoutes(r: AdminRouter): void {
  const { deps } = r;

  r.route(
    { method: "get", path: "/tokens", summary: "List tokens, optionally of one user or by serial", tag: TAG, minRole: "operator", query: listQuery, responses: { 200: { description: "Tokens", schema: v.array(tokenView) } }, errors: [404] },
    async (c, { query }) => c.json(await listTokens(deps, query)),
  );

  r.route(
    { method: "get", path: "/tokens/:id", summary: "Show a token", tag: TAG, minRole: "operator", params: idParams, responses: { 200: { description: "The token", schema: tokenView } }, errors: [404] },
    async (c, { params }) => c.json(await showToken(deps, Number(params.id))),
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
      const { token, owner, uri, warnings } = await enrolToken(adminContextOf(deps, c), body);
      return c.json({ token: describeToken(token, owner.username), otpauthUri: uri, qrSvg: await svgQR(uri), warnings }, 201);
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
      const ctx = adminContextOf(deps, c);
      const { token, owner } = await assignToken(ctx, await findToken(ctx, Number(params.id)), body.user);
      return c.json(describeToken(token, owner?.username ?? null));
    },
  );

  for (const [action, state] of [
    ["disable", "disabled"],
    ["enable", "active"],
  ] as const satisfies ReadonlyArray<readonly [string, TokenState]>) {
    r.route(
      { method: "post", path: `/tokens/:id/${action}`, summary: `${action === "disable" ? "Disable" : "Enable"} a token`, tag: TAG, minRole: "admin", params: idParams, responses: { 200: { description: "The token", schema: tokenView } }, errors: [404] },
      async (c, { params }) => {
        await setTokenState(adminContextOf(deps, c), Number(params.id), state);
        return c.json(await showToken(deps, Number(params.id)));
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
      const { drift, counter } = await resyncToken(adminContextOf(deps, c), Number(params.id), body.code1, body.code2);
      return c.json({ drift, counter });
    },
  );

  r.route(
    { method: "delete", path: "/tokens/:id", summary: "Remove a token", tag: TAG, minRole: "admin", params: idParams, responses: { 204: { description: "Removed" } }, errors: [404] },
    async (c, { params }) => {
      await removeToken(adminContextOf(deps, c), Number(params.id));
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
      responses: {
        201: {
          description: "How many were imported and assigned",
          schema: v.object({ imported: v.number(), assigned: v.number(), unknownOwners: v.number() }),
        },
      },
      errors: [409],
    },
    async (c, { body }) => {
      const { imported, assigned, unknownOwners } = await importTokens(adminContextOf(deps, c), {
        format: body.format,
        content: body.content,
        ...(body.pskHex !== undefined ? { preSharedKey: new Uint8Array(Buffer.from(body.pskHex, "hex")) } : {}),
        ...(body.password !== undefined ? { password: body.password } : {}),
        ...(body.privateKeyPem !== undefined ? { privateKeyPem: body.privateKeyPem } : {}),
      });
      return c.json({ imported, assigned, unknownOwners }, 201);
    },
  );
}
