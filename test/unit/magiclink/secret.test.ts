// The Magic Link server secret lives sealed in the store: an approval page rendered by one service
// (process, node, or the process before a restart) is answerable through another on the same store.

import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { randomBytes } from "node:crypto";
import { MagicLinkService } from "../../../src/magiclink/service.ts";
import { generateLinkToken, generateSessionId, hashLinkToken } from "../../../src/magiclink/tokens.ts";
import type { SqliteStore } from "../../../src/store/sqlite/store.ts";
import type { Approval } from "../../../src/store/types.ts";
import { cleanup, openIn, tempDir } from "../store/helpers.ts";

const T0 = 1_700_000_000_000;
const rnd = (n: number) => new Uint8Array(randomBytes(n));
let dir: string;
let stores: SqliteStore[];

beforeEach(() => {
  dir = tempDir();
  stores = [];
});
afterEach(async () => {
  for (const s of stores) await s.close();
  cleanup(dir);
});

async function open(): Promise<SqliteStore> {
  const s = await openIn(dir);
  stores.push(s);
  return s;
}

/** A service over `store` as serve.ts builds it: the secret comes from the store. */
async function service(store: SqliteStore, secret?: Uint8Array): Promise<MagicLinkService> {
  return new MagicLinkService({
    store,
    rateLimits: store.rateLimits,
    dispatcherFor: () => {
      throw new Error("no delivery in this test");
    },
    publicUrl: "https://mfa.example.com",
    region: "SE",
    smsMaxLength: 300,
    emailSubject: "Sign-in request",
    secret: secret ?? (await store.approvals.serverSecret(() => rnd(32))),
    now: () => T0,
    random: rnd,
    log: () => {},
    hub: undefined,
  });
}

/** A pending session; returns its link token. */
async function pending(store: SqliteStore, numberMatch: number | null = null): Promise<string> {
  const token = generateLinkToken(rnd);
  const s: Approval = { id: generateSessionId(rnd), kind: "magic-link", user: null, client: "default", source: null, msisdn: "+46701234567", apiKeyId: 1, state: "pending", channel: "sms-link", linkHash: hashLinkToken(token), texts: "{}", numberMatch, createdAt: T0, expiresAt: T0 + 90_000, answeredAt: null };
  await store.approvals.create(s);
  return token;
}

describe("a page rendered by one service is answered through another", () => {
  test.each([
    ["a second process on the same store", false],
    ["the same data directory after a restart", true],
  ] as const)("%s", async (_name, restart) => {
    const first = await open();
    const a = await service(first);
    const token = await pending(first, 42);
    const view = await a.view(token);
    if (view.kind !== "pending") throw new Error(`expected a pending page, got ${view.kind}`);
    if (restart) await stores.shift()!.close();
    const b = await service(await open());
    // The same decoys (a reload on another node must not show another layout) and the same CSRF token.
    const again = await b.view(token);
    expect(again.kind === "pending" && again.csrf).toBe(view.csrf);
    expect(again.kind === "pending" && again.choices).toEqual(view.choices);
    const result = await b.answer(token, { csrf: view.csrf, action: "approve", pick: "42" });
    expect(result).toMatchObject({ kind: "done", status: "accepted", wrongNumber: false });
  });

  test("a service with another secret (the old per-process one) refuses the page's token", async () => {
    const store = await open();
    const a = await service(store);
    const token = await pending(store);
    const view = await a.view(token);
    if (view.kind !== "pending") throw new Error("expected a pending page");
    const other = await service(store, rnd(32));
    expect(await other.answer(token, { csrf: view.csrf, action: "approve" })).toEqual({ kind: "bad_csrf" });
    expect((await store.approvals.findByLink(hashLinkToken(token)))!.state).toBe("pending");
  });
});
