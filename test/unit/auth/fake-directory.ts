// An in-memory Directory for engine tests: users with passwords, statuses, groups, a password
// history policy and an "unavailable" switch. It keeps the contract of src/directory/types.ts,
// including the AD behaviours the engine relies on: an empty password never binds, 52e for a wrong
// password, the 53x/701/773 sub-codes only with the right password, 775 whatever the password.
import type { AuthType } from "../../../src/domain/auth-types.ts";
import {
  DirectoryUnavailableError,
  type AccountStatus,
  type BindFailure,
  type BindResult,
  type ChangeResult,
  type Directory,
  type DirectoryUser,
  type LdapProfile,
} from "../../../src/directory/types.ts";

export interface FakeUser {
  id: string;
  username: string;
  password: string;
  status?: AccountStatus;
  groups?: string[];
  type?: AuthType | null;
  rawPhone?: string | null;
  /** A bind failure AD would report with the right password (530, 531). */
  bindFailure?: BindFailure;
  /** The value of the profile's token_attribute (a hardware-token serial). */
  tokenSerial?: string | null;
}

export function profile(name: string, over: Partial<LdapProfile> = {}): LdapProfile {
  return {
    name,
    urls: ["ldaps://127.0.0.1:636"],
    startTLS: false,
    plaintext: false,
    bindDN: "cn=svc",
    bindPassword: "service-password",
    baseDN: "dc=example",
    userFilter: "(uid={username})",
    phoneAttribute: "mobile",
    emailAttribute: "mail",
    allowTypePassword: false,
    requiredGroups: [],
    defaultType: "totp",
    timeoutMs: 1000,
    reply: [],
    region: "SE",
    ...over,
  };
}

export class FakeDirectory implements Directory {
  readonly profile: LdapProfile;
  users = new Map<string, FakeUser & { history: string[] }>();
  unavailable = false;
  filterTypes = true;
  /** Operation log: "findUser:alice", "verifyPassword:alice", "dummyBind", "memberOf:alice", "changePassword:alice". */
  calls: string[] = [];

  constructor(
    readonly name: string,
    over: Partial<LdapProfile> = {},
  ) {
    this.profile = profile(name, over);
  }

  add(user: FakeUser): this {
    this.users.set(user.id, { ...user, history: [user.password] });
    return this;
  }

  byName(username: string) {
    return [...this.users.values()].find((u) => u.username === username);
  }

  private gate(op: string) {
    this.calls.push(op);
    if (this.unavailable) throw new DirectoryUnavailableError(this.name, "every URL failed (timeout)");
  }

  async findUser(username: string): Promise<DirectoryUser | undefined> {
    this.gate(`findUser:${username}`);
    const u = this.byName(username);
    if (!u) return undefined;
    return {
      profile: this.name,
      id: u.id,
      dn: `uid=${u.username},dc=example`,
      username,
      phone: u.rawPhone ? `+46${u.rawPhone.replace(/\D/g, "").replace(/^0/, "")}` : null,
      rawPhone: u.rawPhone ?? null,
      email: null,
      // The contract filters `password` unless allowTypePassword; filterTypes = false plays a
      // non-conforming implementation, to show that the engine refuses it too.
      type: this.filterTypes && u.type === "password" && !this.profile.allowTypePassword ? null : (u.type ?? null),
      tokenSerial: u.tokenSerial ?? null,
      status: u.status ?? "ok",
    };
  }

  async verifyPassword(user: DirectoryUser, password: string): Promise<BindResult> {
    if (password === "") return { ok: false, reason: "bad_credentials", detail: "empty password refused without a bind" };
    this.gate(`verifyPassword:${user.username}`);
    const u = this.users.get(user.id);
    if (!u) return { ok: false, reason: "bad_credentials", detail: "AD 52e" };
    if (u.status === "locked") return { ok: false, reason: "locked", detail: "AD 775" };
    if (u.password !== password) return { ok: false, reason: "bad_credentials", detail: "AD 52e" };
    if (u.bindFailure) return { ok: false, reason: u.bindFailure, detail: `AD ${u.bindFailure}` };
    switch (u.status ?? "ok") {
      case "disabled":
        return { ok: false, reason: "disabled", detail: "AD 533" };
      case "account_expired":
        return { ok: false, reason: "account_expired", detail: "AD 701" };
      case "password_expired":
        return { ok: false, reason: "password_expired", detail: "AD 532" };
      case "must_change":
        return { ok: false, reason: "must_change", detail: "AD 773" };
      default:
        return { ok: true };
    }
  }

  async dummyBind(_password: string): Promise<void> {
    this.gate("dummyBind");
  }

  async memberOf(user: DirectoryUser, groupDNs: string[]): Promise<Set<string>> {
    this.gate(`memberOf:${user.username}`);
    const mine = new Set((this.users.get(user.id)?.groups ?? []).map((g) => g.toLowerCase()));
    return new Set(groupDNs.filter((g) => mine.has(g.toLowerCase())));
  }

  /** Policy: at least 8 characters, not one of the last passwords (history). */
  async changePassword(user: DirectoryUser, oldPassword: string, newPassword: string): Promise<ChangeResult> {
    this.gate(`changePassword:${user.username}`);
    const u = this.users.get(user.id);
    if (!u || u.password !== oldPassword) return { ok: false, reason: "bad_credentials", detail: "AD 52e" };
    if (newPassword.length < 8) return { ok: false, reason: "policy", message: "The password is too short." };
    if (u.history.includes(newPassword)) return { ok: false, reason: "policy", message: "The password was used before." };
    u.password = newPassword;
    u.history.push(newPassword);
    u.status = "ok";
    return { ok: true };
  }

  async close(): Promise<void> {
    this.calls.push("close");
  }
}
