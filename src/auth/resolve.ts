// Account resolution: from a normalised name to the subject an attempt is about, walking the
// channel's user sources in order (LDAP profiles, "local"), and the store record that holds a
// directory user's tokens, overrides and lockout counters (the "hybrid" record).
//
//   source "local"  → a store record without a directory (a linked record is only reached through its profile)
//   a profile       → findUser: found → the linked record (linkRecord, claimToken) │ not found → next source
//                     │ unavailable → DirectoryUnavailableError propagates: no later source is asked

import type { AuditSink } from "../audit/events.ts";
import { Directories, LOCAL_SOURCE } from "../directory/registry.ts";
import type { Directory, DirectoryUser } from "../directory/types.ts";
import type { AuthType } from "../domain/auth-types.ts";
import { StoreError, type Store, type User } from "../store/types.ts";
import type { Attempt, Decision } from "./attempt.ts";
import type { Decisions } from "./decisions.ts";

/** A resolved identity: the store record, and for a directory user the entry and its profile. */
export interface Subject {
  record: User;
  dir?: { directory: Directory; entry: DirectoryUser };
  /** Effective type: record override, else the directory's attribute, else the profile default (local: the record's). */
  type: AuthType | null;
}

export type Resolution = { kind: "found"; subject: Subject } | { kind: "unknown" } | { kind: "rejected"; decision: Decision };

export class Resolver {
  constructor(
    private readonly store: Store,
    private readonly directories: Directories,
    private readonly out: Decisions,
    private readonly audit: AuditSink,
  ) {}

  /**
   * Walks the channel's sources in order. "local": a store record without a directory. A profile:
   * findUser; not found → next source; DirectoryUnavailableError propagates (the engine turns it
   * into directory_unavailable) so that no later profile is asked.
   */
  async resolve(attempt: Attempt, key: string): Promise<Resolution> {
    for (const source of this.directories.order(attempt.channel.directories)) {
      if (source === LOCAL_SOURCE) {
        const user = await this.store.users.findByName(key);
        // A linked record is only reached through its profile.
        if (user && (user.directory ?? null) === null) return { kind: "found", subject: { record: user, type: user.type } };
        continue;
      }
      const directory = this.directories.get(source)!;
      const entry = await directory.findUser(key);
      if (!entry) continue;
      const linked = await this.linkRecord(attempt, directory, entry, key);
      if ("decision" in linked) return { kind: "rejected", decision: linked.decision };
      return { kind: "found", subject: { record: linked.record, dir: { directory, entry }, type: effectiveType(linked.record, entry, directory) } };
    }
    return { kind: "unknown" };
  }

  /** Second leg: the record again, and for a directory user a fresh entry (status may have changed). */
  async reload(attempt: Attempt, record: User, key: string): Promise<{ subject: Subject } | { decision: Decision }> {
    const profile = record.directory ?? null;
    if (profile === null) return { subject: { record, type: record.type } };
    const directory = this.directories.get(profile);
    if (!directory) return { decision: this.out.reject(attempt, "state_mismatch", record, `profile ${profile} is no longer configured`) };
    const entry = await directory.findUser(key);
    if (!entry || entry.id !== record.externalId) return { decision: this.out.reject(attempt, "state_mismatch", record, `user no longer found in ${profile}`) };
    return { subject: { record, dir: { directory, entry }, type: effectiveType(record, entry, directory) } };
  }

  /**
   * The store record of a directory user (the "hybrid" record that holds tokens, overrides and the
   * lockout's home): by (profile, stable ID); else an unlinked record of that profile and name,
   * linked now; else a new shadow record. Renames follow the directory; phone changes are audited.
   */
  private async linkRecord(attempt: Attempt, directory: Directory, entry: DirectoryUser, key: string): Promise<{ record: User } | { decision: Decision }> {
    const profile = directory.name;
    try {
      let record = await this.store.users.findByExternal(profile, entry.id);
      const patch: Partial<User> = {};
      if (!record) {
        const byName = await this.store.users.findByName(key);
        if (byName && byName.directory === profile && (byName.externalId ?? null) === null) {
          record = byName;
          patch.externalId = entry.id;
        } else if (byName) {
          return { decision: this.out.reject(attempt, "identity_conflict", byName, `the name of a ${profile} user is held by another record`) };
        } else {
          const created = await this.store.users.add({
            username: key,
            passwordHash: null,
            type: null,
            phone: null,
            email: null,
            disabled: false,
            expiresAt: null,
            directory: profile,
            externalId: entry.id,
            directoryPhone: entry.rawPhone,
          });
          await this.claimToken(directory, entry, created);
          return { record: created };
        }
      }
      if (record.username !== key) patch.username = key;
      const lastPhone = record.directoryPhone ?? null;
      if (lastPhone !== entry.rawPhone) {
        this.audit({ type: "directory.phone_changed", directory: profile, user: key, from: maskPhone(lastPhone), to: maskPhone(entry.rawPhone) });
        patch.directoryPhone = entry.rawPhone;
      }
      if (Object.keys(patch).length > 0) {
        await this.store.users.update(record.id, patch);
        record = { ...record, ...patch };
      }
      await this.claimToken(directory, entry, record);
      return { record };
    } catch (err) {
      if (err instanceof StoreError && err.code === "conflict") {
        return { decision: await this.out.rejectByName(attempt, key, "identity_conflict", `the name of a ${profile} user is held by another record`) };
      }
      throw err;
    }
  }

  /**
   * token_attribute: a hardware token (imported from PSKC/CSV) named by the directory entry is
   * assigned to the user's record when it is still unassigned. A token held by someone else is
   * never moved; that is audited instead. Only the code of the physical token can log in, so
   * naming a serial grants nothing by itself.
   */
  private async claimToken(directory: Directory, entry: DirectoryUser, record: User): Promise<void> {
    const serial = entry.tokenSerial?.trim();
    if (!serial) return;
    const token = await this.store.tokens.findBySerial(serial);
    if (token?.userId === record.id) return;
    const base = { directory: directory.name, user: record.username, serial: serial.slice(0, 64) };
    if (!token) return this.audit({ type: "directory.token_refused", ...base, detail: "no token with this serial has been imported" });
    if (token.userId !== null) return this.audit({ type: "directory.token_refused", ...base, detail: "the token is assigned to another user" });
    await this.store.tokens.assign(token.id, record.id);
    this.audit({ type: "directory.token_assigned", ...base });
  }
}

/**
 * Effective type of a directory user: the record's override, else the directory's attribute, else the
 * profile's default. A directory type of `password` counts only where the profile allows it
 * (self-writable attributes must not lower a user to password-only; DESIGN "Identity and secrets").
 */
export function effectiveType(record: User, entry: DirectoryUser, directory: Directory): AuthType {
  if (record.type !== null) return record.type;
  const fromDirectory = entry.type === "password" && !directory.profile.allowTypePassword ? null : entry.type;
  return fromDirectory ?? directory.profile.defaultType;
}

/** A phone number for the audit log: only its last two digits ("…67"); null stays null. */
export function maskPhone(raw: string | null): string | null {
  if (raw === null) return null;
  const digits = raw.replace(/\D/g, "");
  return `…${digits.slice(-2)}`;
}
