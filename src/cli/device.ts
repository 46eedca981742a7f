// `device enrol|list|remove`: the approver app's devices (docs/app.md).

import { randomBytes } from "node:crypto";
import { createEnrolment, DeviceAdminError, listDevices, removeDevice } from "../admin/devices.ts";
import { DEVICE_ID } from "../devices/keys.ts";
import { terminalQR } from "../otp/index.ts";
import type { User } from "../store/types.ts";
import { audited } from "./audit.ts";
import { CLIError, parseCommand, printList, usageError, type CLIContext } from "./context.ts";
import { cleanUsername } from "../admin/validate.ts";

export const DEVICE_USAGE = ["portcullis device enrol NAME", "portcullis device list [NAME] [--all] [--json]", "portcullis device remove ID"];

/** Runs `device SUBCOMMAND …`. Throws CLIError for bad input or a failed operation. */
export async function deviceCommand(ctx: CLIContext, args: string[]): Promise<void> {
  const [sub, ...rest] = args;
  switch (sub) {
    case "enrol":
    case "enroll":
      return enrol(ctx, rest);
    case "list":
      return list(ctx, rest);
    case "remove":
      return remove(ctx, rest);
    default:
      throw usageError("device needs a subcommand: enrol, list or remove");
  }
}

async function userByName(ctx: CLIContext, raw: string): Promise<User> {
  const name = cleanUsername(raw, ctx.config.radius.realms);
  if (!name) throw usageError("NAME must not be empty");
  const user = await (await ctx.store()).users.findByName(name);
  if (!user) throw new CLIError(`no user named ${name}`);
  return user;
}

async function enrol(ctx: CLIContext, args: string[]): Promise<void> {
  const { positionals } = parseCommand(args, {}, { min: 1, max: 1, usage: DEVICE_USAGE[0]! });
  const publicUrl = ctx.config.http.public_url;
  if (!publicUrl) throw new CLIError("http.public_url is not set; the enrolment link is built only from it");
  const user = await userByName(ctx, positionals[0]!);
  let made;
  try {
    made = await audited(
      ctx,
      (store) => createEnrolment(store, user, { publicUrl, now: ctx.now(), random: (n) => new Uint8Array(randomBytes(n)) }),
      (r) => ({ type: "admin.device_enrolment_created", user: user.username, expires_at: new Date(r.expiresAt).toISOString() }),
    );
  } catch (e) {
    if (e instanceof DeviceAdminError) throw new CLIError(e.message);
    throw e;
  }
  ctx.out(`enrolment link for ${user.username} (single use, valid until ${new Date(made.expiresAt).toISOString()}):\n${made.link}\n`);
  if (ctx.stdoutIsTTY) ctx.out(`${await terminalQR(made.link)}\n`);
}

async function list(ctx: CLIContext, args: string[]): Promise<void> {
  const { values, positionals } = parseCommand(args, { json: { type: "boolean" }, all: { type: "boolean" } }, { min: 0, max: 1, usage: DEVICE_USAGE[1]! });
  const store = await ctx.store();
  const user = positionals[0] === undefined ? undefined : await userByName(ctx, positionals[0]);
  const rows = await listDevices(store, { ...(user ? { user } : {}), includeRemoved: values.all === true });
  const header = ["ID", "USER", "NAME", "PUSH", "CREATED", "LAST SEEN", ...(values.all ? ["REMOVED"] : [])];
  printList(ctx, values.json, rows, "no devices", header, (r) => [r.id, r.user ?? "-", r.name, r.push ?? "-", r.createdAt, r.lastSeenAt ?? "-", ...(values.all ? [r.removedAt ?? "-"] : [])]);
}

async function remove(ctx: CLIContext, args: string[]): Promise<void> {
  const { positionals } = parseCommand(args, {}, { min: 1, max: 1, usage: DEVICE_USAGE[2]! });
  const id = positionals[0]!;
  if (!DEVICE_ID.test(id)) throw usageError("ID must be a device ID as `device list` shows it (22 characters)");
  const removed = await audited(
    ctx,
    (store) => removeDevice(store, id, ctx.now()),
    (r) => (r ? { type: "admin.device_removed", device: r.device.id, user: r.user, last_device: r.lastDevice } : null),
  );
  if (!removed) throw new CLIError(`no device with ID ${id}`);
  ctx.out(`removed device ${removed.device.id} of ${removed.user}\n`);
  if (removed.lastDevice) ctx.err(`portcullis: warning: ${removed.user} has no approver device left; app approvals fall back to the next step of their type\n`);
}
