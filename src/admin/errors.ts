// The one error of the admin operations: a stable code that adapters switch on, the input it
// concerns, and a message that never holds a secret.
//
// Adapters decide the output: the CLI prints the message on one line (exit 2 for `invalid`, else 1),
// the admin API maps the code to a status in one place (http/admin/errors.ts) and answers only what
// `expose` allows, so that nothing the caller sent is echoed on the wire.

export type AdminErrorCode =
  /** The input breaks a rule; `field` names it. */
  | "invalid"
  /** What the input names does not exist. */
  | "not_found"
  /** The change clashes with what exists (a name taken, a network taken, a profile the file declares). */
  | "conflict"
  /** The actor's role may not do this. */
  | "forbidden"
  /** A rate limit refused it. */
  | "rate_limited"
  /** A service the operation needs is not there (delivery, push, the database). */
  | "unavailable";

export interface AdminErrorOptions {
  /** The input concerned, by its API name ("phone", "approvalHoldS", "csv.line.4"). */
  field?: string;
  /**
   * What an answer on the wire may say: a fixed text that holds no input (for `invalid`, what the
   * field must be). Without it an answer says only the status (and the field).
   */
  expose?: string;
}

/**
 * A refused or failed admin operation. `template` may name inputs as `{field}` (e.g. "{phone} must
 * be …"); adapters render them as their own names (`--phone`, `phone`). `message` is the template
 * with the plain field names. Never holds a secret (a password, seed, shared secret or key).
 */
export class AdminError extends Error {
  readonly field: string | undefined;
  readonly expose: string | undefined;

  constructor(
    readonly code: AdminErrorCode,
    readonly template: string,
    { field, expose }: AdminErrorOptions = {},
  ) {
    super(renderAdminMessage(template, (name) => name));
    this.name = "AdminError";
    this.field = field;
    this.expose = expose;
  }

  /** The message with each `{name}` placeholder replaced by `nameOf(name)`. */
  render(nameOf: (field: string) => string): string {
    return renderAdminMessage(this.template, nameOf);
  }
}

/** Replaces each `{name}` (letters, digits, '.', '_') in `template` by `nameOf(name)`. */
export function renderAdminMessage(template: string, nameOf: (field: string) => string): string {
  return template.replace(/\{([A-Za-z][A-Za-z0-9._]*)\}/g, (_, name: string) => nameOf(name));
}

/** An `invalid` error for `field`: "{field} must be RULE", exposed as "must be RULE" on the wire. */
export function invalid(field: string, rule: string): AdminError {
  return new AdminError("invalid", `{${field}} ${rule}`, { field, expose: rule });
}
