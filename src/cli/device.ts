// `device enrol|list|remove`: the approver app's devices (docs/app.md).

import { deleteDevice, enrolDevice, listDevices } from "../admin/devices.ts";
import { findUser } from "../admin/users.ts";
import { DEVICE_ID } from "../devices/keys.ts";
import { terminalQR } from "../otp/index.ts";
import { adminContext } from "./audit.ts";
import { parseCommand, printList, usageError, type CLIContext } from "./context.ts";

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

async function enrol(ctx: CLIContext, args: string[]): Promise<void> {
  const { positionals } = parseCommand(args, {}, { min: 1, max: 1, usage: DEVICE_USAGE[0]! });
  const made = await enrolDevice(await adminContext(ctx), positionals[0]!);
  ctx.out(`enrolment link for ${made.user.username} (single use, valid until ${new Date(made.expiresAt).toISOString()}):\n${made.link}\n`);
  if (ctx.stdoutIsTTY) ctx.out(`${await terminalQR(made.link)}\n`);
}

async function list(ctx: CLIContext, args: string[]): Promise<void> {
  const { values, positionals } = parseCommand(args, { json: { type: "boolean" }, all: { type: "boolean" } }, { min: 0, max: 1, usage: DEVICE_USAGE[1]! });
  const store = await ctx.store();
  const user = positionals[0] === undefined ? undefined : await findUser({ config: ctx.config, store }, positionals[0], "user");
  const rows = await listDevices(store, { ...(user ? { user } : {}), includeRemoved: values.all === true });
  const header = ["ID", "USER", "NAME", "PUSH", "CREATED", "LAST SEEN", ...(values.all ? ["REMOVED"] : [])];
  printList(ctx, values.json, rows, "no devices", header, (r) => [r.id, r.user ?? "-", r.name, r.push ?? "-", r.createdAt, r.lastSeenAt ?? "-", ...(values.all ? [r.removedAt ?? "-"] : [])]);
}

async function remove(ctx: CLIContext, args: string[]): Promise<void> {
  const { positionals } = parseCommand(args, {}, { min: 1, max: 1, usage: DEVICE_USAGE[2]! });
  const id = positionals[0]!;
  if (!DEVICE_ID.test(id)) throw usageError("ID must be a device ID as `device list` shows it (22 characters)");
  const removed = await deleteDevice(await adminContext(ctx), id);
  ctx.out(`removed device ${removed.device.id} of ${removed.user}\n`);
  if (removed.lastDevice) ctx.err(`portcullis: warning: ${removed.user} has no approver device left; app approvals fall back to the next step of their type\n`);
}
