// What a resolved account may do, whatever the flow: the store record's status, the directory
// entry's status, and group membership (required groups, and the reply attributes of groups).

import type { AuthFailureReason } from "../audit/events.ts";
import type { User } from "../store/types.ts";
import type { ReplyAttribute } from "./attempt.ts";
import type { Subject } from "./resolve.ts";

/** Disabled or expired accounts (the store record) are refused in every flow, code-only included. */
export function accountStatus(user: User, now: number): "account_disabled" | "account_expired" | undefined {
  if (user.disabled) return "account_disabled";
  if (user.expiresAt !== null && user.expiresAt <= now) return "account_expired";
  return undefined;
}

/**
 * The directory entry's status as a reject reason. "account": disabled, locked, expired account
 * (a second leg, after a proven password); "all": an expired or must-change password too (code-only,
 * where no bind checks the password).
 */
export function directoryStatus(subject: Subject, scope: "account" | "all"): AuthFailureReason | undefined {
  const status = subject.dir?.entry.status ?? "ok";
  switch (status) {
    case "ok":
      return undefined;
    case "disabled":
      return "account_disabled";
    case "locked":
      return "account_locked";
    case "account_expired":
      return "account_expired";
    case "password_expired":
    case "must_change":
      return scope === "all" ? status : undefined;
  }
}

/**
 * One memberOf call for the required groups and the reply groups of the subject's profile.
 * Missing a required group fails; every reply entry whose group matched contributes its
 * attributes, in configuration order. Local users: no groups, no attributes.
 */
export async function groups(subject: Subject): Promise<{ ok: true; attributes: ReplyAttribute[] } | { ok: false; detail: string }> {
  if (!subject.dir) return { ok: true, attributes: [] };
  const { directory, entry } = subject.dir;
  const profile = directory.profile;
  const wanted = [...new Set([...profile.requiredGroups, ...profile.reply.map((r) => r.group)])];
  if (wanted.length === 0) return { ok: true, attributes: [] };
  const found = await directory.memberOf(entry, wanted);
  const member = new Set([...found].map((dn) => dn.toLowerCase()));
  const missing = profile.requiredGroups.filter((dn) => !member.has(dn.toLowerCase()));
  if (missing.length > 0) return { ok: false, detail: `not a member of ${missing.length} required group(s)` };
  const attributes: ReplyAttribute[] = [];
  for (const entryReply of profile.reply) {
    if (!member.has(entryReply.group.toLowerCase())) continue;
    for (const [name, value] of Object.entries(entryReply.attributes)) attributes.push({ name, value });
  }
  return { ok: true, attributes };
}
