// The admin operations themselves, without an adapter: results, warnings, the typed error and the
// events they record through the audit port (with the actor as `by`), over a real SQLite store.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import type { AdminAudit, AdminEventBody } from "../../../src/admin/audit.ts";
import type { AdminContext } from "../../../src/admin/context.ts";
import { AdminError } from "../../../src/admin/errors.ts";
import { addApiKey, removeApiKey } from "../../../src/admin/api-keys.ts";
import { enrolToken, importTokens, resyncToken } from "../../../src/admin/tokens.ts";
import { importUsers } from "../../../src/admin/user-import.ts";
import { addUser, findUser, removeUser, unlockUser, updateUser } from "../../../src/admin/users.ts";
import { setLogSink } from "../../../src/audit/log.ts";
import type { SqliteStore } from "../../../src/store/sqlite/store.ts";
import { countingRandom, testConfig } from "../http/helpers.ts";
import { cleanup, openIn, tempDir } from "../store/helpers.ts";

setLogSink(() => {});

const NOW = 1_700_000_000_000;
const HEADER = "username,password,type,phone,email,totp_secret,totp_algorithm,totp_digits,totp_period";
/** 80 bits: accepted (migrated tokens) but below RFC 4226's recommended 128. */
const SHORT_SECRET = "JBSWY3DPEHPK3PXP";
const LONG_SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP";

let dir: string;
let store: SqliteStore;
let ctx: AdminContext;
const recorded: Array<AdminEventBody & { by: string }> = [];

/** An audit port that keeps what it is given, as the adapters would record it. */
function memoryAudit(name: string): AdminAudit {
  return {
    actor: { name, role: "admin" },
    async change(change, describe) {
      const result = await change();
      const event = describe(result);
      if (event) recorded.push({ ...event, by: name });
      return result;
    },
    async note(event) {
      recorded.push({ ...event, by: name });
    },
  };
}

beforeAll(async () => {
  dir = tempDir();
  store = await openIn(dir);
  ctx = { config: testConfig(dir), store, audit: memoryAudit("ops-test"), now: () => NOW, random: countingRandom() };
});
afterAll(async () => {
  await store.close();
  cleanup(dir);
});

async function refusal(p: Promise<unknown>): Promise<AdminError> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(AdminError);
    return e as AdminError;
  }
  throw new Error("expected an AdminError");
}

describe("users", () => {
  test("add, update, unlock, remove: each records its event with the actor", async () => {
    recorded.length = 0;
    const user = await addUser(ctx, { username: "Ann@corp", password: "pw-ann-123", phone: "+46701234567" });
    expect(user).toMatchObject({ username: "ann", type: "totp", phone: "+46701234567" });
    await updateUser(ctx, "ann", { disabled: true, email: "ann@example.com" });
    expect(await unlockUser(ctx, "ANN")).toEqual({ username: "ann", cleared: false });
    expect(await removeUser(ctx, "ann")).toBe("ann");
    expect(recorded).toEqual([
      { type: "admin.user_added", user: "ann", by: "ops-test" },
      { type: "admin.user_updated", user: "ann", fields: ["email", "disabled"], by: "ops-test" },
      { type: "admin.user_unlocked", user: "ann", cleared: false, by: "ops-test" },
      { type: "admin.user_removed", user: "ann", by: "ops-test" },
    ]);
  });

  test.each<[string, () => Promise<unknown>, string, string | undefined]>([
    ["a bad phone", () => addUser(ctx, { username: "p", phone: "0701" }), "invalid", "phone"],
    ["a bad type", () => addUser(ctx, { username: "p", type: "root" }), "invalid", "type"],
    ["an unknown directory", () => addUser(ctx, { username: "p", directory: "corp" }), "invalid", "directory"],
    ["an empty name", () => addUser(ctx, { username: "@corp" }), "invalid", "username"],
    ["an unknown user", () => findUser(ctx, "nobody"), "not_found", "username"],
    ["a past expiry", () => updateUser(ctx, "bob", { expires: "2001-01-01" }), "invalid", "expires"],
  ])("%s → AdminError", async (_what, run, code, field) => {
    if (!(await store.users.findByName("bob"))) await addUser(ctx, { username: "bob" });
    recorded.length = 0;
    const e = await refusal(run());
    expect([e.code, e.field]).toEqual([code, field]);
    expect(recorded).toEqual([]);
  });

  test("a name taken is a conflict that names the user for the CLI and exposes a fixed text only", async () => {
    const e = await refusal(addUser(ctx, { username: "bob" }));
    expect([e.code, e.message, e.expose]).toEqual(["conflict", "user bob already exists", "a user with this name exists"]);
  });
});

describe("user import", () => {
  test("warns about TOTP secrets shorter than 128 bits, whoever imports (the CLI printed this, the API did not)", async () => {
    const done = await importUsers(ctx, `${HEADER}\nimp1,,totp,,,${SHORT_SECRET},,,\nimp2,,totp,,,${LONG_SECRET},,,\nimp3,,password,,,,,,\n`);
    expect(done).toEqual({ imported: 3, withToken: 2, hashed: 0, warnings: ["1 TOTP secrets are shorter than 128 bits (RFC 4226 §4 R6); re-enrol those users with new tokens when you can"] });
    expect((await importUsers(ctx, `${HEADER}\nimp4,,totp,,,${LONG_SECRET},,,\n`)).warnings).toEqual([]);
  });

  test("algorithm names are the documented ones only: SHA1, SHA256, SHA512", async () => {
    const e = await refusal(importUsers(ctx, `${HEADER}\nalg1,,totp,,,${LONG_SECRET},sha-256,,\n`));
    expect([e.code, e.field, e.expose]).toEqual(["invalid", "csv.line.2", "totp_algorithm must be SHA1, SHA256 or SHA512"]);
    expect((await importUsers(ctx, `${HEADER}\nalg2,,totp,,,${LONG_SECRET},SHA512,,\n`)).imported).toBe(1);
  });

  test("an existing user is a conflict naming the line; nothing is imported", async () => {
    const e = await refusal(importUsers(ctx, `${HEADER}\nnew1,,password,,,,,,\nbob,,password,,,,,,\n`));
    expect([e.code, e.field]).toEqual(["conflict", "csv.line.3"]);
    expect(await store.users.findByName("new1")).toBeUndefined();
  });
});

describe("tokens", () => {
  test("enrol: the documented algorithm names only (the CLI took sha256 and SHA-256 too); a short secret is a warning", async () => {
    if (!(await store.users.findByName("bob"))) await addUser(ctx, { username: "bob" });
    for (const algorithm of ["sha256", "SHA-256", "sha1", "MD5"]) {
      const e = await refusal(enrolToken(ctx, { user: "bob", algorithm }));
      expect([e.code, e.field, e.expose]).toEqual(["invalid", "algorithm", "must be SHA1, SHA256 or SHA512"]);
    }
    recorded.length = 0;
    const done = await enrolToken(ctx, { user: "bob", algorithm: "SHA256", secret: SHORT_SECRET });
    expect(done.token.algorithm).toBe("SHA256");
    expect(done.warnings).toEqual(["the secret is shorter than 128 bits (RFC 4226 §4 R6); prefer a generated one"]);
    expect(done.uri).toStartWith("otpauth://totp/");
    expect(recorded).toEqual([{ type: "admin.token_enrolled", user: "bob", token: done.token.id, kind: "totp", by: "ops-test" }]);
  });

  test("resync: a code of the wrong length names its field; codes that are not consecutive are a conflict", async () => {
    const { token } = await enrolToken(ctx, { user: "bob", digits: 8 });
    const short = await refusal(resyncToken(ctx, token.id, "12345678", "123"));
    expect([short.code, short.field, short.expose]).toEqual(["invalid", "code2", "a 8-digit code"]);
    const wrong = await refusal(resyncToken(ctx, token.id, "12345678", "23456789"));
    expect([wrong.code, wrong.expose]).toEqual(["conflict", "the two codes are not consecutive codes of this token; nothing changed"]);
  });

  test("import with progress: written in chunks, reporting N of M; a serial that exists part-way leaves nothing imported", async () => {
    if (!(await store.users.findByName("bob"))) await addUser(ctx, { username: "bob" });
    const csv = (serials: string[]) => `serial,secret_base32,user\n${serials.map((s, i) => `${s},${i % 2 ? SHORT_SECRET : LONG_SECRET},${i === 0 ? "bob" : i === 1 ? "ghost" : ""}`).join("\n")}\n`;
    const serials = Array.from({ length: 7 }, (_, i) => `CHUNK${i}`);
    const seen: string[] = [];
    recorded.length = 0;
    const done = await importTokens(ctx, { format: "csv", content: csv(serials) }, { chunkSize: 3, onProgress: (phase, d, t) => seen.push(`${phase} ${d}/${t}`) });
    expect(seen).toEqual(["reading 0/0", "writing 0/7", "writing 3/7", "writing 6/7", "writing 7/7"]);
    expect(done).toEqual({
      imported: 7,
      assigned: 1,
      unknownOwners: 1,
      warnings: ["1 tokens name a user that does not exist; they were left unassigned", "3 secrets are shorter than 128 bits (RFC 4226 §4 R6); replace those tokens when you can"],
    });
    expect(recorded).toEqual([{ type: "admin.tokens_imported", count: 7, by: "ops-test" }]);

    // CHUNK6 exists: the first two chunks are written, the third fails, and they are removed again.
    recorded.length = 0;
    const again = ["NEW0", "NEW1", "NEW2", "NEW3", "NEW4", "NEW5", "CHUNK6"];
    const e = await refusal(importTokens(ctx, { format: "csv", content: csv(again) }, { chunkSize: 3, onProgress: () => {} }));
    expect(e.code).toBe("conflict");
    for (const s of again.slice(0, 6)) expect(await store.tokens.findBySerial(s)).toBeUndefined();
    expect(recorded).toEqual([]);
  });

  test("an unknown owner is not_found on the field `user`", async () => {
    const e = await refusal(enrolToken(ctx, { user: "nobody" }));
    expect([e.code, e.field, e.message, e.expose]).toEqual(["not_found", "user", "no user named nobody", "no such user"]);
  });
});

describe("API keys", () => {
  test("the actor's role decides: an admin may not make or remove admin and root keys; a root actor (the CLI) may", async () => {
    const asRoot: AdminContext = { ...ctx, audit: { ...memoryAudit("root-actor"), actor: { name: "root-actor", role: "root" } } };
    const e = await refusal(addApiKey(ctx, { name: "strong", role: "root" }));
    expect([e.code, e.expose]).toEqual(["forbidden", "only a root key may manage admin and root keys"]);
    const made = await addApiKey(asRoot, { name: "strong", role: "admin" });
    expect(made.key).toStartWith("pcl_");
    expect((await refusal(removeApiKey(ctx, "strong"))).code).toBe("forbidden");
    await removeApiKey(asRoot, "strong");
    expect((await refusal(removeApiKey(asRoot, "strong"))).code).toBe("not_found");
  });
});
