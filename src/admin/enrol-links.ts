// Admin operation: a single-use sign-in link to the self-service portal, for a user who has no
// factor yet (`portcullis user enrol-link USER`, POST /api/admin/v1/users/{username}/enrol-link).
// The link holds 128 random bits; the store keeps only their SHA-256.

import { createHash } from "node:crypto";
import type { User } from "../store/types.ts";
import type { AdminContext } from "./context.ts";
import { AdminError } from "./errors.ts";
import { findUser } from "./users.ts";

/** The shape of a link code: 128 bits, base64url. */
export const ENROL_LINK_CODE = /^[A-Za-z0-9_-]{22}$/;

/** SHA-256 hex of a link code: what the store keeps. */
export function hashEnrolLinkCode(code: string): string {
  return createHash("sha256").update(code, "utf8").digest("hex");
}

/** The link: `{public_url}/self-service/link/CODE`. Opening it shows a button; only pressing it uses the code. */
export function enrolLinkURL(publicUrl: string, code: string): string {
  return `${publicUrl.replace(/\/+$/, "")}/self-service/link/${code}`;
}

/**
 * Makes a single-use sign-in link for the user named `rawUser`, valid `[self_service]
 * enrol_link_ttl_h`, and records admin.enrol_link_created. Returns the link (it holds the code: show
 * it once). Throws AdminError: "not_found" (field `user`); "conflict" when the portal is off or
 * `[http] public_url` is empty (links are built only from it).
 */
export async function createEnrolLink(ctx: AdminContext, rawUser: string): Promise<{ user: User; link: string; expiresAt: number }> {
  const user = await findUser(ctx, rawUser, "user");
  if (!ctx.config.self_service.enabled) {
    const why = "the self-service portal is off (self_service.enabled = false); a link would lead nowhere";
    throw new AdminError("conflict", why, { expose: why });
  }
  const publicUrl = ctx.config.http.public_url;
  if (!publicUrl) {
    const why = "http.public_url is not set; the link is built only from it";
    throw new AdminError("conflict", why, { expose: why });
  }
  const code = Buffer.from(ctx.random(16)).toString("base64url");
  const now = ctx.now();
  const expiresAt = now + ctx.config.self_service.enrol_link_ttl_h * 3_600_000;
  await ctx.audit.change(
    () => ctx.store.selfService.addLink({ codeHash: hashEnrolLinkCode(code), userId: user.id, createdAt: now, expiresAt }),
    () => ({ type: "admin.enrol_link_created", user: user.username, expires_at: new Date(expiresAt).toISOString() }),
  );
  return { user, link: enrolLinkURL(publicUrl, code), expiresAt };
}
