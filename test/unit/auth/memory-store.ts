// An in-memory Store for engine tests of directory-linked users, until the SQLite store persists
// User.directory / externalId / directoryPhone and a null type. It keeps the repository contract
// (store/types.ts): unique usernames and (directory, externalId) pairs, single-use consume,
// compare-and-set high-water marks.
import {
  StoreError,
  type Challenge,
  type ChallengeRepo,
  type ClientRepo,
  type FailureKind,
  type FailurePolicy,
  type KnownSource,
  type LockoutRepo,
  type LockoutState,
  type NewToken,
  type NewUser,
  type Store,
  type ApiKeyRepo,
  type ApprovalRepo,
  type SmsCodeRepo,
  type EndpointRepo,
  type DeviceRepo,
  type ServerSecretRepo,
  type ApprovalBlockRepo,
  type SelfServiceRepo,
  type Token,
  type TokenRepo,
  type User,
  type UserRepo,
} from "../../../src/store/types.ts";

class MemoryUsers implements UserRepo {
  rows = new Map<number, User>();
  private nextId = 1;
  async list() {
    return [...this.rows.values()].map((u) => ({ ...u }));
  }
  async count() {
    return this.rows.size;
  }
  async findByName(username: string) {
    const u = [...this.rows.values()].find((r) => r.username === username);
    return u && { ...u };
  }
  async findById(id: number) {
    const u = this.rows.get(id);
    return u && { ...u };
  }
  async findByExternal(directory: string, externalId: string) {
    const u = [...this.rows.values()].find((r) => r.directory === directory && r.externalId === externalId);
    return u && { ...u };
  }
  private checkUnique(u: NewUser, id?: number) {
    for (const r of this.rows.values()) {
      if (r.id === id) continue;
      if (r.username === u.username) throw new StoreError("conflict", `user '${u.username}' exists`);
      if (u.directory && u.externalId && r.directory === u.directory && r.externalId === u.externalId) throw new StoreError("conflict", "directory link exists");
    }
  }
  async add(user: NewUser) {
    this.checkUnique(user);
    const row: User = { ...user, id: this.nextId++, createdAt: 0 };
    this.rows.set(row.id, row);
    return { ...row };
  }
  async update(id: number, patch: Partial<NewUser>) {
    const row = this.rows.get(id);
    if (!row) throw new StoreError("not_found", `user ${id} not found`);
    const next = { ...row, ...Object.fromEntries(Object.entries(patch).filter(([, v]) => v !== undefined)) } as User;
    this.checkUnique(next, id);
    this.rows.set(id, next);
  }
  async remove(username: string) {
    const u = await this.findByName(username);
    return u ? this.rows.delete(u.id) : false;
  }
  async importMany() {
    throw new Error("not used by the engine");
  }
}

class MemoryTokens implements TokenRepo {
  rows = new Map<number, Token>();
  private nextId = 1;
  async list(userId?: number) {
    return [...this.rows.values()].filter((t) => userId === undefined || t.userId === userId);
  }
  async findById(id: number) {
    return this.rows.get(id);
  }
  async findBySerial(serial: string) {
    return [...this.rows.values()].find((t) => t.serial === serial);
  }
  async activeForUser(userId: number) {
    return [...this.rows.values()].filter((t) => t.userId === userId && t.state === "active").map((t) => ({ ...t }));
  }
  async add(token: NewToken) {
    const row: Token = { counter: 0, lastStep: -1, drift: 0, ...token, id: this.nextId++, createdAt: 0 };
    this.rows.set(row.id, row);
    return { ...row };
  }
  async addMany(tokens: NewToken[]) {
    return Promise.all(tokens.map((t) => this.add(t)));
  }
  async assign(id: number, userId: number | null) {
    this.rows.get(id)!.userId = userId;
  }
  async setState(id: number, state: Token["state"]) {
    this.rows.get(id)!.state = state;
  }
  async remove(id: number) {
    return this.rows.delete(id);
  }
  async advanceTOTP(id: number, step: number, drift: number) {
    const t = this.rows.get(id);
    if (!t || t.lastStep >= step) return false;
    t.lastStep = step;
    t.drift = drift;
    return true;
  }
  async advanceHOTP(id: number, next: number) {
    const t = this.rows.get(id);
    if (!t || t.counter >= next) return false;
    t.counter = next;
    return true;
  }
  async resync(id: number, values: { counter?: number; lastStep?: number; drift?: number }) {
    Object.assign(this.rows.get(id)!, values);
  }
}

class MemoryChallenges implements ChallengeRepo {
  rows = new Map<string, Challenge>();
  /** Every row ever put, for tests that inspect what reached the store. */
  written: Challenge[] = [];
  async put(c: Challenge) {
    this.rows.set(c.id, { ...c });
    this.written.push({ ...c });
  }
  async find(id: string, now: number) {
    const c = this.rows.get(id);
    return c && c.expiresAt > now ? { ...c } : undefined;
  }
  async consume(id: string, now: number) {
    const c = this.rows.get(id);
    this.rows.delete(id);
    return c && c.expiresAt > now ? c : undefined;
  }
  async fail(id: string) {
    const c = this.rows.get(id);
    if (!c) return undefined;
    return ++c.failures;
  }
  async purgeExpired(now: number) {
    let n = 0;
    for (const [id, c] of this.rows) if (c.expiresAt <= now && this.rows.delete(id)) n++;
    return n;
  }
}

class MemoryLockouts implements LockoutRepo {
  rows = new Map<string, LockoutState>();
  known = new Map<string, KnownSource>();
  private id = (key: string, kind: FailureKind, source: string) => `${kind}:${source}:${key}`;
  async get(key: string, kind: FailureKind, source = "") {
    const s = this.rows.get(this.id(key, kind, source));
    return s && { ...s };
  }
  async list(key?: string) {
    return [...this.rows.values()].filter((s) => key === undefined || s.key === key);
  }
  async recordFailure(key: string, kind: FailureKind, source: string, now: number, policy: FailurePolicy) {
    const bump = (scope: "source" | "identity", at: string): LockoutState => {
      const prev = this.rows.get(this.id(key, kind, at));
      const failures = prev && prev.lastFailureAt >= policy.staleBefore ? prev.failures + 1 : 1;
      const s: LockoutState = { key, kind, source: at, failures, lockedUntil: policy.lockedUntil(scope, failures), lastFailureAt: now };
      this.rows.set(this.id(key, kind, at), s);
      return { ...s };
    };
    return { source: bump("source", source), identity: bump("identity", "") };
  }
  async reset(key: string, kind: FailureKind, source = "") {
    this.rows.delete(this.id(key, kind, source));
  }
  async clear(key: string) {
    let cleared = false;
    for (const [id, s] of this.rows) if (s.key === key) cleared = this.rows.delete(id) || cleared;
    return cleared;
  }
  async purgeStale() {
    return 0;
  }
  async knownSource(key: string, source: string) {
    return this.known.get(`${source}:${key}`)?.lastSuccessAt;
  }
  async knownSources(key?: string) {
    return [...this.known.values()].filter((k) => key === undefined || k.key === key).sort((a, b) => b.lastSuccessAt - a.lastSuccessAt);
  }
  async recordSuccess(key: string, source: string, now: number, bounds: { keep: number; forgetBefore: number }) {
    this.known.set(`${source}:${key}`, { key, source, lastSuccessAt: now });
    const mine = await this.knownSources(key);
    for (const [i, k] of mine.entries()) if (i >= bounds.keep || k.lastSuccessAt < bounds.forgetBefore) this.known.delete(`${k.source}:${key}`);
  }
  async forgetSources(before: number) {
    let n = 0;
    for (const [id, k] of this.known) if (k.lastSuccessAt < before && this.known.delete(id)) n++;
    return n;
  }
}

export class MemoryStore implements Store {
  readonly clients = {} as ClientRepo;
  readonly users = new MemoryUsers();
  readonly tokens = new MemoryTokens();
  readonly challenges = new MemoryChallenges();
  readonly lockouts = new MemoryLockouts();
  readonly apiKeys = {} as ApiKeyRepo;
  readonly approvals = {} as ApprovalRepo;
  readonly smsCodes = {} as SmsCodeRepo;
  readonly endpoints = {} as EndpointRepo;
  readonly devices = {} as DeviceRepo;
  readonly serverSecrets = {} as ServerSecretRepo;
  readonly approvalBlocks = {} as ApprovalBlockRepo;
  readonly selfService = {} as SelfServiceRepo;
  async generation() {
    return 0;
  }
  async writable() {
    return true;
  }
  async close() {}
}
