// The audit port of the admin operations: who acts (the actor) and where their changes are recorded.
//
// Every operation that changes something records one admin.* event (audit/events.ts) through this
// port, with the same name and fields whoever calls it. The adapters implement it: the CLI writes
// the event to the store's admin_events table in the change's own transaction (cli/audit.ts; the
// server emits it later), the admin API emits it on the server's bus after the change
// (http/admin/audit.ts). The event's `by` is the actor's name.

import type { AdminEvent } from "../audit/events.ts";
import { AdminError } from "./errors.ts";

/** The roles of the admin operations, least privileged first (the admin API keys' roles). */
export type AdminRole = "operator" | "admin" | "root";

/** Who makes a change. */
export interface Actor {
  /** As recorded in the event's `by`: "cli:<OS user>" for the CLI, the API key's name for the API. */
  name: string;
  /** What the actor may do: the API key's role; the CLI acts as root (whoever runs it can write the database). */
  role: AdminRole;
}

/** An admin event as an operation describes it: the port adds the actor as `by`. */
export type AdminEventBody = AdminEvent extends infer E ? (E extends AdminEvent ? Omit<E, "by"> : never) : never;

export interface AdminAudit {
  readonly actor: Actor;
  /**
   * Runs `change` (which uses only the context's store) and records the event `describe` makes of
   * its result (null: nothing changed, nothing recorded). Throws what `change` throws (nothing is
   * recorded then), and StoreError("unavailable") when the record cannot be written.
   */
  change<T>(change: () => Promise<T>, describe: (result: T) => AdminEventBody | null): Promise<T>;
  /** Records an event of an action that changed nothing stored (a test message, a diagnosis). */
  note(event: AdminEventBody): Promise<void>;
}

const ORDER: Record<AdminRole, number> = { operator: 0, admin: 1, root: 2 };

/** Whether `role` is `least` or above it. */
export function roleAtLeast(role: AdminRole, least: AdminRole): boolean {
  return ORDER[role] >= ORDER[least];
}

/**
 * The least role of each kind of operation, for every adapter (admin API routes, web UI pages and
 * forms): operators read everything (but the delivery log) and unlock users; every other change
 * takes admin (API keys of the admin and root roles take root, api-keys.ts mayManage).
 */
export const LEAST_ROLE = {
  read: "operator",
  unlock: "operator",
  change: "admin",
} as const satisfies Record<string, AdminRole>;

/** Throws AdminError("forbidden") when the actor's role is below `least`. */
export function requireRole(actor: Actor, least: AdminRole): void {
  if (!roleAtLeast(actor.role, least)) throw new AdminError("forbidden", `the ${actor.role} role may not do this`);
}
