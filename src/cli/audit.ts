// Audit hooks of the admin CLI: each change is recorded as an admin event in the change's own transaction.
//
// The CLI has no audit bus and often runs while no server does, so it writes the event to the
// store's admin_events table (store/sqlite/admin-events.ts) together with the change; the running
// server emits it on its bus (cli/admin-event-tail.ts), and a server started later emits it then.

import { randomBytes } from "node:crypto";
import { userInfo } from "node:os";
import type { AdminAudit, AdminEventBody } from "../admin/audit.ts";
import type { AdminContext } from "../admin/context.ts";
import { adminEventsOf, type Store } from "../store/types.ts";
import type { CLIContext } from "./context.ts";

/** An admin event as the CLI describes it: the actor is added as `by` when it is emitted. */
export type CLIAdminEvent = AdminEventBody;

/** Characters kept from an OS user name; anything else becomes "?" (the name ends up in log lines). */
const UNSAFE = /[^A-Za-z0-9._@$+-]/g;

/**
 * The actor of a CLI change: "cli:" + the invoking OS user, `SUDO_USER` when sudo set it, else the
 * process's user (its uid when it has no passwd entry). A claim of the shell, not an
 * authentication: whoever can run the CLI can write the database anyway.
 */
export function cliActor(env: Record<string, string | undefined> = process.env, processUser: () => string = defaultProcessUser): string {
  const sudo = env.SUDO_USER?.trim();
  const name = sudo ? sudo : processUser();
  return `cli:${name.slice(0, 64).replace(UNSAFE, "?") || "?"}`;
}

function defaultProcessUser(): string {
  try {
    return userInfo().username;
  } catch {
    return `uid${process.getuid?.() ?? "?"}`;
  }
}

/**
 * The CLI's side of the audit port (admin/audit.ts): the actor is `actor` (cliActor()) acting as
 * root, and each event is written to `store`'s admin_events table, in the change's own transaction
 * for a change. Throws TypeError when the store has no admin-event table.
 */
export function cliAudit(store: Store, actor: string, now: () => number): AdminAudit {
  const events = adminEventsOf(store);
  const record = (event: AdminEventBody) => {
    const { type, ...fields } = event;
    return { at: now(), actor, type, fields };
  };
  return {
    actor: { name: actor, role: "root" },
    change: (change, describe) =>
      events.recordWith(change, (result) => {
        const event = describe(result);
        return event === null ? null : record(event);
      }),
    note: async (event) => {
      await events.append(record(event));
    },
  };
}

/** The admin operations' context for a CLI command: opens the store (ctx.store()) and audits as cliAudit. */
export async function adminContext(ctx: CLIContext): Promise<AdminContext> {
  const store = await ctx.store();
  return {
    config: ctx.config,
    store,
    audit: cliAudit(store, ctx.actor ?? cliActor(), ctx.now),
    now: ctx.now,
    random: (n) => new Uint8Array(randomBytes(n)),
  };
}

/**
 * Runs a store change and records the admin event `describe` makes of its result (null: nothing
 * changed) in the same transaction, through cliAudit. New commands call an admin operation
 * (src/admin) with adminContext(ctx) instead. Throws what the change throws (nothing is recorded
 * then), TypeError when the store has no admin-event table (the change is not made), and
 * StoreError("unavailable") when the database is locked beyond the busy timeout.
 */
export async function audited<T>(ctx: CLIContext, change: (store: Store) => Promise<T>, describe: (result: T) => CLIAdminEvent | null): Promise<T> {
  const store = await ctx.store();
  return cliAudit(store, ctx.actor ?? cliActor(), ctx.now).change(() => change(store), describe);
}
