// Password-reset sessions (migration password_reset_sessions): created, read only while live, moved
// on only from the stage a caller saw (one of two racing calls wins), wrong codes counted, purged;
// on SQLite and on PostgreSQL.

import { describe, expect, test } from "bun:test";
import type { SqliteStore } from "../../../../src/store/sqlite/store.ts";
import type { PasswordResetSession } from "../../../../src/store/types.ts";
import { BACKENDS, storesPerTest, runOn } from "../helpers.ts";

for (const backend of BACKENDS) {
  describe(backend, () => {
    runOn(backend);

    const stores = storesPerTest();
    const fresh = () => stores.open();

    function session(id: string, patch: Partial<PasswordResetSession> = {}): PasswordResetSession {
      return { id, portal: "default", username: "alice", known: true, stage: "code", codeApproval: null, codeFailures: 0, approvals: [], approvedBy: null, source: "127.0.0.1", createdAt: 100, updatedAt: 100, expiresAt: 10_000, ...patch };
    }

    describe("password reset sessions", () => {
      test("create and get while live only", async () => {
        const s = await fresh();
        await s.passwordResets.create(session("a"));
        expect(await s.passwordResets.get("a", 9_999)).toEqual(session("a"));
        expect(await s.passwordResets.get("a", 10_000)).toBeUndefined();
        expect(await s.passwordResets.get("b", 0)).toBeUndefined();
      });

      test("advance moves on only from the stage given, and keeps fields not patched", async () => {
        const s = await fresh();
        await s.passwordResets.create(session("a", { codeApproval: "ap1" }));
        expect(await s.passwordResets.advance("a", "code", { stage: "approval", approvals: ["x", "y"] }, 200)).toBe(true);
        expect(await s.passwordResets.advance("a", "code", { stage: "failed" }, 201)).toBe(false);
        const got = await s.passwordResets.get("a", 300);
        expect(got).toMatchObject({ stage: "approval", approvals: ["x", "y"], codeApproval: "ap1", updatedAt: 200 });
        expect(await s.passwordResets.advance("a", "approval", { stage: "password", approvedBy: "helpdesk1" }, 300)).toBe(true);
        expect((await s.passwordResets.get("a", 300))?.approvedBy).toBe("helpdesk1");
        // an expired session does not move
        expect(await s.passwordResets.advance("a", "password", { stage: "done" }, 10_000)).toBe(false);
      });

      test("failCode counts; purge removes expired rows only", async () => {
        const s = await fresh();
        await s.passwordResets.create(session("a"));
        await s.passwordResets.create(session("b", { expiresAt: 500 }));
        expect(await s.passwordResets.failCode("a", 200)).toBe(1);
        expect(await s.passwordResets.failCode("a", 201)).toBe(2);
        expect(await s.passwordResets.failCode("zz", 201)).toBeUndefined();
        expect(await s.passwordResets.purgeExpired(600)).toBe(1);
        expect(await s.passwordResets.get("a", 600)).toBeDefined();
      });
    });
  });
}
