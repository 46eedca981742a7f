// Directory-linked ("hybrid") users and per-client directory lists in the SQLite store (migration 3).

import { beforeEach, describe, expect, test } from "bun:test";
import { openDatabase } from "../../../../src/runtime/sqlite.ts";
import type { SqliteStore } from "../../../../src/store/sqlite/store.ts";
import { newClient, newToken, newUser, storesPerTest, storeError } from "../helpers.ts";

let store: SqliteStore;
const NOW = 1_700_000_000_000;
const GUID = "0f8fad5b-d9cb-469f-a165-70867728950e";

const stores = storesPerTest({ now: () => NOW });
beforeEach(async () => {
  store = await stores.open();
});

describe("clients.directories", () => {
  test.each([
    ["unset (every profile, then local)", null],
    ["an ordered list", ["corp", "local"]],
    ["local only", ["local"]],
    ["an empty list", []],
  ] as const)("%s round-trips through add, findByName and list", async (_label, directories) => {
    const added = await store.clients.add(newClient("vpn", { directories: directories === null ? null : [...directories] }));
    expect(added.directories).toEqual(directories === null ? null : [...directories]);
    expect((await store.clients.findByName("vpn"))?.directories).toEqual(directories === null ? null : [...directories]);
    expect((await store.clients.list())[0]?.directories).toEqual(directories === null ? null : [...directories]);
  });

  test("a stored value that is not a JSON array of names is corrupt, not guessed", async () => {
    await store.clients.add(newClient("vpn", { directories: ["corp"] }));
    const db = openDatabase(`${stores.dir}/portcullis.db`);
    db.prepare("UPDATE radius_clients SET directories = ? WHERE name = 'vpn'").run('{"corp":1}');
    db.close();
    expect((await storeError(store.clients.findByName("vpn"))).code).toBe("corrupt");
  });
});

describe("directory-linked users", () => {
  test("add with type null, find by name and by (directory, externalId), list", async () => {
    const added = await store.users.add(newUser("alice", { type: null, directory: "corp", externalId: GUID, directoryPhone: "070-123 45 67" }));
    expect(added).toEqual({ ...newUser("alice", { type: null, directory: "corp", externalId: GUID, directoryPhone: "070-123 45 67" }), id: added.id, createdAt: NOW });
    expect(await store.users.findByName("alice")).toEqual(added);
    expect(await store.users.findByExternal("corp", GUID)).toEqual(added);
    expect(await store.users.findByExternal("lab", GUID)).toBeUndefined();
    expect(await store.users.findByExternal("corp", GUID.toUpperCase())).toBeUndefined();
    expect(await store.users.list()).toEqual([added]);
  });

  test("a record not linked yet (externalId null) is not found by any external ID", async () => {
    await store.users.add(newUser("bob", { type: null, directory: "corp" }));
    await store.users.add(newUser("carol", { type: null, directory: "corp" })); // two unlinked: no conflict
    expect(await store.users.findByExternal("corp", "")).toBeUndefined();
    expect((await store.users.list()).map((u) => [u.username, u.directory, u.externalId])).toEqual([
      ["bob", "corp", null],
      ["carol", "corp", null],
    ]);
  });

  test("the engine links a record at the first login, and a rename keeps tokens through the link", async () => {
    const user = await store.users.add(newUser("bob", { type: null, directory: "corp" }));
    await store.tokens.add(newToken("T-1", { userId: user.id }));
    await store.users.update(user.id, { externalId: GUID, directoryPhone: "+46701234567" });
    await store.users.update(user.id, { username: "robert" }); // renamed in AD; the engine follows
    const linked = await store.users.findByExternal("corp", GUID);
    expect(linked).toMatchObject({ id: user.id, username: "robert", type: null, directory: "corp", externalId: GUID, directoryPhone: "+46701234567" });
    expect((await store.tokens.activeForUser(linked!.id)).map((t) => t.serial)).toEqual(["T-1"]);
  });

  test("update can clear directory fields (null) and leaves them alone when absent", async () => {
    const user = await store.users.add(newUser("dave", { type: "totp", directory: "corp", externalId: GUID, directoryPhone: "x" }));
    await store.users.update(user.id, { phone: "+46700000000" });
    expect(await store.users.findById(user.id)).toMatchObject({ directory: "corp", externalId: GUID, directoryPhone: "x" });
    await store.users.update(user.id, { directory: null, externalId: null, directoryPhone: null });
    expect(await store.users.findById(user.id)).toMatchObject({ directory: null, externalId: null, directoryPhone: null, type: "totp" });
  });

  test("a second record for the same directory user is a conflict naming the link", async () => {
    await store.users.add(newUser("alice", { directory: "corp", externalId: GUID }));
    const err = await storeError(store.users.add(newUser("alicia", { directory: "corp", externalId: GUID })));
    expect(err.code).toBe("conflict");
    expect(err.message).toContain("already linked");
    const other = await store.users.add(newUser("eve", { directory: "corp" }));
    const err2 = await storeError(store.users.update(other.id, { externalId: GUID }));
    expect(err2.code).toBe("conflict");
  });

  test("a purely local record must have a type, and an external ID needs a directory", async () => {
    await expect(store.users.add(newUser("x", { type: null }))).rejects.toThrow(TypeError);
    await expect(store.users.add(newUser("y", { externalId: GUID }))).rejects.toThrow(TypeError);
    const local = await store.users.add(newUser("z"));
    await expect(store.users.update(local.id, { type: null })).rejects.toThrow(TypeError);
    expect(await store.users.count()).toBe(1);
  });

  test("importMany carries the directory fields", async () => {
    await store.users.importMany([
      { user: newUser("a", { type: null, directory: "corp" }), tokens: [newToken("T-a")] },
      { user: newUser("b"), tokens: [] },
    ]);
    expect((await store.users.list()).map((u) => [u.username, u.type, u.directory])).toEqual([
      ["a", null, "corp"],
      ["b", "totp", null],
    ]);
  });
});
