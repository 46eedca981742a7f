// The embedded SQLite store: opening (directory, pragmas, migrations, keyring), generation polling,
// the writable probe, key rotation, and ownership of root-created files.
//
// Durability: WAL mode with synchronous=NORMAL (the default here) makes every commit atomic and
// keeps it across a process crash; only a power loss or kernel crash can drop the last commits
// (the database stays consistent). synchronous=FULL also fsyncs the WAL on every commit and so
// keeps commits across power loss, at the cost of one fsync per TOTP high-water-mark write.

import * as path from "node:path";
import { log } from "../../audit/log.ts";
import { chownToDirectoryOwner, ensurePrivateDirectory } from "../../runtime/files.ts";
import { openDatabase, type SQLDatabase, type SQLStatement } from "../../runtime/sqlite.ts";
import { appendNewKey, createKeyFile, describeSource, Keyring, loadKeyring } from "../keyring.ts";
import { LATEST_VERSION, MIGRATIONS, MIGRATIONS_TABLE_SQL, migrationSQL } from "../migrations.ts";
import { openSealed, seal, type SealContext } from "../seal.ts";
import { adminTotpContext, SqliteAdminAccountRepo } from "./admin-accounts.ts";
import { SqliteAuditLogRepo } from "./audit-log.ts";
import { SqliteAdminEventRepo } from "./admin-events.ts";
import { SqliteApiKeyRepo } from "./api-keys.ts";
import { type AdminAccountRepos, type AdminEventRepos, type AuditLogRepos, type DeliveryRepos, type Store, StoreError } from "../types.ts";
import { SqliteChallengeRepo } from "./challenges.ts";
import { clientSecretContext, SqliteClientRepo } from "./clients.ts";
import { SqliteDeliveryLogRepo, SqliteRateLimitRepo } from "./delivery.ts";
import { SqliteDeviceRepo } from "./devices.ts";
import { SqliteApprovalBlockRepo } from "./approval-blocks.ts";
import { SqlitePasswordResetRepo } from "./password-resets.ts";
import { namedSecretContext, SqliteServerSecretRepo } from "./server-secrets.ts";
import { rethrow, Sealer, type StoreContext } from "./context.ts";
import { SqliteEndpointRepo } from "./endpoints.ts";
import { SqliteLockoutRepo } from "./lockouts.ts";
import { pendingSecretContext, SqliteSelfServiceRepo } from "./self-service.ts";
import { SqliteSmsCodeRepo } from "./sms-codes.ts";
import { SqliteApprovalRepo } from "./approvals.ts";
import { SqliteTokenRepo, tokenSecretContext } from "./tokens.ts";
import { SqliteUserRepo } from "./users.ts";

export interface SqliteStoreOptions {
  /** Database file. */
  path: string;
  /** Data directory: created with mode 0700 when missing; its owner receives root-created files. */
  dataDir: string;
  /** Key file; default `<dataDir>/portcullis.key`. */
  keyFile?: string;
  /** "normal" (default): crash-safe; "full": also power-loss-safe. */
  synchronous?: "normal" | "full";
  /** How long a statement waits for another process's write lock; default 5000 ms. */
  busyTimeoutMs?: number;
  /** Environment for key lookup; default process.env. */
  env?: Record<string, string | undefined>;
  /** Clock for created_at columns; default Date.now. */
  now?: () => number;
}

/** Result of a key rotation. */
export interface KeyRotation {
  keyId: string;
  resealed: number;
}

const KEY_CHECK_PLAINTEXT = new TextEncoder().encode("portcullis key check");
const WRITABLE_TIMEOUT_MS = 100;

function keyCheckContext(keyId: string): SealContext {
  return { table: "seal_keys", column: "check_value", rowKey: keyId };
}

/**
 * Opens or creates the SQLite store. Throws StoreError("key_missing") when sealed secrets exist
 * but no key is found, StoreError("key_mismatch") when the key does not fit them,
 * StoreError("unavailable") when the database cannot be opened or migrated in time, and TypeError
 * for a malformed key source or a database newer than this build.
 */
export async function openSqliteStore(options: SqliteStoreOptions): Promise<SqliteStore> {
  const { dataDir, synchronous = "normal", busyTimeoutMs = 5000, env = process.env, now = Date.now } = options;
  const keyFile = options.keyFile ?? path.join(dataDir, "portcullis.key");
  ensurePrivateDirectory(dataDir);
  const ownedFiles = [options.path, `${options.path}-wal`, `${options.path}-shm`, keyFile];

  let db: SQLDatabase;
  try {
    db = openDatabase(options.path);
  } catch (err) {
    rethrow(err);
  }
  try {
    // Hand the new file to the service user before SQLite creates -wal/-shm: SQLite running as root
    // gives those the database file's owner.
    chownToDirectoryOwner(dataDir, [options.path]);
    db.exec(`PRAGMA busy_timeout = ${Math.max(0, Math.trunc(busyTimeoutMs))}`);
    db.exec("PRAGMA journal_mode = WAL");
    db.exec(`PRAGMA synchronous = ${synchronous === "full" ? "FULL" : "NORMAL"}`);
    db.exec("PRAGMA foreign_keys = ON");
    // Checkpoint every ~32 MiB of WAL instead of SQLite's 4 MiB: the hot rows (token_marks,
    // challenges, lockouts) are rewritten again and again, and a checkpoint copies each page once
    // however often it changed, so rarer checkpoints do much less work (measured 5.5 → 4.1 µs per
    // high-water-mark write). journal_size_limit truncates the WAL file again afterwards.
    db.exec("PRAGMA wal_autocheckpoint = 8000");
    db.exec("PRAGMA journal_size_limit = 67108864");
    migrate(db, now);
    const keyring = obtainKeyring(db, keyFile, env);
    verifyKeyring(db, keyring, now);
    chownToDirectoryOwner(dataDir, ownedFiles);
    return new SqliteStore(db, keyring, { busyTimeoutMs, now, dataDir, ownedFiles });
  } catch (err) {
    db.close();
    rethrow(err);
  }
}

function migrate(db: SQLDatabase, now: () => number): void {
  db.exec(MIGRATIONS_TABLE_SQL);
  const current = db.prepare<{ v: number | null }>("SELECT max(version) AS v FROM schema_migrations");
  const record = db.prepare("INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)");
  const applied = current.get()?.v ?? 0;
  if (applied > LATEST_VERSION) {
    throw new TypeError(`database schema version ${applied} is newer than this build understands (${LATEST_VERSION}); upgrade portcullis`);
  }
  if (applied === LATEST_VERSION) return;
  // Foreign keys off while the schema changes (SQLite's table-rebuild procedure): dropping a table
  // that is being rebuilt must not fire ON DELETE actions on the tables that reference it. The
  // pragma is a no-op inside a transaction, so it brackets it; the references are checked before
  // the commit instead.
  db.exec("PRAGMA foreign_keys = OFF");
  try {
    // IMMEDIATE: a second process migrating at the same moment waits, then sees the work done.
    db.transaction(() => {
      const inside = current.get()?.v ?? 0;
      for (const m of MIGRATIONS) {
        if (m.version <= inside) continue;
        db.exec(migrationSQL(m, "sqlite"));
        record.run(m.version, m.name, now());
        log("info", "store.migrated", { version: m.version, name: m.name });
      }
      const broken = db.prepare<{ table: string }>("PRAGMA foreign_key_check").all();
      if (broken.length > 0) {
        throw new StoreError("corrupt", `migration left ${broken.length} broken references (first in table ${broken[0]!.table}); nothing was changed`);
      }
    }).immediate();
  } finally {
    db.exec("PRAGMA foreign_keys = ON");
  }
}

/** Values sealed under the database key: RADIUS secrets, OTP seeds and server secrets (CSRF, SMS-code, VAPID). */
function countSealed(db: SQLDatabase): number {
  return db.prepare<{ n: number }>("SELECT (SELECT count(*) FROM radius_clients) + (SELECT count(*) FROM tokens) + (SELECT count(*) FROM server_secrets) + (SELECT count(*) FROM admin_accounts) AS n").get()!.n;
}

function obtainKeyring(db: SQLDatabase, keyFile: string, env: Record<string, string | undefined>): Keyring {
  const found = loadKeyring({ keyFile, env });
  if (found) return found;
  const sealed = countSealed(db);
  if (sealed > 0) {
    throw new StoreError(
      "key_missing",
      `encryption key not found ($CREDENTIALS_DIRECTORY/portcullis.key, $PORTCULLIS_KEY, ${keyFile}); ` +
        `refusing to create a new one while ${sealed} sealed secrets exist`,
    );
  }
  try {
    const created = createKeyFile(keyFile);
    log("info", "store.key.created", { path: keyFile, keyId: created.current.id });
    return created;
  } catch (err) {
    // Another process created it between our look and our O_EXCL create: use theirs.
    if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
    const raced = loadKeyring({ keyFile, env });
    if (!raced) throw err;
    return raced;
  }
}

/**
 * Every key that sealed something here has a check row. A held key must open its check value; a
 * key that sealed existing values must be held. Then the current key gets its check row.
 */
function verifyKeyring(db: SQLDatabase, keyring: Keyring, now: () => number): void {
  const rows = db.prepare<{ key_id: string; check_value: string }>("SELECT key_id, check_value FROM seal_keys").all();
  const usedBy = db.prepare<{ n: number }>(
    "SELECT (SELECT count(*) FROM radius_clients WHERE secret LIKE ?) + (SELECT count(*) FROM tokens WHERE secret LIKE ?) + (SELECT count(*) FROM server_secrets WHERE value LIKE ?) + (SELECT count(*) FROM admin_accounts WHERE totp_secret LIKE ?) AS n",
  );
  for (const row of rows) {
    if (keyring.get(row.key_id)) {
      try {
        openSealed((id) => keyring.get(id), row.check_value, keyCheckContext(row.key_id));
      } catch {
        throw new StoreError(
          "key_mismatch",
          `the key with ID ${row.key_id} in ${describeSource(keyring.source)} is not the key that sealed this database's secrets`,
        );
      }
    } else {
      const n = usedBy.get(`v1.${row.key_id}.%`, `v1.${row.key_id}.%`, `v1.${row.key_id}.%`, `v1.${row.key_id}.%`)!.n;
      if (n > 0) {
        throw new StoreError(
          "key_mismatch",
          `${n} sealed secrets use key ID ${row.key_id}, which ${describeSource(keyring.source)} does not hold`,
        );
      }
    }
  }
  insertCheckRow(db, keyring, keyring.current.id, now);
}

function insertCheckRow(db: SQLDatabase, keyring: Keyring, keyId: string, now: () => number): void {
  const key = keyring.get(keyId);
  if (!key) return;
  db.prepare("INSERT INTO seal_keys (key_id, check_value, created_at) VALUES (?, ?, ?) ON CONFLICT (key_id) DO NOTHING").run(
    keyId,
    seal({ id: keyId, key }, KEY_CHECK_PLAINTEXT, keyCheckContext(keyId)),
    now(),
  );
}

/** The SQLite implementation of Store; create it with openSqliteStore. */
export class SqliteStore implements Store, DeliveryRepos, AdminEventRepos, AdminAccountRepos, AuditLogRepos {
  readonly clients: SqliteClientRepo;
  readonly users: SqliteUserRepo;
  readonly tokens: SqliteTokenRepo;
  readonly challenges: SqliteChallengeRepo;
  readonly lockouts: SqliteLockoutRepo;
  readonly apiKeys: SqliteApiKeyRepo;
  readonly approvals: SqliteApprovalRepo;
  readonly smsCodes: SqliteSmsCodeRepo;
  readonly endpoints: SqliteEndpointRepo;
  readonly devices: SqliteDeviceRepo;
  readonly serverSecrets: SqliteServerSecretRepo;
  readonly approvalBlocks: SqliteApprovalBlockRepo;
  readonly rateLimits: SqliteRateLimitRepo;
  /** Password-reset portal sessions (beside Store, like the delivery repositories). */
  readonly passwordResets: SqlitePasswordResetRepo;
  readonly deliveryLog: SqliteDeliveryLogRepo;
  readonly adminEvents: SqliteAdminEventRepo;
  readonly adminAccounts: SqliteAdminAccountRepo;
  readonly auditLog: SqliteAuditLogRepo;
  readonly selfService: SqliteSelfServiceRepo;

  private readonly sealer: Sealer;
  private readonly sDataVersion: SQLStatement<{ data_version: number }>;
  private readonly sCacheEpoch: SQLStatement<{ v: number }>;
  private readonly sHeartbeat: SQLStatement;
  private lastDataVersion = -1;
  private gen = 0;
  private closed = false;

  /** @internal use openSqliteStore. */
  constructor(
    private readonly db: SQLDatabase,
    keyring: Keyring,
    private readonly opts: { busyTimeoutMs: number; now: () => number; dataDir: string; ownedFiles: string[] },
  ) {
    this.sealer = new Sealer(keyring, (id) => insertCheckRow(db, keyring, id, opts.now), opts.now);
    this.sealer.markChecked(keyring.current.id);
    const ctx: StoreContext = { db, sealer: this.sealer, now: opts.now, bumpGeneration: () => void this.gen++ };
    this.clients = new SqliteClientRepo(ctx);
    this.tokens = new SqliteTokenRepo(ctx);
    this.users = new SqliteUserRepo(ctx, this.tokens);
    this.challenges = new SqliteChallengeRepo(ctx);
    this.lockouts = new SqliteLockoutRepo(ctx);
    this.apiKeys = new SqliteApiKeyRepo(ctx);
    this.approvals = new SqliteApprovalRepo(ctx);
    this.smsCodes = new SqliteSmsCodeRepo(ctx);
    this.endpoints = new SqliteEndpointRepo(ctx);
    this.devices = new SqliteDeviceRepo(ctx);
    this.serverSecrets = new SqliteServerSecretRepo(ctx);
    this.approvalBlocks = new SqliteApprovalBlockRepo(ctx);
    this.rateLimits = new SqliteRateLimitRepo(ctx);
    this.passwordResets = new SqlitePasswordResetRepo(ctx);
    this.deliveryLog = new SqliteDeliveryLogRepo(ctx);
    this.adminEvents = new SqliteAdminEventRepo(ctx);
    this.adminAccounts = new SqliteAdminAccountRepo(ctx);
    this.auditLog = new SqliteAuditLogRepo(ctx);
    this.selfService = new SqliteSelfServiceRepo(ctx);
    this.sDataVersion = db.prepare("PRAGMA data_version");
    this.sCacheEpoch = db.prepare("SELECT v FROM cache_epoch WHERE id = 1");
    this.sHeartbeat = db.prepare("INSERT INTO heartbeat (id, at) VALUES (1, ?) ON CONFLICT (id) DO UPDATE SET at = excluded.at");
  }

  /** The keyring in use (IDs and source only matter outside the store). */
  get keyring(): Keyring {
    return this.sealer.keyring;
  }

  /**
   * Changes whenever another connection (the admin CLI) commits anything (PRAGMA data_version) or
   * this connection commits a change to clients, users or tokens.
   */
  async generation(): Promise<number> {
    try {
      const v = this.sDataVersion.get()!.data_version;
      if (v !== this.lastDataVersion) {
        this.lastDataVersion = v;
        this.gen++;
      }
      return this.gen;
    } catch (err) {
      rethrow(err);
    }
  }

  /**
   * PRAGMA data_version: changes when another connection (the admin CLI) commits. Synchronous and
   * cheap, so the read cache (store/cache.ts) can check it on every read.
   */
  changeEpoch(): number {
    return this.sDataVersion.get()!.data_version;
  }

  /** The cache_epoch counter (migration 14): moves with every commit that changes what the read cache holds. */
  cacheEpoch(): number {
    return this.sCacheEpoch.get()?.v ?? 0;
  }

  /** Commits a heartbeat row with a short lock wait; false on any failure (busy, read-only, full, I/O). */
  async writable(): Promise<boolean> {
    if (this.closed) return false;
    try {
      this.db.exec(`PRAGMA busy_timeout = ${WRITABLE_TIMEOUT_MS}`);
      try {
        this.sHeartbeat.run(this.opts.now());
        return true;
      } finally {
        this.db.exec(`PRAGMA busy_timeout = ${this.opts.busyTimeoutMs}`);
      }
    } catch {
      return false;
    }
  }

  /**
   * Appends a new key to the key file (made current) and re-seals every client secret, token seed and server
   * secret (the Magic Link secret, the VAPID private key), admin TOTP seed and pending self-service seed under it in one transaction. Older keys stay in the file so other processes keep working.
   * Throws StoreError("unavailable") when the key does not come from a key file, and like the
   * repositories when a value cannot be opened (nothing is changed then).
   */
  async rotateKey(): Promise<KeyRotation> {
    const keyring = this.sealer.keyring;
    if (keyring.source.kind !== "file") {
      throw new StoreError(
        "unavailable",
        `key rotation appends to the key file, but the key comes from ${describeSource(keyring.source)}; add a key there instead`,
      );
    }
    const clients = this.db.prepare<{ id: number; name: string; secret: string }>("SELECT id, name, secret FROM radius_clients");
    const tokens = this.db.prepare<{ id: number; serial: string; secret: string }>("SELECT id, serial, secret FROM tokens");
    const setClient = this.db.prepare("UPDATE radius_clients SET secret = ? WHERE id = ?");
    const setToken = this.db.prepare("UPDATE tokens SET secret = ? WHERE id = ?");
    const serverSecrets = this.db.prepare<{ name: string; value: string }>("SELECT name, value FROM server_secrets");
    const setServerSecret = this.db.prepare("UPDATE server_secrets SET value = ? WHERE name = ?");
    const admins = this.db.prepare<{ id: number; name: string; totp_secret: string }>("SELECT id, name, totp_secret FROM admin_accounts");
    const setAdmin = this.db.prepare("UPDATE admin_accounts SET totp_secret = ? WHERE id = ?");
    const pendings = this.db.prepare<{ id_hash: string; pending_secret: string }>(
      "SELECT id_hash, pending_secret FROM self_service_sessions WHERE pending_secret IS NOT NULL",
    );
    const setPending = this.db.prepare("UPDATE self_service_sessions SET pending_secret = ? WHERE id_hash = ?");
    const reseal = (sealed: string, ctx: SealContext) => this.sealer.seal(this.sealer.open(sealed, ctx), ctx);
    try {
      // The key file is extended while holding the database write lock, so two concurrent rotations
      // (two admin shells) serialise instead of each replacing the file with only its own new key.
      // Should the transaction fail after that, the file merely holds one more (unused) key.
      const rotation = this.db
        .transaction((): KeyRotation => {
          const key = appendNewKey(keyring);
          chownToDirectoryOwner(this.opts.dataDir, this.opts.ownedFiles);
          insertCheckRow(this.db, keyring, key.id, this.opts.now);
          let resealed = 0;
          for (const c of clients.all()) {
            setClient.run(reseal(c.secret, clientSecretContext(c.name)), c.id);
            resealed++;
          }
          for (const t of tokens.all()) {
            setToken.run(reseal(t.secret, tokenSecretContext(t.serial)), t.id);
            resealed++;
          }
          for (const x of serverSecrets.all()) {
            setServerSecret.run(reseal(x.value, namedSecretContext(x.name)), x.name);
            resealed++;
          }
          for (const a of admins.all()) {
            setAdmin.run(reseal(a.totp_secret, adminTotpContext(a.name)), a.id);
            resealed++;
          }
          for (const p of pendings.all()) {
            setPending.run(reseal(p.pending_secret, pendingSecretContext(p.id_hash)), p.id_hash);
            resealed++;
          }
          return { keyId: key.id, resealed };
        })
        .immediate();
      this.gen++;
      log("info", "store.key.rotated", { keyId: rotation.keyId, resealed: rotation.resealed });
      return rotation;
    } catch (err) {
      rethrow(err);
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.db.close();
  }
}

