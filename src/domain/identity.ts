// Username normalisation: one identity per person, so lockout counters and lookups cannot be split
// by case, realm decoration or Unicode composition ("alice", "Alice", "alice@corp", "CORP\alice").
// A leaf of src/domain/: it imports nothing of ours, so that store, directory, config and auth share it.

import { createHash } from "node:crypto";

export interface NormalizeOptions {
  /** "strip" (default) removes a `DOMAIN\` prefix and an `@realm` suffix; "keep" leaves them. */
  realms?: "strip" | "keep";
}

/**
 * Normalises a login name: Unicode NFC, trimmed, lower-cased, realm stripped by default.
 * Returns "" for a name that is empty after normalisation; callers reject that.
 */
export function normalizeUsername(name: string, options: NormalizeOptions = {}): string {
  let s = name.normalize("NFC").trim();
  if ((options.realms ?? "strip") === "strip") {
    const slash = s.lastIndexOf("\\");
    if (slash >= 0) s = s.slice(slash + 1);
    const at = s.indexOf("@");
    if (at >= 0) s = s.slice(0, at);
  }
  return s.toLowerCase().trim();
}

/**
 * A short, stable hash of a login name for logs. Users type passwords into the User-Name field,
 * so names that match no account are logged only in this form.
 */
export function usernameHash(name: string): string {
  return createHash("sha256").update(name, "utf8").digest("hex").slice(0, 12);
}
