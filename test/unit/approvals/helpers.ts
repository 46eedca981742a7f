// Test helpers for approvals: a real SQLite store, an ApprovalService and SmsCodes over an in-process
// recording channel (test/unit/magiclink/helpers.ts), a settable clock, a manually driven waiter
// hub, and the audit events and outcomes they report.

import { randomBytes } from "node:crypto";
import type { ApprovalEvent, SmsCodeEvent } from "../../../src/audit/events.ts";
import { ApprovalService } from "../../../src/approvals/service.ts";
import { SmsCodes, type SmsCodeMetric } from "../../../src/approvals/sms-codes.ts";
import { WaiterHub } from "../../../src/approvals/waiters.ts";
import { createDispatcher } from "../../../src/delivery/dispatcher.ts";
import type { SqliteStore } from "../../../src/store/sqlite/store.ts";
import type { ApprovalKind, ApprovalOutcome } from "../../../src/store/types.ts";
import { NO_LIMITS, PUBLIC_URL, recordingChannel, T0 } from "../magiclink/helpers.ts";
import { cleanup, openIn, tempDir } from "../store/helpers.ts";

export { T0 };

export interface ApprovalHarness {
  store: SqliteStore;
  service: ApprovalService;
  codes: SmsCodes;
  hub: WaiterHub;
  sms: ReturnType<typeof recordingChannel>;
  clock: { t: number };
  events: Array<ApprovalEvent | SmsCodeEvent>;
  outcomes: Array<[ApprovalKind, ApprovalOutcome]>;
  codeResults: SmsCodeMetric[];
  secret: Uint8Array;
  close(): Promise<void>;
}

/** A harness on its own store, or on `dir`'s store (a second process on the same database). */
export async function approvalHarness({ dir = tempDir(), publicUrl = PUBLIC_URL, joinAnySource = false } = {}): Promise<ApprovalHarness> {
  const clock = { t: T0 };
  const now = () => clock.t;
  const store = await openIn(dir);
  const sms = recordingChannel();
  const events: Array<ApprovalEvent | SmsCodeEvent> = [];
  const outcomes: Array<[ApprovalKind, ApprovalOutcome]> = [];
  const codeResults: SmsCodeMetric[] = [];
  const dispatcher = createDispatcher({ channels: [sms], region: "SE", allowList: { countries: ["SE"], prefixes: [] }, limits: NO_LIMITS, rateLimits: store.rateLimits, deliveryLog: store.deliveryLog, now });
  const hub = new WaiterHub(store.approvals, { now, schedule: () => () => {} });
  const secret = await store.approvals.serverSecret(() => new Uint8Array(randomBytes(32)));
  const random = (n: number) => new Uint8Array(randomBytes(n));
  const service = new ApprovalService({
    approvals: store.approvals,
    dispatcherFor: () => dispatcher,
    publicUrl,
    smsMaxLength: 300,
    emailSubject: "Sign-in request",
    smsTemplate: "Approve your VPN sign-in: {link}",
    secret,
    now,
    random,
    log: () => {},
    audit: (e) => void events.push(e),
    onOutcome: (kind, outcome) => void outcomes.push([kind, outcome]),
    joinAnySource,
    hub,
  });
  const codes = new SmsCodes({
    codes: store.smsCodes,
    secret,
    now,
    random,
    dispatcherFor: () => dispatcher,
    emailSubject: "Sign-in code",
    template: "{code} is your {client} code",
    region: "SE",
    audit: (e) => void events.push(e),
    onResult: (r) => void codeResults.push(r),
  });
  return {
    store,
    service,
    codes,
    hub,
    sms,
    clock,
    events,
    outcomes,
    codeResults,
    secret,
    async close() {
      hub.closeAll();
      await store.close();
    },
  };
}

export { cleanup, tempDir };
