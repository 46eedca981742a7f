import { afterEach, describe, expect, test } from "bun:test";
import * as fs from "node:fs";
import * as path from "node:path";
import { cleanup, newToken, newUser, openIn, tempDir } from "../helpers.ts";

let dir: string;
afterEach(() => cleanup(dir));

const isRoot = typeof process.getuid === "function" && process.getuid() === 0;

describe("several processes on one database file", () => {
  test("each TOTP step and each challenge is won by exactly one process", async () => {
    dir = tempDir();
    const steps = 2000;
    const s = await openIn(dir);
    const u = await s.users.add(newUser("alice"));
    const t = await s.tokens.add(newToken("T1", { userId: u.id }));
    for (let i = 0; i < steps; i++) {
      await s.challenges.put({ id: `c${i}`, clientName: "vpn", userId: u.id, username: "alice", expiresAt: 1, failures: 0, data: "{}" });
    }
    await s.close();

    const worker = path.join(import.meta.dirname, "advance-worker.ts");
    const children = Array.from({ length: 4 }, () =>
      Bun.spawn([process.execPath, worker, dir, String(t.id), String(steps), String(steps)], { stdout: "pipe", stderr: "inherit" }),
    );
    // Wait (on a condition, not a fixed sleep) until every child has opened the store, then start them together.
    while (fs.readdirSync(dir).filter((f) => f.startsWith("ready-")).length < children.length) await Bun.sleep(5);
    fs.writeFileSync(path.join(dir, "go"), "");
    const results = await Promise.all(
      children.map(async (child) => {
        const out = await new Response(child.stdout).text();
        expect(await child.exited).toBe(0);
        return JSON.parse(out) as { totp: number; consumed: number };
      }),
    );
    expect(results.reduce((n, r) => n + r.totp, 0)).toBe(steps);
    expect(results.reduce((n, r) => n + r.consumed, 0)).toBe(steps);
  });
});

describe.skipIf(!isRoot)("root-created files in a service user's data directory", () => {
  test("db, -wal, -shm and key file are handed to the directory's owner", async () => {
    dir = tempDir();
    fs.chownSync(dir, 4242, 4343);
    const s = await openIn(dir);
    await s.users.add(newUser("alice"));
    const files = ["portcullis.db", "portcullis.db-wal", "portcullis.db-shm", "portcullis.key"].map((f) => path.join(dir, f));
    for (const f of files) {
      const st = fs.statSync(f);
      expect([f, st.uid, st.gid]).toEqual([f, 4242, 4343]);
    }
    // Rotation rewrites the key file (atomic rename): it must come back owned by the service user.
    await s.rotateKey();
    expect(fs.statSync(files[3]!).uid).toBe(4242);
    await s.close();
  });
});
