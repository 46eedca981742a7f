// The server's tail of the admin_events table: CLI changes become typed audit events on its bus, each once.
//
// The CLI records every change it makes in the change's own transaction (cli/audit.ts). `serve`
// calls drain() whenever another process has committed (the store's change epoch moved) and on its
// 60 s timer. Each drain claims the records not emitted yet, oldest first, in the store (so a
// record is emitted once even across restarts and with several servers on one store) and emits
// them in order. Records written while no server ran are emitted by the next server at start-up.

import type { AdminEvent, AuditEvent } from "../audit/events.ts";
import type { AdminEventRecord, AdminEventRepo } from "../store/types.ts";

/** Every admin event type; a record of another type is not emitted (and is logged as unreadable). */
const ADMIN_TYPES: Record<AdminEvent["type"], true> = {
  "admin.user_added": true,
  "admin.user_updated": true,
  "admin.user_removed": true,
  "admin.user_unlocked": true,
  "admin.users_imported": true,
  "admin.token_enrolled": true,
  "admin.token_assigned": true,
  "admin.token_state": true,
  "admin.token_resynced": true,
  "admin.token_removed": true,
  "admin.tokens_imported": true,
  "admin.client_added": true,
  "admin.client_removed": true,
  "admin.client_updated": true,
  "admin.apikey_added": true,
  "admin.apikey_removed": true,
  "admin.apikey_state": true,
  "admin.endpoint_put": true,
  "admin.endpoint_removed": true,
  "admin.endpoint_updated": true,
  "admin.delivery_test": true,
  "admin.key_rotated": true,
  "admin.ldap_tested": true,
  "admin.account_added": true,
  "admin.account_removed": true,
  "admin.account_totp_reset": true,
  "admin.account_password_changed": true,
  "admin.client_tested": true,
  "admin.user_tested": true,
  "admin.device_enrolment_created": true,
  "admin.device_removed": true,
  "admin.push_tested": true,
  "admin.enrol_link_created": true,
};

/**
 * The typed audit event of a stored record: its fields, then `by` = the record's actor. A stored
 * `type` or `by` field cannot override the record's own. null when the type is not an admin event.
 */
export function adminEventOf(record: AdminEventRecord): AdminEvent | null {
  if (!Object.hasOwn(ADMIN_TYPES, record.type)) return null;
  const { type: _type, by: _by, ...fields } = record.fields;
  // The CLI wrote these fields from a typed CLIAdminEvent (cli/audit.ts) of the same type.
  return { type: record.type, ...fields, by: record.actor } as AdminEvent;
}

type LogFn = (level: "debug" | "info" | "warn" | "error", event: string, fields?: Record<string, unknown>) => void;

export interface AdminEventTailOptions {
  /** Where the typed events go (the server's AuditBus). */
  emit: (event: AuditEvent) => void;
  /** Operational lines: an unreadable record, a failed drain. */
  log: LogFn;
  now: () => number;
  /** Records claimed per store transaction; default 500. */
  batch?: number;
  /** Batches per drain() (bounds one call's work; the rest waits for the next); default 20. */
  maxBatches?: number;
}

/** Emits the admin events the CLI recorded. Create one per server; drain() never throws. */
export class AdminEventTail {
  /** The last pass started or queued; at most one runs and one waits. */
  private last: Promise<number> = Promise.resolve(0);
  private waiting = false;
  private readonly batch: number;
  private readonly maxBatches: number;

  constructor(
    private readonly repo: AdminEventRepo,
    private readonly options: AdminEventTailOptions,
  ) {
    this.batch = Math.max(1, options.batch ?? 500);
    this.maxBatches = Math.max(1, options.maxBatches ?? 20);
  }

  /**
   * Claims and emits every pending record (up to batch × maxBatches), oldest first; resolves to how
   * many that pass emitted. Passes never overlap: a call during a pass queues one more pass (which
   * sees every record committed before it starts), and further calls share that queued pass. A
   * store failure is logged (`admin_events.tail_failed`) and the records stay pending.
   */
  drain(): Promise<number> {
    if (this.waiting) return this.last;
    this.waiting = true;
    this.last = this.last.then(() => {
      this.waiting = false;
      return this.pass();
    });
    return this.last;
  }

  private async pass(): Promise<number> {
    const { emit, log, now } = this.options;
    let emitted = 0;
    try {
      for (let i = 0; i < this.maxBatches; i++) {
        const records = await this.repo.claimPending(this.batch, now());
        for (const record of records) {
          const event = adminEventOf(record);
          if (event) {
            emit(event);
            emitted++;
          } else {
            log("warn", "admin_events.unreadable", { id: record.id });
          }
        }
        if (records.length < this.batch) break;
      }
    } catch (err) {
      const code = (err as { code?: unknown } | null)?.code;
      log("error", "admin_events.tail_failed", { error: err instanceof Error ? err.name : "error", ...(typeof code === "string" ? { code } : {}) });
    }
    return emitted;
  }

  /** Deletes emitted records older than `retentionMs`; never throws (a failure waits for the next timer). */
  async purge(retentionMs: number): Promise<number> {
    return this.repo.purgeBefore(this.options.now() - retentionMs).catch(() => 0);
  }
}
