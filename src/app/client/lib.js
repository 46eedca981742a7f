// Portcullis approver app: what the page (app.js) and the service worker (sw.js) share. Plain
// browser JavaScript, served as is from /app/lib.js (no build step); it defines self.PortcullisLib.
//
// - The device record in IndexedDB (database "portcullis", store "device", key "self"): the device
//   ID, its name, the ECDSA P-256 private key as a non-extractable CryptoKey (IndexedDB keeps the
//   key object itself; its bytes can never be read by script), the appliance's VAPID key and the
//   push endpoint last sent.
// - Signed requests of the device protocol (docs/app.md "Signed requests"): headers
//   Portcullis-Device, Portcullis-Time and Portcullis-Signature, the signature in IEEE P1363 form
//   over METHOD "\n" PATH-WITH-QUERY "\n" TIME "\n" base64url(SHA-256(BODY)).
"use strict";

(function (scope) {
  // Protocol v2: v1 plus requests of kind "self-service" (docs/app.md).
  const API = "/app/api/v2";
  const DB = "portcullis";
  const STORE = "device";

  function b64url(bytes) {
    const b = new Uint8Array(bytes);
    let s = "";
    for (let i = 0; i < b.length; i++) s += String.fromCharCode(b[i]);
    return btoa(s).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  function fromB64url(text) {
    const s = atob(text.replace(/-/g, "+").replace(/_/g, "/") + "===".slice((text.length + 3) % 4));
    const out = new Uint8Array(s.length);
    for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
    return out;
  }

  function openDb() {
    return new Promise((resolve, reject) => {
      const req = indexedDB.open(DB, 1);
      req.onupgradeneeded = () => req.result.createObjectStore(STORE);
      req.onsuccess = () => resolve(req.result);
      req.onerror = () => reject(req.error);
      req.onblocked = () => reject(new Error("the app's storage is blocked by another tab"));
    });
  }

  async function tx(mode, run) {
    const db = await openDb();
    try {
      return await new Promise((resolve, reject) => {
        const t = db.transaction(STORE, mode);
        const req = run(t.objectStore(STORE));
        t.oncomplete = () => resolve(req ? req.result : undefined);
        t.onerror = () => reject(t.error);
        t.onabort = () => reject(t.error || new Error("storage transaction aborted"));
      });
    } finally {
      db.close();
    }
  }

  /** The device record, or null when this browser has not enrolled. */
  async function getDevice() {
    return (await tx("readonly", (s) => s.get("self"))) || null;
  }

  function putDevice(device) {
    return tx("readwrite", (s) => s.put(device, "self"));
  }

  function deleteDevice() {
    return tx("readwrite", (s) => s.delete("self"));
  }

  /**
   * Seconds to add to this device's clock to get the appliance's: learnt from the Date header of its
   * answers (whole seconds, so differences under 2 s are taken as none).
   */
  let clockOffset = 0;

  function learnClock(res) {
    const date = Date.parse(res.headers.get("Date") || "");
    if (!Number.isFinite(date)) return;
    // The header drops the milliseconds: the appliance's time was somewhere in the next second.
    const diff = (date + 500 - Date.now()) / 1000;
    clockOffset = Math.abs(diff) >= 2 ? Math.round(diff) : 0;
  }

  /** The appliance's time in ms, as well as this device knows it. */
  function serverNow() {
    return Date.now() + clockOffset * 1000;
  }

  async function sign(device, method, path, body) {
    const time = String(Math.floor(Date.now() / 1000) + clockOffset);
    const digest = b64url(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(body)));
    const text = method + "\n" + path + "\n" + time + "\n" + digest;
    const sig = await crypto.subtle.sign({ name: "ECDSA", hash: "SHA-256" }, device.privateKey, new TextEncoder().encode(text));
    return { "Portcullis-Device": device.id, "Portcullis-Time": time, "Portcullis-Signature": b64url(sig) };
  }

  /**
   * A signed call of the device protocol: `path` below /app/api/v2, `json` the body (or undefined).
   * Each attempt is signed afresh (a signature is accepted once) with the appliance's time as last
   * learnt; when the appliance says the time is off, the call is made once more with the time its
   * answer carried. Network errors are thrown as fetch throws them.
   */
  async function signedFetch(device, method, path, json, init) {
    const body = json === undefined ? "" : JSON.stringify(json);
    for (let attempt = 0; ; attempt++) {
      const headers = Object.assign({}, (init && init.headers) || {}, await sign(device, method, API + path, body));
      if (json !== undefined) headers["Content-Type"] = "application/json";
      const res = await fetch(API + path, { method, headers, body: json === undefined ? undefined : body, signal: init && init.signal, cache: "no-store", credentials: "omit" });
      learnClock(res);
      if (res.status === 401 && attempt === 0 && (await reasonOf(res.clone())) === "stale_time") continue;
      return res;
    }
  }

  /** The `reason` word of a refusal, or "" when the body has none. */
  async function reasonOf(res) {
    try {
      const j = await res.json();
      return j && typeof j.reason === "string" ? j.reason : "";
    } catch (e) {
      return "";
    }
  }

  scope.PortcullisLib = { API, b64url, fromB64url, getDevice, putDevice, deleteDevice, signedFetch, reasonOf, serverNow };
})(self);
