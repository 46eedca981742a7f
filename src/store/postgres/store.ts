// The PostgreSQL store: opening (pool, migrations under an advisory lock, keyring), the shared
// generation, the writable probe. Several appliances may open one database; they share every
// table, and each needs the same sealing key (the key file, $PORTCULLIS_KEY or the credential).

import * as path from "node:path";
import { log } from "../../audit/log.ts";
import { ensurePrivateDirectory } from "../../runtime/files.ts";
import { openPostgres, redactUrl, type PgDatabase } from "../../runtime/postgres.ts";
import { createKeyFile, describeSource, type Keyring, loadKeyring } from "../keyring.ts";
import { LATEST_VERSION, MIGRATIONS, MIGRATIONS_TABLE_SQL, migrationSQL } from "../migrations.ts";
import { openSealed, seal, type SealContext } from "../seal.ts";
import { Sealer } from "../sealer.ts";
import { type AdminEventRepos, type ApprovalOutcome, type DeliveryRepos, type CachedLogin, type Store, StoreError, type WarmReads } from "../types.ts";
import { PgAdminEventRepo } from "./admin-events.ts";
import { PgApiKeyRepo } from "./api-keys.ts";
import { PgApprovalBlockRepo } from "./approval-blocks.ts";
import { PgApprovalRepo } from "./approvals.ts";
import { PgChallengeRepo } from "./challenges.ts";
import { PgClientRepo } from "./clients.ts";
import { rethrow, type PgStoreContext } from "./context.ts";
import { PgDeliveryLogRepo, PgRateLimitRepo } from "./delivery.ts";
import { PgDeviceRepo } from "./devices.ts";
import { PgEndpointRepo } from "./endpoints.ts";
import { COUNT_SEALED_LIKE_SQL, rotatePgKey } from "./key-rotation.ts";
import { PgLockoutRepo } from "./lockouts.ts";
import { PgLoginReads } from "./login-reads.ts";
import { PgPasswordResetRepo } from "./password-resets.ts";
import { PgSelfServiceRepo } from "./self-service.ts";
import { PgAdminAccountRepo } from "./admin-accounts.ts";
import { PgAuditLogRepo } from "./audit-log.ts";
import { PgRadiusReplyRepo } from "./radius-replies.ts";
import { PgTurnStatement } from "./turn-statement.ts";
import { PgServerSecretRepo } from "./server-secrets.ts";
import { PgSmsCodeRepo } from "./sms-codes.ts";
import { PgTokenRepo } from "./tokens.ts";
import { PgUserRepo } from "./users.ts";

export interface PgStoreOptions {
  /** postgres://user:password@host:port/database */
  url: string;
  /** Data directory: holds the key file (created with mode 0700 when missing). */
  dataDir: string;
  /** Key file; default `<dataDir>/portcullis.key`. */
  keyFile?: string;
  /** Connections in the pool; default 10. */
  poolSize?: number;
  /** Seconds to wait for a connection; default 5. */
  connectTimeoutS?: number;
  /** Environment for key lookup; default process.env. */
  env?: Record<string, string | undefined>;
  now?: () => number;
  /** false: only connect and read the schema version (store check); default true. */
  migrate?: boolean;
}

const KEY_CHECK_PLAINTEXT = new TextEncoder().encode("portcullis key check");
/**
 * How long the write probe may take: with serve's probe every 250 ms, a database that stops taking
 * writes is noticed within 250 + 700 ms.
 */
const WRITABLE_TIMEOUT_MS = 700;
/** The NOTIFY channel of migration 16's trigger: payload "<approval id> <state>". */
const APPROVALS_CHANNEL = "portcullis_approvals";
const APPROVAL_OUTCOMES: ReadonlySet<string> = new Set<ApprovalOutcome>(["approved", "rejected", "reported", "expired", "cancelled", "failed"]);
/** Any fixed number: the advisory lock that serialises migrations across nodes. */
const MIGRATION_LOCK = 7_106_001;

function keyCheckContext(keyId: string): SealContext {
  return { table: "seal_keys", column: "check_value", rowKey: keyId };
}

/** The highest applied migration, or 0 for an empty database. */
export async function schemaVersion(db: PgDatabase): Promise<number> {
  const { rows } = await db.query<{ present: boolean }>("SELECT to_regclass('schema_migrations') IS NOT NULL AS present");
  if (!rows[0]?.present) return 0;
  const v = await db.query<{ v: number | null }>("SELECT max(version) AS v FROM schema_migrations");
  return v.rows[0]?.v ?? 0;
}

/** Applies the missing migrations. Throws TypeError for a database newer than this build. */
export async function migratePg(db: PgDatabase, now: () => number): Promise<void> {
  const applied = await schemaVersion(db);
  if (applied > LATEST_VERSION) {
    throw new TypeError(`database schema version ${applied} is newer than this build understands (${LATEST_VERSION}); upgrade portcullis`);
  }
  if (applied === LATEST_VERSION) return;
  // One transaction under an advisory lock: a second node migrating at the same moment waits,
  // then sees the work done. PostgreSQL's DDL is transactional, so a failure changes nothing.
  await db.transaction(async () => {
    await db.query("SELECT pg_advisory_xact_lock($1)", [MIGRATION_LOCK]);
    await db.exec(MIGRATIONS_TABLE_SQL);
    const inside = (await db.query<{ v: number | null }>("SELECT max(version) AS v FROM schema_migrations")).rows[0]?.v ?? 0;
    for (const m of MIGRATIONS) {
      if (m.version <= inside) continue;
      await db.exec(migrationSQL(m, "postgres"));
      await db.query("INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)", [m.version, m.name, now()]);
      log("info", "store.migrated", { version: m.version, name: m.name });
    }
  });
}

async function countSealed(db: PgDatabase): Promise<number> {
  const { rows } = await db.query<{ n: number }>(COUNT_SEALED_LIKE_SQL, ["%"]);
  return rows[0]!.n;
}

async function obtainKeyring(db: PgDatabase, keyFile: string, dataDir: string, env: Record<string, string | undefined>): Promise<Keyring> {
  const found = loadKeyring({ keyFile, env });
  if (found) return found;
  const sealed = await countSealed(db);
  if (sealed > 0) {
    throw new StoreError(
      "key_missing",
      `encryption key not found ($CREDENTIALS_DIRECTORY/portcullis.key, $PORTCULLIS_KEY, ${keyFile}); ` +
        `refusing to create a new one while ${sealed} sealed secrets exist in the database (copy the key from the node that created them)`,
    );
  }
  ensurePrivateDirectory(dataDir);
  try {
    const created = createKeyFile(keyFile);
    log("info", "store.key.created", { path: keyFile, keyId: created.current.id });
    return created;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
    const raced = loadKeyring({ keyFile, env });
    if (!raced) throw err;
    return raced;
  }
}

async function verifyKeyring(db: PgDatabase, keyring: Keyring, now: () => number): Promise<void> {
  const { rows } = await db.query<{ key_id: string; check_value: string }>("SELECT key_id, check_value FROM seal_keys");
  for (const row of rows) {
    if (keyring.get(row.key_id)) {
      try {
        openSealed((id) => keyring.get(id), row.check_value, keyCheckContext(row.key_id));
      } catch {
        throw new StoreError("key_mismatch", `the key with ID ${row.key_id} in ${describeSource(keyring.source)} is not the key that sealed this database's secrets`);
      }
    } else {
      const like = `v1.${row.key_id}.%`;
      const { rows: n } = await db.query<{ n: number }>(COUNT_SEALED_LIKE_SQL, [like]);
      if (n[0]!.n > 0) {
        throw new StoreError("key_mismatch", `${n[0]!.n} sealed secrets use key ID ${row.key_id}, which ${describeSource(keyring.source)} does not hold`);
      }
    }
  }
  await insertCheckRow(db, keyring, keyring.current.id, now);
}

async function insertCheckRow(db: PgDatabase, keyring: Keyring, keyId: string, now: () => number): Promise<void> {
  const key = keyring.get(keyId);
  if (!key) return;
  await db.query("INSERT INTO seal_keys (key_id, check_value, created_at) VALUES ($1, $2, $3) ON CONFLICT (key_id) DO NOTHING", [
    keyId,
    seal({ id: keyId, key }, KEY_CHECK_PLAINTEXT, keyCheckContext(keyId)),
    now(),
  ]);
}

/**
 * Opens the PostgreSQL store, applying missing migrations. Throws StoreError("unavailable") when the
 * server cannot be reached (the message names the URL without its password), StoreError("key_missing"
 * | "key_mismatch") like the SQLite store, and TypeError for a database newer than this build.
 */
export async function openPgStore(options: PgStoreOptions): Promise<PgStore> {
  const { dataDir, env = process.env, now = Date.now } = options;
  const keyFile = options.keyFile ?? path.join(dataDir, "portcullis.key");
  const db = openPostgres(options.url, { max: options.poolSize ?? 10, connectTimeoutS: options.connectTimeoutS ?? 5 });
  try {
    await migratePg(db, now);
    const keyring = await obtainKeyring(db, keyFile, dataDir, env);
    await verifyKeyring(db, keyring, now);
    log("info", "store.opened", { driver: "postgres", url: redactUrl(options.url) });
    return new PgStore(db, keyring, now);
  } catch (err) {
    await db.close().catch(() => {});
    try {
      rethrow(err);
    } catch (mapped) {
      if (mapped instanceof StoreError && mapped.code === "unavailable") {
        throw new StoreError("unavailable", `${mapped.message} at ${redactUrl(options.url)}`);
      }
      throw mapped;
    }
  }
}

/** The PostgreSQL implementation of Store; create it with openPgStore. */
export class PgStore implements Store, DeliveryRepos, AdminEventRepos {
  readonly clients: PgClientRepo;
  readonly users: PgUserRepo;
  readonly tokens: PgTokenRepo;
  readonly challenges: PgChallengeRepo;
  readonly lockouts: PgLockoutRepo;
  readonly apiKeys: PgApiKeyRepo;
  readonly approvals: PgApprovalRepo;
  readonly smsCodes: PgSmsCodeRepo;
  readonly endpoints: PgEndpointRepo;
  readonly devices: PgDeviceRepo;
  readonly serverSecrets: PgServerSecretRepo;
  readonly approvalBlocks: PgApprovalBlockRepo;
  readonly radiusReplies: PgRadiusReplyRepo;
  readonly passwordResets: PgPasswordResetRepo;
  readonly selfService: PgSelfServiceRepo;
  readonly adminAccounts: PgAdminAccountRepo;
  readonly rateLimits: PgRateLimitRepo;
  readonly deliveryLog: PgDeliveryLogRepo;
  readonly adminEvents: PgAdminEventRepo;
  readonly auditLog: PgAuditLogRepo;
  readonly driver = "postgres";

  private readonly sealer: Sealer;
  private readonly logins: PgLoginReads;
  private closed = false;
  private readonly unlisteners = new Set<() => Promise<void>>();

  /** @internal use openPgStore. */
  constructor(
    readonly db: PgDatabase,
    keyring: Keyring,
    private readonly now: () => number,
  ) {
    this.sealer = new Sealer(
      keyring,
      (id) => {
        insertCheckRow(db, keyring, id, now).catch((err) => log("error", "store.key.check_row_failed", { keyId: id, detail: String((err as Error)?.message ?? err) }));
      },
      now,
    );
    this.sealer.markChecked(keyring.current.id);
    // The generation is the shared counter the triggers maintain: nothing to bump here.
    const ctx: PgStoreContext = { db, sealer: this.sealer, now, bumpGeneration: () => {} };
    this.clients = new PgClientRepo(ctx);
    this.tokens = new PgTokenRepo(ctx);
    this.users = new PgUserRepo(ctx, this.tokens);
    this.challenges = new PgChallengeRepo(ctx);
    this.lockouts = new PgLockoutRepo(ctx);
    this.apiKeys = new PgApiKeyRepo(ctx);
    this.approvals = new PgApprovalRepo(ctx);
    this.smsCodes = new PgSmsCodeRepo(ctx);
    this.endpoints = new PgEndpointRepo(ctx);
    this.devices = new PgDeviceRepo(ctx);
    this.serverSecrets = new PgServerSecretRepo(ctx);
    this.approvalBlocks = new PgApprovalBlockRepo(ctx);
    const turn = new PgTurnStatement(db);
    this.radiusReplies = new PgRadiusReplyRepo(ctx, turn);
    this.passwordResets = new PgPasswordResetRepo(ctx);
    this.selfService = new PgSelfServiceRepo(ctx);
    this.adminAccounts = new PgAdminAccountRepo(ctx);
    this.rateLimits = new PgRateLimitRepo(ctx);
    this.deliveryLog = new PgDeliveryLogRepo(ctx);
    this.adminEvents = new PgAdminEventRepo(ctx);
    this.auditLog = new PgAuditLogRepo(ctx);
    this.logins = new PgLoginReads(ctx, this.tokens, turn);
  }

  /** A code-only login's reads in one statement (shared by the logins of one event-loop turn). */
  loginReads(key: string, source: string): Promise<WarmReads> {
    return this.logins.read(key, source);
  }

  /** What this node remembers of a local user for a code-only login (only after enableLoginCache). */
  cachedLogin(key: string, source: string): CachedLogin | undefined {
    return this.logins.cached(key, source);
  }

  /**
   * Remembers the record and active tokens of each local user that loginReads finds, for
   * cachedLogin (serve with `[store] cache`); every use is revalidated by its write.
   */
  enableLoginCache(): void {
    this.logins.enableCache();
  }

  get keyring(): Keyring {
    return this.sealer.keyring;
  }

  /**
   * The shared change counter: triggers increment it in the same transaction as every change to
   * clients, users, tokens, API keys or endpoint profiles, on whichever node it was made.
   */
  async generation(): Promise<number> {
    try {
      const { rows } = await this.db.query<{ n: number }>("SELECT n FROM change_counter WHERE id = 1");
      return rows[0]?.n ?? 0;
    } catch (err) {
      rethrow(err);
    }
  }

  /** Approvals that left "pending" on any node, from the approvals table's NOTIFY trigger. */
  async watchApprovals(listener: (id: string, state: ApprovalOutcome) => void): Promise<() => Promise<void>> {
    try {
      const unlisten = await this.db.listen(APPROVALS_CHANNEL, (payload) => {
        const [id, state] = payload.split(" ");
        if (id && state && APPROVAL_OUTCOMES.has(state)) listener(id, state as ApprovalOutcome);
      });
      this.unlisteners.add(unlisten);
      return async () => {
        this.unlisteners.delete(unlisten);
        await unlisten();
      };
    } catch (err) {
      rethrow(err);
    }
  }

  /**
   * Appends a new key to the key file (made current) and re-seals every sealed value under it in one
   * transaction (key-rotation.ts). Other nodes keep opening values under either key once they hold
   * the new one (docs/store.md, "Key rotation on PostgreSQL"). Throws StoreError("unavailable") when
   * the key does not come from a key file.
   */
  async rotateKey(): Promise<{ keyId: string; resealed: number }> {
    try {
      const rotation = await rotatePgKey({
        db: this.db,
        sealer: this.sealer,
        insertCheckRow: (keyring, keyId) => insertCheckRow(this.db, keyring, keyId, this.now),
      });
      log("info", "store.key.rotated", { keyId: rotation.keyId, resealed: rotation.resealed });
      return rotation;
    } catch (err) {
      rethrow(err);
    }
  }

  /** Commits a heartbeat row within 700 ms; false on any failure or timeout. */
  async writable(): Promise<boolean> {
    if (this.closed) return false;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(false), WRITABLE_TIMEOUT_MS);
    });
    const write = this.db
      .query("INSERT INTO heartbeat (id, at) VALUES (1, $1) ON CONFLICT (id) DO UPDATE SET at = excluded.at", [this.now()])
      .then(
        () => true,
        () => false,
      );
    try {
      return await Promise.race([write, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const unlisten of [...this.unlisteners]) await unlisten().catch(() => {});
    this.unlisteners.clear();
    await this.db.close();
  }
}
