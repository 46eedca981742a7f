// The password-reset portal's flow, transport-free (http/password-reset.tsx adapts it to pages):
//
//   username ─► limits (per username, per address, per portal) ─► session row (cookie token, hashed)
//     ─► known user: a code to the approver app (a device: the app shows it) or an SMS code (hashed,
//        single use, invalidated after wrong guesses); unknown user: nothing sent, same page, same
//        delay drawn the same way ─► the code typed ─► one approval per approver (app request, or an
//        SMS link to the approval page) ─► any one approves / a reject ends it ─► the new password
//        twice ─► the directory (AD unicodePwd replace, RFC 3062 Password Modify) or local argon2id
//
// Every state lives in the store (the session row, approvals, SMS codes), so any node of a cluster
// answers any step. Every failure the user sees is the same generic page; the audit log says which.

import { createHash, createHmac, timingSafeEqual } from "node:crypto";
import type { AuditEvent } from "../audit/events.ts";
import type { Level } from "../audit/log.ts";
import type { AppRequests } from "../approvals/app.ts";
import { RESET_CODE_CLIENT_PREFIX } from "../approvals/app.ts";
import type { ApprovalService } from "../approvals/service.ts";
import type { SmsCodes } from "../approvals/sms-codes.ts";
import type { ApprovalTexts } from "../approvals/texts.ts";
import { subjectHash } from "../delivery/dispatcher.ts";
import { LOCAL_SOURCE, type Directories } from "../directory/registry.ts";
import { DirectoryUnavailableError, type Directory, type DirectoryUser } from "../directory/types.ts";
import { normalizeUsername, usernameHash } from "../domain/identity.ts";
import type { Approval, Device, PasswordResetRepo, PasswordResetSession, RateBucket, RateLimitRepo, Store, User } from "../store/types.ts";

/** One `[[password_reset]]` portal as the config holds it. */
export interface ResetPortal {
  name: string;
  directory: string;
  approvers: string[];
  approver_groups: string[];
  approver_role: string;
  approval_timeout_s: number;
  session_ttl_s: number;
  min_password_length: number;
  per_user_per_hour: number;
  per_address_per_hour: number;
  overall_per_hour: number;
}

/** Random bytes in a session token (base64url in the cookie; stored only as its SHA-256). */
export const RESET_TOKEN_BYTES = 32;
/** Most approvers asked for one reset (listed names and group members together). */
export const MAX_APPROVERS = 25;
/** How long the app's code for the user lives. */
export const APP_CODE_LIFETIME_MS = 300_000;
/** Wrong app codes before the reset fails (SMS codes follow `[delivery] sms_code_max_failures`). */
export const APP_CODE_MAX_FAILURES = 3;
/** The answer to the username form takes at least a delay drawn uniformly from this range (ms), known user or not. */
export const START_DELAY_MS = { min: 400, max: 900 } as const;

const HOUR = 3_600_000;

/** What a page shows for a session. */
export type ResetView =
  | { kind: "none" }
  | { kind: "code"; appCode: boolean }
  | { kind: "waiting" }
  | { kind: "password" }
  | { kind: "done" }
  | { kind: "failed" };

export type CodeResult = { kind: "approval" } | { kind: "wrong" } | { kind: "failed" };
export type PasswordResult = { kind: "done" } | { kind: "retry"; message: string } | { kind: "failed" };

export interface PasswordResetOptions {
  portals: readonly ResetPortal[];
  store: Pick<Store, "users" | "devices" | "approvals">;
  sessions: PasswordResetRepo;
  rateLimits: RateLimitRepo;
  approvals: ApprovalService;
  /** Approver-app requests; absent: codes and approvals go by SMS only. */
  app?: AppRequests;
  smsCodes: SmsCodes;
  directories: Directories;
  /** `[delivery] sms_code_max_failures`. */
  smsCodeMaxFailures: number;
  /** The store's server secret (CSRF tokens). */
  secret: Uint8Array;
  /** argon2id hash of a new local password (runtime/password.ts hashPassword). */
  hashPassword(plain: string): Promise<string>;
  now(): number;
  random(n: number): Uint8Array;
  /** Waits `ms` (tests pass a fast one). */
  sleep(ms: number): Promise<void>;
  audit(event: AuditEvent): void;
  log(level: Level, event: string, fields?: Record<string, unknown>): void;
}

/** A user a reset is about, or an approver: the name, the phone, and the store record that holds devices. */
interface Person {
  username: string;
  phone: string | null;
  record: User | undefined;
  entry?: DirectoryUser;
  directory?: Directory;
}

/** The SHA-256 (hex) under which a session token is stored. */
export function hashResetToken(token: string): string {
  return createHash("sha256").update(token, "utf8").digest("hex");
}

/** Two strings compared in constant time (for equal lengths). */
function same(a: string, b: string): boolean {
  const x = Buffer.from(a, "utf8");
  const y = Buffer.from(b, "utf8");
  return x.length === y.length && timingSafeEqual(x, y);
}

/** The approval client of the code shown in the user's own app (approvals/app.ts shows its code). */
export function codeClient(portal: string): string {
  return `${RESET_CODE_CLIENT_PREFIX}${portal}`;
}

/** The approval client an approver sees: which portal and whose password. */
export function approverClient(portal: string, user: string): string {
  return `password reset of ${user} (${portal})`;
}

function approverTexts(user: string): ApprovalTexts {
  return {
    title: "Password reset",
    authentication: `${user} asks for a new password and has confirmed a code sent to their phone. Approve only if you know this person asked.`,
    accept: "Approved: the user can now choose a new password.",
    reject: "Rejected: the password stays as it is.",
    buttonAccept: "Approve the reset",
    buttonReject: "Reject",
  };
}

/** The password-reset portals of one appliance. Store failures propagate (the routes show the generic page). */
export class PasswordResetService {
  private readonly byName = new Map<string, ResetPortal>();

  constructor(private readonly o: PasswordResetOptions) {
    for (const p of o.portals) this.byName.set(p.name, p);
  }

  portal(name: string): ResetPortal | undefined {
    return this.byName.get(name);
  }

  /** The CSRF token of a form that belongs to `token` (a session token or the start page's). */
  csrf(token: string): string {
    return createHmac("sha256", this.o.secret).update(`reset-csrf:${token}`, "utf8").digest("base64url");
  }

  checkCsrf(token: string | undefined, presented: string | undefined): boolean {
    return typeof token === "string" && token !== "" && typeof presented === "string" && same(this.csrf(token), presented);
  }

  /** A fresh random token (cookie value). */
  newToken(): string {
    return Buffer.from(this.o.random(RESET_TOKEN_BYTES)).toString("base64url");
  }

  private async session(portal: ResetPortal, token: string | undefined): Promise<PasswordResetSession | undefined> {
    if (!token || !/^[A-Za-z0-9_-]{43}$/.test(token)) return undefined;
    const s = await this.o.sessions.get(hashResetToken(token), this.o.now());
    return s && s.portal === portal.name ? s : undefined;
  }

  private auditUser(s: Pick<PasswordResetSession, "username" | "known">): string {
    return s.known ? s.username : usernameHash(s.username);
  }

  /**
   * The username form. Returns the new session's token, or undefined when a limit refused it (the
   * page is the generic one). Known or not, the answer comes after a delay drawn the same way, and
   * the code is sent in the background, so neither the time nor the page tells whether the user exists.
   */
  async start(portal: ResetPortal, rawUsername: string, source: string): Promise<string | undefined> {
    const began = this.o.now();
    const draw = START_DELAY_MS.min + (this.o.random(1)[0]! / 255) * (START_DELAY_MS.max - START_DELAY_MS.min);
    try {
      return await this.begin(portal, rawUsername, source);
    } finally {
      const left = began + draw - this.o.now();
      if (left > 0) await this.o.sleep(left);
    }
  }

  private async begin(portal: ResetPortal, rawUsername: string, source: string): Promise<string | undefined> {
    const username = normalizeUsername(rawUsername.slice(0, 256));
    const now = this.o.now();
    const buckets: RateBucket[] = [
      { key: `reset:${portal.name}:u:${subjectHash(`reset-user:${username}`)}`, windowMs: HOUR, limit: portal.per_user_per_hour },
      { key: `reset:${portal.name}:a:${subjectHash(`reset-addr:${source}`)}`, windowMs: HOUR, limit: portal.per_address_per_hour },
      { key: `reset:${portal.name}:all`, windowMs: HOUR, limit: portal.overall_per_hour },
    ];
    const decision = await this.o.rateLimits.consume(buckets, now);
    if (!decision.allowed) {
      const which = decision.bucket.includes(":u:") ? "user" : decision.bucket.includes(":a:") ? "address" : "portal";
      this.o.audit({ type: "password_reset.limited", portal: portal.name, user: usernameHash(username), source, limit: which });
      return undefined;
    }
    const person = username === "" ? undefined : await this.find(portal, username).catch((err: unknown) => this.unavailable(portal, err));
    const token = this.newToken();
    const s: PasswordResetSession = {
      id: hashResetToken(token),
      portal: portal.name,
      username,
      known: person !== undefined,
      stage: "code",
      codeApproval: null,
      codeFailures: 0,
      approvals: [],
      approvedBy: null,
      source,
      createdAt: now,
      updatedAt: now,
      expiresAt: now + portal.session_ttl_s * 1000,
    };
    await this.o.sessions.create(s);
    this.o.audit({ type: "password_reset.started", portal: portal.name, user: this.auditUser(s), known: s.known, source });
    if (person) void this.sendCode(portal, s, person).catch((err: unknown) => this.o.log("error", "password_reset.code_error", { portal: portal.name, error: (err as Error)?.name ?? "error" }));
    return token;
  }

  private unavailable(portal: ResetPortal, err: unknown): undefined {
    this.o.log("error", "password_reset.directory_unavailable", { portal: portal.name, error: err instanceof DirectoryUnavailableError ? err.message : ((err as Error)?.name ?? "error") });
    return undefined;
  }

  /** The code to the user's app (a live device) or phone. */
  private async sendCode(portal: ResetPortal, s: PasswordResetSession, person: Person): Promise<void> {
    const app = this.o.app;
    const devices = app && person.record ? await app.devicesOf(person.record.id) : [];
    if (app && person.record && devices.length > 0) {
      const opened = await this.o.approvals.open({
        kind: "password-reset",
        user: person.username,
        client: codeClient(portal.name),
        source: s.source,
        texts: approverTexts(person.username),
        lifetimeMs: APP_CODE_LIFETIME_MS,
      });
      if (opened.kind !== "busy") {
        if (opened.kind === "created") await app.announce(opened.approval, { id: person.record.id, username: person.username }, devices);
        await this.o.sessions.advance(s.id, "code", { codeApproval: opened.approval.id }, this.o.now());
        this.o.audit({ type: "password_reset.code_sent", portal: portal.name, user: s.username, channel: "app" });
        return;
      }
    }
    if (!person.phone) {
      this.o.audit({ type: "password_reset.code_not_sent", portal: portal.name, user: s.username, reason: "no_phone" });
      return;
    }
    const r = await this.o.smsCodes.send(
      { state: s.id, client: `password-reset:${portal.name}`, user: s.username },
      { msisdn: person.phone, email: null, endpoint: `password-reset:${portal.name}`, rateKey: `password-reset:${portal.name}` },
      { clientLabel: "password reset" },
    );
    if (r.ok) this.o.audit({ type: "password_reset.code_sent", portal: portal.name, user: s.username, channel: r.channel });
    else this.o.audit({ type: "password_reset.code_not_sent", portal: portal.name, user: s.username, reason: r.reason });
  }

  /** A user of the portal's directory (local: a store record without a directory). Throws DirectoryUnavailableError. */
  private async find(portal: ResetPortal, username: string): Promise<Person | undefined> {
    if (portal.directory === LOCAL_SOURCE) {
      const u = await this.o.store.users.findByName(username);
      if (!u || u.directory !== null || u.disabled) return undefined;
      return { username: u.username, phone: u.phone, record: u };
    }
    const directory = this.o.directories.get(portal.directory);
    if (!directory) return undefined;
    const entry = await directory.findUser(username);
    if (!entry || entry.status === "disabled" || entry.status === "account_expired") return undefined;
    const record = (await this.o.store.users.findByExternal(directory.name, entry.id)) ?? undefined;
    return { username, phone: record?.phone ?? entry.phone, record, entry, directory };
  }

  /** What the page of this session shows now; a waiting session looks at its approvals first. */
  async view(portal: ResetPortal, token: string | undefined): Promise<ResetView> {
    const s = await this.session(portal, token);
    if (!s) return { kind: "none" };
    switch (s.stage) {
      case "code":
        return { kind: "code", appCode: s.codeApproval !== null };
      case "approval":
        return this.settleApprovals(portal, s);
      case "password":
        return { kind: "password" };
      case "done":
        return { kind: "done" };
      default:
        return { kind: "failed" };
    }
  }

  /** The approvals of a waiting session: one approved → password; a reject or all ended → failed. */
  private async settleApprovals(portal: ResetPortal, s: PasswordResetSession): Promise<ResetView> {
    const list: Approval[] = [];
    for (const id of s.approvals) {
      const a = await this.o.approvals.current(id);
      if (a) list.push(a);
    }
    const approved = list.find((a) => a.state === "approved");
    const refused = list.find((a) => a.state === "rejected" || a.state === "reported");
    const now = this.o.now();
    if (approved && !refused) {
      if (await this.o.sessions.advance(s.id, "approval", { stage: "password", approvedBy: approved.user ?? "" }, now)) {
        this.o.audit({ type: "password_reset.approved", portal: portal.name, user: s.username, by: approved.user ?? "" });
        await this.cancelOthers(list, approved.id);
      }
      return { kind: "password" };
    }
    if (refused || list.every((a) => a.state !== "pending")) {
      if (await this.o.sessions.advance(s.id, "approval", { stage: "failed" }, now)) {
        if (refused) this.o.audit({ type: "password_reset.rejected", portal: portal.name, user: s.username, by: refused.user ?? "" });
        else this.o.audit({ type: "password_reset.failed", portal: portal.name, user: s.username, reason: "approval_expired" });
        await this.cancelOthers(list, refused?.id);
      }
      return { kind: "failed" };
    }
    return { kind: "waiting" };
  }

  private async cancelOthers(list: readonly Approval[], keep: string | undefined): Promise<void> {
    for (const a of list) if (a.id !== keep && a.state === "pending") await this.o.approvals.cancel(a.id).catch(() => false);
  }

  /** The code form: the right code asks the approvers; a wrong one counts (the limit ends the reset). */
  async submitCode(portal: ResetPortal, token: string | undefined, typed: string): Promise<CodeResult> {
    const s = await this.session(portal, token);
    if (!s || s.stage !== "code") return { kind: "failed" };
    const code = typed.slice(0, 64);
    let ok = false;
    let exhausted = false;
    if (!s.known) {
      const n = (await this.o.sessions.failCode(s.id, this.o.now())) ?? Infinity;
      exhausted = n >= this.o.smsCodeMaxFailures;
    } else if (s.codeApproval !== null) {
      const a = await this.o.approvals.current(s.codeApproval);
      if (a?.state === "approved") ok = true;
      else if (a?.state === "pending" && this.o.app && same(code.replace(/[\s-]/g, ""), this.o.app.codeFor(a.id))) {
        ok = await this.o.approvals.settle(a, "approved");
      } else if (a?.state === "pending") {
        const n = (await this.o.sessions.failCode(s.id, this.o.now())) ?? Infinity;
        exhausted = n >= APP_CODE_MAX_FAILURES;
        if (exhausted) await this.o.approvals.cancel(a.id).catch(() => false);
      } else exhausted = true;
    } else {
      const r = await this.o.smsCodes.verify({ state: s.id, client: `password-reset:${portal.name}`, user: s.username }, code);
      ok = r.result === "accepted";
      exhausted = r.result === "invalidated" || r.result === "unknown" || r.result === "mismatch";
    }
    if (!ok) {
      this.o.audit({ type: "password_reset.code_failed", portal: portal.name, user: this.auditUser(s), final: exhausted });
      if (exhausted && (await this.o.sessions.advance(s.id, "code", { stage: "failed" }, this.o.now()))) {
        this.o.audit({ type: "password_reset.failed", portal: portal.name, user: this.auditUser(s), reason: "code" });
        return { kind: "failed" };
      }
      return exhausted ? { kind: "failed" } : { kind: "wrong" };
    }
    const ids = await this.askApprovers(portal, s);
    if (ids.length === 0) {
      await this.o.sessions.advance(s.id, "code", { stage: "failed" }, this.o.now());
      this.o.audit({ type: "password_reset.failed", portal: portal.name, user: s.username, reason: "no_approver_reached" });
      return { kind: "failed" };
    }
    if (!(await this.o.sessions.advance(s.id, "code", { stage: "approval", approvals: ids }, this.o.now()))) return { kind: "failed" };
    return { kind: "approval" };
  }

  /** The approvers' names: the listed ones, then the groups' members; never the user themselves. */
  private async approverNames(portal: ResetPortal, user: string): Promise<string[]> {
    const names = new Set(portal.approvers.map((n) => normalizeUsername(n)).filter((n) => n !== ""));
    const directory = portal.directory === LOCAL_SOURCE ? undefined : this.o.directories.get(portal.directory);
    if (directory?.groupMembers) {
      for (const g of portal.approver_groups) {
        if (names.size >= MAX_APPROVERS) break;
        try {
          for (const m of await directory.groupMembers(g, MAX_APPROVERS)) names.add(normalizeUsername(m));
        } catch (err) {
          this.unavailable(portal, err);
        }
      }
    }
    names.delete(user);
    return [...names].slice(0, MAX_APPROVERS);
  }

  /** One approval per approver reached: an app request (a live device), else an SMS link. Returns their IDs. */
  private async askApprovers(portal: ResetPortal, s: PasswordResetSession): Promise<string[]> {
    const ids: string[] = [];
    let viaApp = 0;
    let viaSms = 0;
    for (const name of await this.approverNames(portal, s.username)) {
      let person: Person | undefined;
      try {
        person = await this.findApprover(portal, name);
      } catch (err) {
        this.unavailable(portal, err);
      }
      if (!person) continue;
      const opened = await this.o.approvals.open({
        kind: "password-reset",
        user: person.username,
        client: approverClient(portal.name, s.username),
        source: s.source,
        texts: approverTexts(s.username),
        lifetimeMs: portal.approval_timeout_s * 1000,
      });
      if (opened.kind === "busy") continue;
      if (opened.kind === "joined") {
        ids.push(opened.approval.id);
        continue;
      }
      const a = opened.approval;
      const devices: Device[] = this.o.app && person.record ? await this.o.app.devicesOf(person.record.id) : [];
      if (this.o.app && person.record && devices.length > 0 && (await this.o.app.admit(person.username)).ok) {
        await this.o.app.announce(a, { id: person.record.id, username: person.username }, devices);
        ids.push(a.id);
        viaApp++;
        continue;
      }
      if (!person.phone) {
        await this.o.approvals.cancel(a.id);
        continue;
      }
      const d = await this.o.approvals.deliver(a, opened.token, {
        msisdn: person.phone,
        email: null,
        endpoint: `password-reset:${portal.name}`,
        rateKey: `password-reset:${portal.name}`,
        template: "A password reset waits for your approval: {link}",
        subject: "Password reset",
      });
      if (d.ok) {
        ids.push(a.id);
        viaSms++;
      }
    }
    this.o.audit({ type: "password_reset.approval_requested", portal: portal.name, user: s.username, app: viaApp, sms: viaSms });
    return ids;
  }

  /** An approver: a local user by name, or a user of the portal's directory (phone override and devices from the linked record). */
  private async findApprover(portal: ResetPortal, name: string): Promise<Person | undefined> {
    if (portal.directory !== LOCAL_SOURCE) {
      const directory = this.o.directories.get(portal.directory);
      const entry = await directory?.findUser(name);
      if (directory && entry && entry.status !== "disabled" && entry.status !== "account_expired") {
        const record = await this.o.store.users.findByExternal(directory.name, entry.id);
        return { username: name, phone: record?.phone ?? entry.phone, record };
      }
    }
    const u = await this.o.store.users.findByName(name);
    if (!u || u.disabled || u.directory !== null) return undefined;
    return { username: u.username, phone: u.phone, record: u };
  }

  /** The new password, twice. A directory's policy refusal keeps the session at this step with its message. */
  async setPassword(portal: ResetPortal, token: string | undefined, password: string, again: string): Promise<PasswordResult> {
    const s = await this.session(portal, token);
    if (!s || s.stage !== "password" || !s.known) return { kind: "failed" };
    if (password !== again) return { kind: "retry", message: "The two passwords are not the same. Type the new password twice." };
    if (password.length > 256) return { kind: "retry", message: "The new password is too long (at most 256 characters)." };
    if (portal.directory === LOCAL_SOURCE) {
      if ([...password].length < portal.min_password_length) return { kind: "retry", message: `The new password is too short: use at least ${portal.min_password_length} characters.` };
      const u = await this.o.store.users.findByName(s.username);
      if (!u || u.directory !== null) return this.fail(portal, s, "user_gone");
      const hash = await this.o.hashPassword(password);
      if (!(await this.o.sessions.advance(s.id, "password", { stage: "done" }, this.o.now()))) return { kind: "failed" };
      await this.o.store.users.update(u.id, { passwordHash: hash });
      this.o.audit({ type: "password_reset.changed", portal: portal.name, user: s.username, directory: LOCAL_SOURCE, approved_by: s.approvedBy ?? "" });
      return { kind: "done" };
    }
    const directory = this.o.directories.get(portal.directory);
    if (!directory?.resetPassword) return this.fail(portal, s, "directory_missing");
    let r;
    try {
      const entry = await directory.findUser(s.username);
      if (!entry) return this.fail(portal, s, "user_gone");
      r = await directory.resetPassword(entry, password);
    } catch (err) {
      this.unavailable(portal, err);
      return { kind: "retry", message: "The directory cannot be reached right now. Try again in a moment." };
    }
    if (r.ok) {
      if (!(await this.o.sessions.advance(s.id, "password", { stage: "done" }, this.o.now()))) return { kind: "failed" };
      this.o.audit({ type: "password_reset.changed", portal: portal.name, user: s.username, directory: directory.name, approved_by: s.approvedBy ?? "" });
      return { kind: "done" };
    }
    if (r.reason === "policy") {
      this.o.audit({ type: "password_reset.policy_refused", portal: portal.name, user: s.username });
      return { kind: "retry", message: r.message };
    }
    return this.fail(portal, s, r.detail);
  }

  private async fail(portal: ResetPortal, s: PasswordResetSession, reason: string): Promise<PasswordResult> {
    await this.o.sessions.advance(s.id, s.stage, { stage: "failed" }, this.o.now());
    this.o.audit({ type: "password_reset.failed", portal: portal.name, user: s.username, reason });
    return { kind: "failed" };
  }
}
