// A read-through cache in front of any Store for the RADIUS hot path: users, active tokens and
// lockout counters are served from memory, and every write still goes to the store first.
//
// Correctness does not rest on the cache:
// - the TOTP/HOTP replay guard is the store's conditional UPDATE; a stale high-water mark in
//   memory can only make the engine try a write that the store then refuses;
// - any commit by another process (the admin CLI: token disable, user remove, unlock…) changes the
//   store's change epoch, checked on every cached read; when it also moved the store's cache epoch
//   (every change to users, tokens, lockout counters, known sources, or a token mark other than a
//   forward move), the whole cache is emptied, so the next request reads the store again. Another
//   RADIUS worker's high-water-mark commits leave it warm. Writes made through this wrapper update
//   or drop their entries.
// Challenge state is never cached: it is a consumable whose single use the store enforces.

import type {
  AdminAccountRepo,
  AdminAccountRepos,
  AuditLogRepo,
  AuditLogRepos,
  ApiKeyRepo,
  ChallengeRepo,
  EndpointRepo,
  ApprovalRepo,
  ClientRepo,
  DeviceRepo,
  FailureKind,
  KnownSource,
  LockoutRepo,
  LockoutState,
  ServerSecretRepo,
  ApprovalBlockRepo,
  SelfServiceRepo,
  NewToken,
  NewUser,
  SmsCodeRepo,
  Store,
  Token,
  TokenRepo,
  TokenState,
  User,
  UserImportRow,
  UserRepo,
  WarmReads,
} from "./types.ts";
import { StoreError } from "./types.ts";

/** A counter's cache key: the identity first, so that `user unlock` can drop all of one identity's. */
const lockKey = (key: string, kind: FailureKind, source: string) => `${key}\u0000${kind}\u0000${source}`;
const externalKey = (directory: string, externalId: string) => `${directory}\u0000${externalId}`;

export interface CacheOptions {
  /** Entries per map before it is emptied (bounds memory under a flood of distinct User-Names). */
  maxEntries?: number;
}

/** The inner store must offer a cheap synchronous change counter (SQLite: PRAGMA data_version). */
export type EpochStore = Store & { changeEpoch(): number; cacheEpoch?(): number };

export class CachedStore implements Store {
  readonly clients: ClientRepo;
  readonly users: UserRepo;
  readonly tokens: TokenRepo;
  readonly challenges: ChallengeRepo;
  readonly lockouts: LockoutRepo;
  /** Not cached: API keys, approvals, SMS codes and endpoint profiles always go to the store. */
  readonly apiKeys: ApiKeyRepo;
  readonly approvals: ApprovalRepo;
  readonly smsCodes: SmsCodeRepo;
  readonly endpoints: EndpointRepo;
  /** Not cached: devices and their replay records are consumables the store guards. */
  readonly devices: DeviceRepo;
  readonly serverSecrets: ServerSecretRepo;
  readonly approvalBlocks: ApprovalBlockRepo;
  /** Not cached: admin web UI accounts and sessions (absent when the inner store has none). */
  readonly adminAccounts: AdminAccountRepo | undefined;
  /** Not cached: the stored audit log (absent when the inner store has none). */
  readonly auditLog: AuditLogRepo | undefined;
  readonly selfService: SelfServiceRepo;

  /** username → user, or null for "no such user" (unknown names are cached too, bounded). */
  private readonly byName = new Map<string, User | null>();
  private readonly byId = new Map<number, User | null>();
  /** directory + "\0" + externalId → the linked record, or null for "no record linked". */
  private readonly byExternal = new Map<string, User | null>();
  /** userId → active tokens. */
  private readonly active = new Map<number, Token[]>();
  /** tokenId → the cached token object (to move its high-water mark after a committed write). */
  private readonly tokenById = new Map<number, Token>();
  /** lockKey → a counter, or null for "no such counter" (source "" is the identity's). */
  private readonly locks = new Map<string, LockoutState | null>();
  /** identity → its known sources (source → last success), or null for "none"; each entry is complete. */
  private readonly known = new Map<string, Map<string, number> | null>();
  private epoch: number;
  /** The store's cacheEpoch when last read (undefined: the store has none, any commit counts). */
  private cacheGeneration: number | undefined;
  private readonly max: number;
  /** True after preload() until the next invalidation: a miss then means "absent", without a query. */
  private complete = false;
  /** The change epoch is read at most once per event-loop turn (PRAGMA data_version is not free). */
  private checkedThisTurn = false;

  constructor(
    private readonly inner: EpochStore,
    options: CacheOptions = {},
  ) {
    this.max = options.maxEntries ?? 262_144;
    this.epoch = inner.changeEpoch();
    this.cacheGeneration = inner.cacheEpoch?.();
    this.clients = inner.clients;
    this.challenges = inner.challenges;
    this.apiKeys = inner.apiKeys;
    this.approvals = inner.approvals;
    this.smsCodes = inner.smsCodes;
    this.endpoints = inner.endpoints;
    this.devices = inner.devices;
    this.serverSecrets = inner.serverSecrets;
    this.approvalBlocks = inner.approvalBlocks;
    this.adminAccounts = (inner as Partial<AdminAccountRepos>).adminAccounts;
    this.auditLog = (inner as Partial<AuditLogRepos>).auditLog;
    this.selfService = inner.selfService;
    this.users = this.userRepo(inner.users);
    this.tokens = this.tokenRepo(inner.tokens);
    this.lockouts = this.lockoutRepo(inner.lockouts);
  }

  /**
   * The same answers as the repositories' cached reads, without a promise, or undefined where the
   * repositories would have to ask the store (the engine then takes its asynchronous path).
   */
  readonly warm: WarmReads = {
    userByName: (username) => {
      this.fresh();
      const hit = this.byName.get(username);
      return hit !== undefined ? hit : this.complete ? null : undefined;
    },
    activeTokens: (userId) => {
      this.fresh();
      return this.active.get(userId) ?? (this.complete ? [] : undefined);
    },
    counted: (key, kind, source) => {
      this.fresh();
      if (this.complete && this.locks.size === 0) return false; // nobody has a failure counter: no key to build
      const own = this.locks.get(lockKey(key, kind, source));
      const all = this.locks.get(lockKey(key, kind, ""));
      if (own || all) return true;
      return this.complete || (own === null && all === null) ? false : undefined;
    },
    knownSource: (key, source) => {
      this.fresh();
      const sources = this.known.get(key);
      if (sources === undefined) return this.complete ? null : undefined;
      return sources?.get(source) ?? null;
    },
  };

  /** Empties every map; called when another process committed, or by our own admin writes. */
  invalidate(): void {
    this.complete = false;
    this.byName.clear();
    this.byId.clear();
    this.byExternal.clear();
    this.active.clear();
    this.tokenById.clear();
    this.locks.clear();
    this.known.clear();
  }

  /**
   * Checks the store's change epoch; a commit by another connection empties the cache, unless the
   * store's cacheEpoch says that nothing the cache holds changed (another RADIUS worker's
   * high-water-mark commits). Read in this order, a commit that lands between the two reads is
   * either counted now or moves the change epoch again for the next check.
   */
  private fresh(): void {
    if (this.checkedThisTurn) return;
    this.checkedThisTurn = true;
    setImmediate(() => {
      this.checkedThisTurn = false;
    });
    const epoch = this.inner.changeEpoch();
    if (epoch !== this.epoch) {
      this.epoch = epoch;
      const generation = this.inner.cacheEpoch?.();
      if (generation === undefined || generation !== this.cacheGeneration) {
        this.cacheGeneration = generation;
        this.invalidate();
      }
    }
  }

  private remember<K, V>(map: Map<K, V>, key: K, value: V): void {
    if (map.size >= this.max) {
      map.clear();
      this.complete = false;
    }
    map.set(key, value);
  }

  /**
   * Loads every user and active token into memory, so that the first login of each user does not
   * read the store either (like FreeRADIUS reading its users file). Skipped above maxEntries.
   * Returns how many users were loaded.
   */
  async preload(): Promise<number> {
    this.fresh();
    if ((await this.inner.users.count()) > this.max) return 0;
    const users = await this.inner.users.list();
    const tokens = await this.inner.tokens.list();
    const locks = await this.inner.lockouts.list();
    const known = await this.inner.lockouts.knownSources();
    for (const user of users) {
      this.byName.set(user.username, user);
      this.byId.set(user.id, user);
      if (user.directory !== null && user.externalId !== null) this.byExternal.set(externalKey(user.directory, user.externalId), user);
      this.active.set(user.id, []);
    }
    for (const token of tokens) {
      if (token.userId === null || token.state !== "active") continue;
      this.active.get(token.userId)?.push(token);
      this.tokenById.set(token.id, token);
    }
    for (const state of locks) this.locks.set(lockKey(state.key, state.kind, state.source), state);
    for (const k of known) {
      let sources = this.known.get(k.key);
      if (!sources) this.known.set(k.key, (sources = new Map()));
      sources.set(k.source, k.lastSuccessAt);
    }
    this.complete = true;
    return users.length;
  }

  /** Runs an admin write through to the store, then empties the cache (whatever the outcome). */
  private readonly admin = async <T>(write: Promise<T>): Promise<T> => {
    try {
      return await write;
    } finally {
      this.invalidate();
    }
  };

  private userRepo(inner: UserRepo): UserRepo {
    const self = this;
    const admin = this.admin;
    return {
      list: () => inner.list(),
      count: () => inner.count(),
      async findByName(username: string) {
        self.fresh();
        const hit = self.byName.get(username);
        if (hit !== undefined) return hit ?? undefined;
        if (self.complete) return undefined;
        const user = await inner.findByName(username);
        self.remember(self.byName, username, user ?? null);
        return user;
      },
      async findById(id: number) {
        self.fresh();
        const hit = self.byId.get(id);
        if (hit !== undefined) return hit ?? undefined;
        if (self.complete) return undefined;
        const user = await inner.findById(id);
        self.remember(self.byId, id, user ?? null);
        return user;
      },
      async findByExternal(directory: string, externalId: string) {
        self.fresh();
        const key = externalKey(directory, externalId);
        const hit = self.byExternal.get(key);
        if (hit !== undefined) return hit ?? undefined;
        if (self.complete) return undefined;
        const user = await inner.findByExternal(directory, externalId);
        self.remember(self.byExternal, key, user ?? null);
        return user;
      },
      add: (user: NewUser) => admin(inner.add(user)),
      update: (id: number, patch: Partial<NewUser>) => admin(inner.update(id, patch)),
      remove: (username: string) => admin(inner.remove(username)),
      importMany: (rows: UserImportRow[], onProgress?: (done: number) => void) => admin(inner.importMany(rows, onProgress)),
    };
  }

  private tokenRepo(inner: TokenRepo): TokenRepo {
    const self = this;
    const admin = this.admin;
    return {
      list: (userId?: number) => inner.list(userId),
      findById: (id: number) => inner.findById(id),
      findBySerial: (serial: string) => inner.findBySerial(serial),
      async activeForUser(userId: number) {
        self.fresh();
        const hit = self.active.get(userId);
        if (hit) return hit;
        if (self.complete) return [];
        const tokens = await inner.activeForUser(userId);
        self.remember(self.active, userId, tokens);
        for (const t of tokens) self.remember(self.tokenById, t.id, t);
        return tokens;
      },
      add: (token: NewToken) => admin(inner.add(token)),
      addMany: (tokens: NewToken[]) => admin(inner.addMany(tokens)),
      assign: (id: number, userId: number | null) => admin(inner.assign(id, userId)),
      setState: (id: number, state: TokenState) => admin(inner.setState(id, state)),
      remove: (id: number) => admin(inner.remove(id)),
      resync: (id: number, values: { counter?: number; lastStep?: number; drift?: number }) => admin(inner.resync(id, values)),
      // once per accepted code: one promise step after the commit, no async frame
      advanceTOTP(id: number, step: number, drift: number) {
        return inner.advanceTOTP(id, step, drift).then((advanced) => {
          const cached = self.tokenById.get(id);
          if (cached && advanced) {
            cached.lastStep = step;
            cached.drift = drift;
          } else if (cached) {
            return self.reloadToken(id).then(() => advanced);
          }
          return advanced;
        });
      },
      async advanceHOTP(id: number, next: number) {
        const advanced = await inner.advanceHOTP(id, next);
        const cached = self.tokenById.get(id);
        if (cached && advanced) cached.counter = next;
        else if (cached) await self.reloadToken(id);
        return advanced;
      },
    };
  }

  /** After a refused advance the store holds a newer mark than memory: read that user's tokens again. */
  private async reloadToken(id: number): Promise<void> {
    const userId = this.tokenById.get(id)?.userId;
    if (userId == null) return;
    const tokens = await this.inner.tokens.activeForUser(userId);
    this.active.set(userId, tokens);
    for (const t of tokens) this.tokenById.set(t.id, t);
  }

  private lockoutRepo(inner: LockoutRepo): LockoutRepo {
    const self = this;
    const k = lockKey;
    /** An identity's known sources from memory, else read (all of them) and remembered. */
    const sourcesOf = async (key: string): Promise<Map<string, number> | null> => {
      self.fresh();
      const hit = self.known.get(key);
      if (hit !== undefined) return hit;
      if (self.complete) return null;
      return remembered(key, await inner.knownSources(key));
    };
    const remembered = (key: string, list: KnownSource[]): Map<string, number> | null => {
      const sources = list.length === 0 ? null : new Map(list.map((s) => [s.source, s.lastSuccessAt] as const));
      self.remember(self.known, key, sources);
      return sources;
    };
    return {
      list: (key?: string) => inner.list(key),
      async get(key: string, kind: FailureKind, source = "") {
        self.fresh();
        const hit = self.locks.get(k(key, kind, source));
        if (hit !== undefined) return hit ?? undefined;
        if (self.complete) return undefined;
        const state = await inner.get(key, kind, source);
        self.remember(self.locks, k(key, kind, source), state ?? null);
        return state;
      },
      async recordFailure(key, kind, source, now, policy) {
        try {
          const states = await inner.recordFailure(key, kind, source, now, policy);
          self.remember(self.locks, k(key, kind, source), states.source);
          self.remember(self.locks, k(key, kind, ""), states.identity);
          return states;
        } catch (err) {
          self.locks.delete(k(key, kind, source));
          self.locks.delete(k(key, kind, ""));
          throw err;
        }
      },
      async reset(key: string, kind: FailureKind, source = "") {
        self.locks.delete(k(key, kind, source));
        await inner.reset(key, kind, source);
        // While memory is complete an absent entry already means "none": the map then holds only
        // live counters, and once none is left the warm read builds no key again.
        if (!self.complete) self.remember(self.locks, k(key, kind, source), null);
      },
      async purgeStale(lastFailureBefore: number, now: number) {
        const purged = await inner.purgeStale(lastFailureBefore, now);
        for (const [key, state] of self.locks) {
          if (state && state.lastFailureAt < lastFailureBefore && state.lockedUntil < now) self.locks.delete(key);
        }
        return purged;
      },
      async clear(key: string) {
        // Every counter of the identity, whatever its kind and source (and the absent ones, which stay absent).
        const prefix = `${key}\u0000`;
        for (const cached of self.locks.keys()) if (cached.startsWith(prefix)) self.locks.delete(cached);
        return inner.clear(key);
      },
      async knownSource(key: string, source: string) {
        return (await sourcesOf(key))?.get(source);
      },
      knownSources: (key?: string) => inner.knownSources(key),
      async recordSuccess(key, source, now, bounds) {
        await inner.recordSuccess(key, source, now, bounds);
        // What the store now holds, without reading it back: the same update on the same rows
        // (store/sqlite/lockouts.ts), made on memory as it is once the write committed (another
        // write of this identity may have committed with it); an identity memory does not hold is
        // read on its next use.
        self.fresh();
        const cached = self.known.get(key);
        const before = cached !== undefined ? cached : self.complete ? null : undefined;
        if (before === undefined) return;
        const sources = new Map(before ?? []);
        if (sources.has(source)) {
          sources.set(source, Math.max(sources.get(source)!, now));
        } else {
          sources.set(source, now);
          for (const [s, at] of sources) if (at < bounds.forgetBefore) sources.delete(s);
          const newest = [...sources].sort(([sa, a], [sb, b]) => b - a || (sa < sb ? -1 : sa > sb ? 1 : 0));
          for (const [s] of newest.slice(bounds.keep)) sources.delete(s);
        }
        self.remember(self.known, key, sources.size === 0 ? null : sources);
      },
      async forgetSources(before: number) {
        const forgotten = await inner.forgetSources(before);
        for (const [key, sources] of self.known) {
          if (!sources) continue;
          for (const [source, at] of sources) if (at < before) sources.delete(source);
          if (sources.size === 0) self.known.set(key, null);
        }
        return forgotten;
      },
    };
  }

  generation(): Promise<number> {
    return this.inner.generation();
  }

  writable(): Promise<boolean> {
    return this.inner.writable();
  }

  close(): Promise<void> {
    this.invalidate();
    return this.inner.close();
  }

  /**
   * Rotates the inner store's sealing key (the admin API's POST /key/rotate on a running server).
   * Throws StoreError("unavailable") when the inner store or its key source cannot rotate. Cached
   * tokens hold plaintext seeds, which rotation does not change; the cache is emptied all the same.
   */
  async rotateKey(): Promise<{ keyId: string; resealed: number }> {
    if (!this.inner.rotateKey) throw new StoreError("unavailable", "this store cannot rotate its key");
    const rotated = await this.inner.rotateKey();
    this.invalidate();
    return rotated;
  }
}
