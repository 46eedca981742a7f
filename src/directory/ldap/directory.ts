// LdapDirectory: the Directory contract (../types.ts) for one OpenLDAP or Active Directory profile, on ldapts.
//
//   findUser ──► search pool (login-pool.ts: service-bound, the codec on Bun's sockets): search baseDN (escaped filter, size limit 2)
//   verifyPassword ──► user-bind pool (its own connections, same failover/TLS) ─► bind as the user DN (rebinding a pooled connection)
//   memberOf ──► service pool: AD matching rule 1.2.840.113556.1.4.1941 + tokenGroups; else memberOf / member walk
//   changePassword ──► service pool: AD delete+add unicodePwd; OpenLDAP RFC 3062 Password Modify

import { randomBytes } from "node:crypto";
import { parsePhoneNumberFromString, type CountryCode } from "libphonenumber-js";
import { Attribute, BerWriter, Change, ConstraintViolationError, InvalidCredentialsError, PasswordPolicyControl, PasswordPolicyError, ResultCodeError, type Entry } from "ldapts";
import { usernameHash } from "../../domain/identity.ts";
import { parseAuthType, type AuthType } from "../../domain/auth-types.ts";
import {
  DirectoryUnavailableError,
  type AccountStatus,
  type BindResult,
  type ChangeResult,
  type Directory,
  type DirectoryUser,
  type LdapProfile,
} from "../types.ts";
import { AD_BINARY_ATTRIBUTES, AD_USER_ATTRIBUTES, adAccountStatus, adChangeError, encodeUnicodePwd, formatGUID, parseADBindError, sidToString } from "./ad.ts";
import { UserBindPool } from "./bind-pool.ts";
import type { PoolStats } from "./bounded-pool.ts";
import { isNetworkError, loadCA, reason, UrlHealth, type LogFn } from "./connection.ts";
import { escapeDNValue, escapeFilterValue, normalizeDN, userFilter } from "./escape.ts";
import { SearchPool } from "./login-pool.ts";
import { ServicePool } from "./pool.ts";
import { FilterSyntaxError, type BindReply } from "./wire.ts";

/** RFC 3062 §2: Password Modify extended operation. */
export const PASSWORD_MODIFY_OID = "1.3.6.1.4.1.4203.1.11.1";
/** AD "LDAP_MATCHING_RULE_IN_CHAIN": transitive membership. */
export const IN_CHAIN_RULE = "1.2.840.113556.1.4.1941";
/** rootDSE supportedCapabilities value of Active Directory (LDAP_CAP_ACTIVE_DIRECTORY_OID). */
export const AD_CAPABILITY = "1.2.840.113556.1.4.800";

/** Limits of the member/memberOf walk on non-AD servers. */
export const GROUP_WALK_MAX_DEPTH = 8;
export const GROUP_WALK_MAX_GROUPS = 256;

const PPOLICY_ATTRIBUTES = ["pwdAccountLockedTime", "pwdReset", "pwdChangedTime", "pwdPolicySubentry"];

export interface LdapDirectoryOptions {
  log?: LogFn;
  /** Clock for account status (expiry); Date.now by default. */
  now?: () => number;
  /** Service connections (overrides the profile's poolSize; default 4). */
  poolSize?: number;
  /** User-bind connections (overrides the profile's bindPoolSize; default 32). */
  bindPoolSize?: number;
  /** Requests in flight per service connection (overrides the profile's pipeline; default 8). */
  pipeline?: number;
}

/** One `[[ldap]]` profile. Construction does no I/O; throws TypeError only for an unreadable ca_file. */
export class LdapDirectory implements Directory {
  readonly name: string;
  readonly #ca: string | undefined;
  readonly #health: UrlHealth;
  readonly #pool: ServicePool;
  readonly #searches: SearchPool;
  readonly #binds: UserBindPool;
  readonly #log: LogFn;
  readonly #now: () => number;
  #kind: "ad" | "ldap" | undefined;
  #kindProbe: Promise<"ad" | "ldap"> | undefined;
  readonly #groupSids = new Map<string, string | null>();
  readonly #policyMaxAge = new Map<string, number | null>();

  constructor(
    readonly profile: LdapProfile,
    options: LdapDirectoryOptions = {},
  ) {
    this.name = profile.name;
    this.#log = options.log ?? (() => {});
    this.#now = options.now ?? Date.now;
    this.#ca = loadCA(profile);
    this.#health = new UrlHealth(this.#now);
    const poolSize = options.poolSize ?? profile.poolSize;
    const bindPoolSize = options.bindPoolSize ?? profile.bindPoolSize;
    const pipeline = options.pipeline ?? profile.pipeline;
    this.#pool = new ServicePool(profile, this.#ca, this.#health, { log: this.#log, now: this.#now, ...(poolSize ? { max: poolSize } : {}), ...(pipeline ? { pipeline } : {}) });
    this.#searches = new SearchPool(profile, this.#ca, this.#health, { log: this.#log, now: this.#now, ...(poolSize ? { max: poolSize } : {}), ...(pipeline ? { pipeline } : {}) });
    this.#binds = new UserBindPool(profile, this.#ca, this.#health, { log: this.#log, now: this.#now, ...(bindPoolSize ? { max: bindPoolSize } : {}) });
  }

  /** Service pool counters (opened, discarded, leases, idle, busy): group lookups, password changes. */
  poolStats(): PoolStats {
    return this.#pool.stat();
  }

  /** Search pool counters: the login's user searches and the rootDSE probe. */
  get searchConnections(): PoolStats {
    return this.#searches.stat();
  }

  /** User-bind pool counters: a separate pool whose connections only ever carry binds. */
  get userConnections(): PoolStats {
    return this.#binds.stat();
  }

  /**
   * Finds the user with the profile's filter (the name RFC 4515-escaped). undefined: no entry.
   * Two or more entries are refused with DirectoryUnavailableError (and a log line): picking one
   * could log a user in as someone else, and returning undefined would let the next profile answer
   * for a name this directory holds. Throws DirectoryUnavailableError when the profile cannot answer.
   */
  async findUser(username: string): Promise<DirectoryUser | undefined> {
    const p = this.profile;
    // Ask only for the attributes this kind of server has (known from the rootDSE after the first
    // lookup); a server whose rootDSE cannot be read gets both sets, and the entry decides.
    const kind = await this.#detectKind().catch((e: unknown) => {
      if (e instanceof ResultCodeError) return undefined;
      throw this.#unavailable(e, "user search");
    });
    const attributes = [
      ...(kind !== "ldap" ? ["objectGUID", "objectSid", ...AD_USER_ATTRIBUTES] : []),
      ...(kind !== "ad" ? ["entryUUID", ...PPOLICY_ATTRIBUTES] : []),
      p.phoneAttribute,
      p.emailAttribute,
      ...(p.typeAttribute ? [p.typeAttribute] : []),
      ...(p.tokenAttribute ? [p.tokenAttribute] : []),
    ];
    const filter = userFilter(p.userFilter, username);
    const options = { scope: "sub" as const, filter, sizeLimit: 2, attributes: [...new Set(attributes)], explicitBufferAttributes: AD_BINARY_ATTRIBUTES };
    // sizeLimitExceeded (4): more than our limit of 2 matched.
    const tooMany = (e: unknown) => {
      if (e instanceof ResultCodeError && e.code === 4) return [{ dn: "" }, { dn: "" }] as Entry[];
      throw e;
    };
    // The lean codec (wire.ts) sends the search; a filter it does not parse goes through ldapts on
    // a service connection (FilterSyntaxError is thrown before anything is sent).
    const entries = await this.#searches
      .with((c) => c.wire.search(p.baseDN, options).catch(tooMany))
      .catch((e: unknown) => {
        if (!(e instanceof FilterSyntaxError)) throw e;
        return this.#pool.with((c) => c.client.search(p.baseDN, options).then((r) => r.searchEntries, tooMany));
      })
      .catch((e: unknown) => {
      throw this.#unavailable(e, "user search");
    });
    if (entries.length === 0) return undefined;
    if (entries.length > 1) {
      this.#log("warn", "ldap.ambiguous_user", { profile: p.name, user: usernameHash(username), entries: entries.length });
      throw new DirectoryUnavailableError(p.name, `ldap profile "${p.name}": the user filter matches more than one entry; login refused`);
    }
    const e = entries[0]!;
    // ldapts lists every requested attribute, absent ones as []: test for values, not keys.
    const isAD = kind ? kind === "ad" : arr(e.objectGUID).length > 0 || arr(e.objectSid).length > 0;
    const guid = first(e.objectGUID);
    const id = isAD && Buffer.isBuffer(guid) && guid.length === 16 ? formatGUID(guid) : str(e.entryUUID)?.toLowerCase();
    if (!id) {
      this.#log("warn", "ldap.no_stable_id", { profile: p.name, dn: e.dn });
      throw new DirectoryUnavailableError(p.name, `ldap profile "${p.name}": entry has neither objectGUID nor a readable entryUUID`);
    }
    const rawPhone = str(e[p.phoneAttribute]) ?? null;
    return {
      profile: p.name,
      id,
      dn: e.dn,
      username,
      phone: rawPhone === null ? null : toE164(rawPhone, p.region),
      rawPhone,
      email: str(e[p.emailAttribute]) ?? null,
      type: p.typeAttribute ? this.#type(str(e[p.typeAttribute]), e.dn) : null,
      tokenSerial: p.tokenAttribute ? (str(e[p.tokenAttribute]) ?? null) : null,
      status: isAD ? adAccountStatus(e as Record<string, unknown>, this.#now()) : await this.#ppolicyStatus(e),
    };
  }

  /**
   * Binds as the user on a connection of the user-bind pool (never a service connection; it serves
   * only later user binds). "" is refused without any traffic. OpenLDAP: the ppolicy request control reports expiry
   * and must-change; AD: the "data XXX" of the diagnostic message. Throws DirectoryUnavailableError
   * when no server answers or the bind times out; never for a wrong password.
   */
  async verifyPassword(user: DirectoryUser, password: string): Promise<BindResult> {
    if (password === "") return { ok: false, reason: "bad_credentials", detail: "empty password (unauthenticated bind refused)" };
    return await this.#userBind(user.dn, password);
  }

  /** Same cost as a user bind for an unknown user: a DN under baseDN that cannot exist. Never throws. */
  async dummyBind(password: string): Promise<void> {
    if (password === "") return;
    const dn = `cn=${escapeDNValue(`portcullis-nonexistent-${randomBytes(12).toString("hex")}`)},${this.profile.baseDN}`;
    try {
      await this.#userBind(dn, password);
    } catch {
      // Equal timing only; the result does not matter.
    }
  }

  /**
   * Which of `groupDNs` the user is a nested member of (returned as given in groupDNs).
   * AD: one base-scoped in-chain search per group on the user's own DN, plus tokenGroups for the
   * primary group. Elsewhere: the memberOf attribute walked upward, or the member/uniqueMember
   * graph walked downward from each group, both bounded. Throws DirectoryUnavailableError.
   */
  async memberOf(user: DirectoryUser, groupDNs: string[]): Promise<Set<string>> {
    const found = new Set<string>();
    if (groupDNs.length === 0) return found;
    try {
      if ((await this.#detectKind()) === "ad") await this.#adMemberOf(user, groupDNs, found);
      else await this.#ldapMemberOf(user, groupDNs, found);
    } catch (e) {
      throw this.#unavailable(e, "group lookup");
    }
    return found;
  }

  /**
   * A user's own password change (not an administrator reset). AD: one modify deleting the old
   * unicodePwd and adding the new one, on the service connection, refused unless it is LDAPS or
   * StartTLS. OpenLDAP: RFC 3062 Password Modify with userIdentity, oldPasswd and newPasswd.
   * Policy refusals come back as { reason: "policy", message } with a message safe to show.
   * Throws DirectoryUnavailableError when the profile cannot answer.
   */
  async changePassword(user: DirectoryUser, oldPassword: string, newPassword: string): Promise<ChangeResult> {
    if (oldPassword === "") return { ok: false, reason: "bad_credentials", detail: "empty old password" };
    if (newPassword === "") return { ok: false, reason: "policy", message: "The new password must not be empty." };
    const kind = await this.#detectKind().catch((e: unknown) => {
      throw this.#unavailable(e, "password change");
    });
    try {
      return kind === "ad" ? await this.#adChange(user, oldPassword, newPassword) : await this.#ldapChange(user, oldPassword, newPassword);
    } catch (e) {
      throw this.#unavailable(e, "password change");
    }
  }

  /**
   * An administrator's reset (the password-reset portal), on the service connection, refused unless
   * it is LDAPS or StartTLS. AD: one modify replacing unicodePwd (the service account needs the
   * "Reset password" right on the user). OpenLDAP: RFC 3062 Password Modify with userIdentity and
   * newPasswd only (the service account needs write access to userPassword). Throws
   * DirectoryUnavailableError when the profile cannot answer.
   */
  async resetPassword(user: DirectoryUser, newPassword: string): Promise<ChangeResult> {
    if (newPassword === "") return { ok: false, reason: "policy", message: "The new password must not be empty." };
    const kind = await this.#detectKind().catch((e: unknown) => {
      throw this.#unavailable(e, "password reset");
    });
    try {
      return await this.#pool.with(
        async (c) => {
          if (!c.secure) {
            this.#log("error", "ldap.password_change_refused", { profile: this.profile.name, dn: user.dn, reason: "password reset needs LDAPS or StartTLS" });
            return { ok: false, reason: "not_permitted", detail: "password reset needs LDAPS or StartTLS" } as const;
          }
          if (kind === "ad") {
            try {
              await c.client.modify(user.dn, [new Change({ operation: "replace", modification: new Attribute({ type: "unicodePwd", values: [encodeUnicodePwd(newPassword)] }) })]);
              return { ok: true } as const;
            } catch (e) {
              if (isNetworkError(e)) throw e;
              const mapped = adChangeError(e);
              if (mapped?.reason === "policy") return { ok: false, reason: "policy", message: withDirectoryText(mapped.message, sambaPolicyText((e as Error).message)) } as const;
              if (mapped) return { ok: false, reason: "not_permitted", detail: mapped.reason === "not_permitted" ? mapped.detail : "reset refused" } as const;
              if (e instanceof ConstraintViolationError) return { ok: false, reason: "policy", message: POLICY_GENERIC } as const;
              return { ok: false, reason: "not_permitted", detail: reason(e) } as const;
            }
          }
          const ppolicy = new PasswordPolicyControl();
          try {
            await c.client.exop(PASSWORD_MODIFY_OID, passwordResetRequest(user.dn, newPassword), ppolicy);
            return { ok: true } as const;
          } catch (e) {
            if (isNetworkError(e)) throw e;
            const code = (e as ResultCodeError).code;
            const diag = directoryText((e as Error).message);
            const pe = ppolicy.value?.error;
            if (pe !== undefined && PPOLICY_MESSAGES[pe]) return { ok: false, reason: "policy", message: withDirectoryText(PPOLICY_MESSAGES[pe]!, diag) } as const;
            if (e instanceof ConstraintViolationError) return { ok: false, reason: "policy", message: withDirectoryText(ppolicyTextMessage((e as Error).message), diag) } as const;
            return { ok: false, reason: "not_permitted", detail: `Password Modify: LDAP result ${code}` } as const;
          }
        },
        { retry: false },
      );
    } catch (e) {
      throw this.#unavailable(e, "password reset");
    }
  }

  /**
   * Usernames of the members of `groupDN` (the login attribute of the user filter): AD nested
   * (in-chain rule), elsewhere direct members through memberOf (the memberof overlay). At most
   * `limit`. Throws DirectoryUnavailableError.
   */
  async groupMembers(groupDN: string, limit: number): Promise<string[]> {
    const p = this.profile;
    const attr = /\(([A-Za-z][A-Za-z0-9-]*)=\{username\}\)/.exec(p.userFilter)?.[1];
    if (!attr) return [];
    try {
      const kind = await this.#detectKind();
      const member = kind === "ad" ? `(memberOf:${IN_CHAIN_RULE}:=${escapeFilterValue(groupDN)})` : `(memberOf=${escapeFilterValue(groupDN)})`;
      const everyone = p.userFilter.replaceAll("{username}", "*");
      const r = await this.#pool.with((c) => c.client.search(p.baseDN, { scope: "sub", filter: `(&${everyone}${member})`, sizeLimit: limit, attributes: [attr] }));
      return r.searchEntries.map((e) => str(e[attr])).filter((u): u is string => u !== undefined).slice(0, limit);
    } catch (e) {
      if (e instanceof ResultCodeError && e.code === 4) return [];
      throw this.#unavailable(e, "group members");
    }
  }

  async close(): Promise<void> {
    await Promise.all([this.#pool.close(), this.#searches.close(), this.#binds.close()]);
  }

  // ── internals ────────────────────────────────────────────────────────────────────────────────

  async #userBind(dn: string, password: string): Promise<BindResult> {
    let r: BindReply;
    try {
      r = await this.#binds.bind(dn, password, { ppolicy: true });
    } catch (e) {
      if (e instanceof DirectoryUnavailableError) throw e;
      throw this.#unavailable(e, "user bind");
    }
    const pv = r.ppolicy;
    if (r.code === 0) {
      if (pv?.error === PasswordPolicyError.ChangeAfterReset) return { ok: false, reason: "must_change", detail: "ppolicy changeAfterReset" };
      if (pv?.error === PasswordPolicyError.PasswordExpired) return { ok: false, reason: "password_expired", detail: "ppolicy passwordExpired" };
      if (pv?.graceAuthNsRemaining !== undefined) return { ok: false, reason: "password_expired", detail: `ppolicy grace login (${pv.graceAuthNsRemaining} left)` };
      return { ok: true };
    }
    if (pv?.error === PasswordPolicyError.PasswordExpired) return { ok: false, reason: "password_expired", detail: "ppolicy passwordExpired" };
    if (pv?.error === PasswordPolicyError.AccountLocked) return { ok: false, reason: "locked", detail: "ppolicy accountLocked" };
    if (pv?.error === PasswordPolicyError.ChangeAfterReset) return { ok: false, reason: "must_change", detail: "ppolicy changeAfterReset" };
    const ad = parseADBindError(r.diagnostic);
    if (ad) return { ok: false, reason: ad, detail: `AD ${/data ([0-9a-f]+)/i.exec(r.diagnostic)?.[1] ?? ""}`.trim() };
    return { ok: false, reason: "bad_credentials", detail: r.code === 49 ? "invalidCredentials (49)" : `LDAP result ${r.code}` };
  }

  /** AD or not, from the rootDSE's supportedCapabilities (RFC 4512 §5.1), asked once per profile. */
  async #detectKind(): Promise<"ad" | "ldap"> {
    if (this.#kind) return this.#kind;
    this.#kindProbe ??= this.#searches
      .with(async (c) => {
        const r = await c.wire.search("", { scope: "base", filter: "(objectClass=*)", attributes: ["supportedCapabilities"] });
        const caps = arr(r[0]?.supportedCapabilities);
        return caps.includes(AD_CAPABILITY) ? ("ad" as const) : ("ldap" as const);
      })
      .then(
        (kind) => (this.#kind = kind),
        (e: unknown) => {
          this.#kindProbe = undefined; // ask again next time
          throw e;
        },
      );
    return await this.#kindProbe;
  }

  async #adMemberOf(user: DirectoryUser, groupDNs: string[], found: Set<string>): Promise<void> {
    await this.#pool.with(async (c) => {
      for (const g of groupDNs) {
        const r = await c.client.search(user.dn, { scope: "base", filter: `(memberOf:${IN_CHAIN_RULE}:=${escapeFilterValue(g)})`, attributes: ["1.1"] });
        if (r.searchEntries.length > 0) found.add(g);
      }
      const rest = groupDNs.filter((g) => !found.has(g));
      if (rest.length === 0) return;
      // The primary group (primaryGroupID) is not in memberOf; tokenGroups holds it (and every nested group).
      const t = await c.client.search(user.dn, { scope: "base", filter: "(objectClass=*)", attributes: ["tokenGroups"], explicitBufferAttributes: ["tokenGroups"] });
      const sids = new Set(arr(t.searchEntries[0]?.tokenGroups).map((b) => (Buffer.isBuffer(b) ? sidToString(b) : String(b))));
      for (const g of rest) {
        const key = normalizeDN(g);
        if (!this.#groupSids.has(key)) {
          const gr = await c.client.search(g, { scope: "base", filter: "(objectClass=*)", attributes: ["objectSid"], explicitBufferAttributes: ["objectSid"] }).catch((e: unknown) => {
            if (e instanceof ResultCodeError && e.code === 32) return { searchEntries: [] as Entry[] };
            throw e;
          });
          const sid = first(gr.searchEntries[0]?.objectSid);
          this.#groupSids.set(key, Buffer.isBuffer(sid) ? sidToString(sid) : null);
        }
        const sid = this.#groupSids.get(key);
        if (sid && sids.has(sid)) found.add(g);
      }
    });
  }

  async #ldapMemberOf(user: DirectoryUser, groupDNs: string[], found: Set<string>): Promise<void> {
    const wanted = new Map(groupDNs.map((g) => [normalizeDN(g), g]));
    const userKey = normalizeDN(user.dn);
    await this.#pool.with(async (c) => {
      const readAttr = async (dn: string, attrs: string[]): Promise<Entry | undefined> => {
        try {
          const r = await c.client.search(dn, { scope: "base", filter: "(objectClass=*)", attributes: attrs });
          return r.searchEntries[0];
        } catch (e) {
          if (e instanceof ResultCodeError && e.code === 32) return undefined; // noSuchObject: a dangling member
          throw e;
        }
      };
      const own = arr((await readAttr(user.dn, ["memberOf"]))?.memberOf).map(String);
      if (own.length > 0) {
        // Upward over memberOf (slapd memberof overlay, 389-ds, …): the user's groups, their groups, …
        const visited = new Set<string>();
        let frontier = own;
        for (let depth = 0; depth < GROUP_WALK_MAX_DEPTH && frontier.length > 0 && found.size < wanted.size; depth++) {
          const next: string[] = [];
          for (const g of frontier) {
            const k = normalizeDN(g);
            if (visited.has(k)) continue;
            if (visited.size >= GROUP_WALK_MAX_GROUPS) return this.#walkLimit(user);
            visited.add(k);
            const w = wanted.get(k);
            if (w !== undefined) found.add(w);
            if (depth + 1 < GROUP_WALK_MAX_DEPTH) next.push(...arr((await readAttr(g, ["memberOf"]))?.memberOf).map(String));
          }
          frontier = next;
        }
        return;
      }
      // Downward from each configured group over member/uniqueMember, with cycle detection.
      for (const [gk, g] of wanted) {
        const visited = new Set<string>([gk]);
        let frontier = [g];
        let hit = false;
        for (let depth = 0; depth < GROUP_WALK_MAX_DEPTH && frontier.length > 0 && !hit; depth++) {
          const next: string[] = [];
          for (const dn of frontier) {
            const e = await readAttr(dn, ["member", "uniqueMember"]);
            const members = [...arr(e?.member), ...arr(e?.uniqueMember).map((m) => String(m).replace(/#'[01]*'B$/, ""))].map(String);
            for (const m of members) {
              const mk = normalizeDN(m);
              if (mk === userKey) {
                hit = true;
                break;
              }
              if (visited.has(mk)) continue;
              if (visited.size >= GROUP_WALK_MAX_GROUPS) return this.#walkLimit(user);
              visited.add(mk);
              next.push(m);
            }
            if (hit) break;
          }
          frontier = next;
        }
        if (hit) found.add(g);
      }
    });
  }

  #walkLimit(user: DirectoryUser): void {
    this.#log("warn", "ldap.group_walk_limit", { profile: this.profile.name, dn: user.dn, maxGroups: GROUP_WALK_MAX_GROUPS, maxDepth: GROUP_WALK_MAX_DEPTH });
  }

  async #adChange(user: DirectoryUser, oldPassword: string, newPassword: string): Promise<ChangeResult> {
    return await this.#pool.with(
      async (c) => {
        if (!c.secure) {
          this.#log("error", "ldap.password_change_refused", { profile: this.profile.name, dn: user.dn, reason: "AD password change needs LDAPS or StartTLS" });
          return { ok: false, reason: "not_permitted", detail: "AD password change needs LDAPS or StartTLS" } as const;
        }
        try {
          // A user change (honours history), never `replace` (an administrator's reset).
          await c.client.modify(user.dn, [
            new Change({ operation: "delete", modification: new Attribute({ type: "unicodePwd", values: [encodeUnicodePwd(oldPassword)] }) }),
            new Change({ operation: "add", modification: new Attribute({ type: "unicodePwd", values: [encodeUnicodePwd(newPassword)] }) }),
          ]);
          return { ok: true } as const;
        } catch (e) {
          if (isNetworkError(e)) throw e;
          const mapped = adChangeError(e);
          if (mapped?.reason === "policy") return { ok: false, reason: "policy", message: mapped.message } as const;
          if (mapped) return { ok: false, reason: mapped.reason, detail: mapped.detail } as const;
          if (e instanceof ConstraintViolationError) return { ok: false, reason: "policy", message: POLICY_GENERIC } as const;
          return { ok: false, reason: "not_permitted", detail: reason(e) } as const;
        }
      },
      { retry: false },
    );
  }

  async #ldapChange(user: DirectoryUser, oldPassword: string, newPassword: string): Promise<ChangeResult> {
    return await this.#pool.with(
      async (c) => {
        const ppolicy = new PasswordPolicyControl();
        try {
          await c.client.exop(PASSWORD_MODIFY_OID, passwordModifyRequest(user.dn, oldPassword, newPassword), ppolicy);
          return { ok: true } as const;
        } catch (e) {
          if (isNetworkError(e)) throw e;
          const code = (e as ResultCodeError).code;
          const pe = ppolicy.value?.error;
          if (pe !== undefined && PPOLICY_MESSAGES[pe]) return { ok: false, reason: "policy", message: PPOLICY_MESSAGES[pe]! } as const;
          if (e instanceof InvalidCredentialsError || (code === 53 && /old password/i.test((e as Error).message))) {
            return { ok: false, reason: "bad_credentials", detail: `Password Modify: ${code === 53 ? "old password not verified" : "invalidCredentials"}` } as const;
          }
          if (e instanceof ConstraintViolationError) return { ok: false, reason: "policy", message: ppolicyTextMessage((e as Error).message) } as const;
          return { ok: false, reason: "not_permitted", detail: `Password Modify: LDAP result ${code}` } as const;
        }
      },
      { retry: false },
    );
  }

  #type(raw: string | undefined, dn: string): AuthType | null {
    if (raw === undefined || raw.trim() === "") return null;
    const t = parseAuthType(raw);
    if (!t) {
      this.#log("warn", "ldap.type_unusable", { profile: this.profile.name, dn, attribute: this.profile.typeAttribute });
      return null;
    }
    if (t === "password" && !this.profile.allowTypePassword) {
      this.#log("warn", "ldap.type_password_refused", { profile: this.profile.name, dn, attribute: this.profile.typeAttribute });
      return null;
    }
    return t;
  }

  /** OpenLDAP ppolicy operational attributes, when the service account may read them. */
  async #ppolicyStatus(e: Entry): Promise<AccountStatus> {
    if (str(e.pwdAccountLockedTime)) return "locked";
    if (str(e.pwdReset)?.toUpperCase() === "TRUE") return "must_change";
    const changed = str(e.pwdChangedTime);
    const policy = str(e.pwdPolicySubentry);
    if (changed && policy) {
      const maxAge = await this.#maxAge(policy);
      const t = parseGeneralizedTime(changed);
      if (maxAge && t !== undefined && t + maxAge * 1000 < this.#now()) return "password_expired";
    }
    return "ok";
  }

  async #maxAge(policyDN: string): Promise<number | null> {
    const key = normalizeDN(policyDN);
    if (!this.#policyMaxAge.has(key)) {
      const v = await this.#pool
        .with(async (c) => {
          const r = await c.client.search(policyDN, { scope: "base", filter: "(objectClass=*)", attributes: ["pwdMaxAge"] });
          return Number(str(r.searchEntries[0]?.pwdMaxAge) ?? "0") || null;
        })
        .catch(() => null);
      this.#policyMaxAge.set(key, v);
    }
    return this.#policyMaxAge.get(key) ?? null;
  }

  #unavailable(e: unknown, what: string): DirectoryUnavailableError {
    if (e instanceof DirectoryUnavailableError) return e;
    this.#log("warn", "ldap.operation_error", { profile: this.profile.name, operation: what, reason: reason(e) });
    return new DirectoryUnavailableError(this.profile.name, `ldap profile "${this.profile.name}": ${what} failed: ${reason(e)}`);
  }
}

/** Creates the Directory for one profile (no I/O until the first call). */
export function createLdapDirectory(profile: LdapProfile, options?: LdapDirectoryOptions): LdapDirectory {
  return new LdapDirectory(profile, options);
}

const POLICY_GENERIC = "The new password does not meet the password policy (length, complexity or history).";

/** draft-behera-ldap-password-policy §6.2 error values → messages safe to show the user. */
const PPOLICY_MESSAGES: Record<number, string> = {
  [PasswordPolicyError.PasswordModNotAllowed]: "Password changes are not allowed for this account.",
  [PasswordPolicyError.MustSupplyOldPassword]: "The current password is required.",
  [PasswordPolicyError.InsufficientPasswordQuality]: "The new password is not complex enough.",
  [PasswordPolicyError.PasswordTooShort]: "The new password is too short.",
  [PasswordPolicyError.PasswordTooYoung]: "The password was changed too recently; try again later.",
  [PasswordPolicyError.PasswordInHistory]: "The new password was used before; choose another one.",
};

/** slapd's ppolicy diagnostic texts (without the control) → the same messages. */
function ppolicyTextMessage(diag: string): string {
  if (/too short/i.test(diag)) return PPOLICY_MESSAGES[PasswordPolicyError.PasswordTooShort]!;
  if (/history/i.test(diag)) return PPOLICY_MESSAGES[PasswordPolicyError.PasswordInHistory]!;
  if (/quality/i.test(diag)) return PPOLICY_MESSAGES[PasswordPolicyError.InsufficientPasswordQuality]!;
  if (/too young|too soon/i.test(diag)) return PPOLICY_MESSAGES[PasswordPolicyError.PasswordTooYoung]!;
  return POLICY_GENERIC;
}

/**
 * RFC 3062 §2 PasswdModifyRequestValue:
 *   SEQUENCE { userIdentity [0] OCTET STRING OPTIONAL, oldPasswd [1] OPTIONAL, newPasswd [2] OPTIONAL }
 */
export function passwordModifyRequest(userIdentity: string, oldPassword: string, newPassword: string): Buffer {
  const w = new BerWriter();
  w.startSequence();
  w.writeString(userIdentity, 0x80);
  w.writeString(oldPassword, 0x81);
  w.writeString(newPassword, 0x82);
  w.endSequence();
  return w.buffer;
}

/** RFC 3062 §2 PasswdModifyRequestValue for an administrator's reset: userIdentity and newPasswd, no oldPasswd. */
export function passwordResetRequest(userIdentity: string, newPassword: string): Buffer {
  const w = new BerWriter();
  w.startSequence();
  w.writeString(userIdentity, 0x80);
  w.writeString(newPassword, 0x82);
  w.endSequence();
  return w.buffer;
}

/** A directory's diagnostic text fit to show: one line of printable text, at most 200 characters; else undefined. */
export function directoryText(diag: string | undefined): string | undefined {
  const t = (diag ?? "").replace(/\s+/g, " ").replace(/\s*Code: 0x[0-9a-f]+$/i, "").trim();
  if (t === "" || t.length > 200 || /[^\x20-\x7e]/.test(t)) return undefined;
  if (/^0000[0-9A-F]{4}:/i.test(t) || /^Code: 0x/i.test(t)) return undefined;
  return t;
}

/** Samba's readable reason after "check_password_restrictions:", when its diagnostic has one. */
export function sambaPolicyText(diag: string | undefined): string | undefined {
  return directoryText(/check_password_restrictions:\s*(.+)$/i.exec(diag ?? "")?.[1]);
}

function withDirectoryText(message: string, text: string | undefined): string {
  return text && text.toLowerCase() !== message.toLowerCase() ? `${message} The directory says: ${text}` : message;
}

/** E.164 with the profile's region for local formats; null when unparsable or invalid. */
export function toE164(raw: string, region: string): string | null {
  const n = parsePhoneNumberFromString(raw, region ? (region.toUpperCase() as CountryCode) : undefined);
  return n?.isValid() ? n.number : null;
}

/** RFC 4517 §3.3.13 GeneralizedTime (the forms slapd writes: YYYYMMDDHHMMSS[.f]Z) → epoch ms. */
export function parseGeneralizedTime(s: string): number | undefined {
  const m = /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})?(\d{2})?(?:[.,]\d+)?Z$/.exec(s);
  if (!m) return undefined;
  return Date.UTC(+m[1]!, +m[2]! - 1, +m[3]!, +m[4]!, +(m[5] ?? 0), +(m[6] ?? 0));
}

function arr(v: unknown): Array<string | Buffer> {
  if (v === undefined || v === null) return [];
  return (Array.isArray(v) ? v : [v]) as Array<string | Buffer>;
}

function first(v: unknown): string | Buffer | undefined {
  return arr(v)[0];
}

function str(v: unknown): string | undefined {
  const f = first(v);
  return f === undefined ? undefined : Buffer.isBuffer(f) ? f.toString("utf8") : f;
}
