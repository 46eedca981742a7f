// Portcullis approver app: the page's script. Plain browser JavaScript, served as is from
// /app/app.js (no build step); lib.js (loaded first) holds the key store and the request signing.
//
// Views (sections of the server-rendered page, src/app/page.tsx): enrolment (from a link
// /app/#enrol=CODE, or a pasted link), the request list, and a removed device.
// Requests arrive over GET /app/api/v2/events, read with fetch (EventSource cannot send the
// signature headers) and parsed here; when the stream is down, the app reconnects with back-off and
// polls GET /app/api/v2/requests meanwhile. The page is built with DOM calls only (Trusted Types
// forbid HTML from strings).
"use strict";

(function () {
  const L = self.PortcullisLib;
  const $ = (id) => document.getElementById(id);
  const VIEWS = ["loading", "enrol", "removed", "main"];
  const CODE = /^[A-Za-z0-9_-]{22}$/;
  /** Longest wait between reconnections of the event stream (and so between polls while it is down). */
  const MAX_BACKOFF_MS = 15000;
  /** The stream is reopened when nothing (not even a comment) arrived for this long. */
  const IDLE_MS = 90000;
  /** How long an answered request stays on screen with its result. */
  const DONE_MS = 8000;

  const state = {
    device: null,
    enrolCode: null,
    removed: false,
    online: navigator.onLine,
    requests: new Map(),
    streamCtrl: null,
    wake: null,
    running: false,
    seq: 0,
  };

  // The only script URL the page hands to the browser: the service worker's.
  let trusted = null;
  if (self.trustedTypes && self.trustedTypes.createPolicy) {
    trusted = self.trustedTypes.createPolicy("portcullis-app", {
      createScriptURL: (u) => {
        if (u !== "/app/sw.js") throw new TypeError("not the app's service worker");
        return u;
      },
    });
  }

  function show(view) {
    for (const v of VIEWS) $("view-" + v).hidden = v !== view;
    document.body.dataset.view = view;
  }

  let sayTimer = 0;
  /** A message in the status line (read out by screen readers); it clears itself after a while. */
  function say(text) {
    $("status").textContent = text || "";
    clearTimeout(sayTimer);
    if (text) sayTimer = setTimeout(() => ($("status").textContent = ""), 10000);
  }

  function el(tag, attrs, children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k === "text") e.textContent = v;
      else if (k === "onclick") e.addEventListener("click", v);
      else e.setAttribute(k, v === true ? "" : String(v));
    }
    for (const c of children || []) if (c) e.append(c);
    return e;
  }

  function setOffline(offline) {
    state.online = !offline;
    $("offline").hidden = !offline;
  }

  function pushSupported() {
    return "serviceWorker" in navigator && "PushManager" in self && "Notification" in self;
  }

  function standalone() {
    return (self.matchMedia && self.matchMedia("(display-mode: standalone)").matches) || navigator.standalone === true;
  }

  function isIos() {
    return /iPhone|iPad|iPod/.test(navigator.userAgent) || (navigator.platform === "MacIntel" && navigator.maxTouchPoints > 1);
  }

  /** "Firefox on Android": a starting point for the device's name. */
  function defaultName() {
    const ua = navigator.userAgent;
    const os = /Android/.test(ua) ? "Android" : /iPhone/.test(ua) ? "iPhone" : /iPad/.test(ua) || isIos() ? "iPad" : /Mac OS X/.test(ua) ? "Mac" : /Windows/.test(ua) ? "Windows" : /CrOS/.test(ua) ? "ChromeOS" : /Linux/.test(ua) ? "Linux" : "";
    const browser = /Edg\//.test(ua) ? "Edge" : /Firefox\//.test(ua) ? "Firefox" : /Chrome\//.test(ua) ? "Chrome" : /Safari\//.test(ua) ? "Safari" : "Browser";
    return os ? browser + " on " + os : browser;
  }

  /** The code of an enrolment link or the code itself; null otherwise. */
  function parseCode(text) {
    const t = (text || "").trim();
    const m = /[#&]enrol=([A-Za-z0-9_-]{22})(?:&|$)/.exec(t);
    if (m) return m[1];
    return CODE.test(t) ? t : null;
  }

  /**
   * The code from the address (#enrol=CODE). The fragment is removed from the address at once (it
   * must not stay in the history, a bookmark or a Home Screen icon); the code is kept for this tab
   * until it is used.
   */
  function takeCodeFromAddress() {
    const code = parseCode(location.hash);
    if (location.hash) history.replaceState(null, "", location.pathname + location.search);
    try {
      if (code) sessionStorage.setItem("enrol", code);
      return code || sessionStorage.getItem("enrol");
    } catch (e) {
      return code;
    }
  }

  function forgetCode() {
    state.enrolCode = null;
    try {
      sessionStorage.removeItem("enrol");
    } catch (e) {
      // Storage refused: nothing kept.
    }
  }

  async function registerWorker() {
    if (!("serviceWorker" in navigator)) return null;
    try {
      return await navigator.serviceWorker.register(trusted ? trusted.createScriptURL("/app/sw.js") : "/app/sw.js", { scope: "/app/" });
    } catch (e) {
      return null;
    }
  }

  function withTimeout(promise, ms, what) {
    return Promise.race([promise, new Promise((_, reject) => setTimeout(() => reject(new Error(what + " took too long")), ms))]);
  }

  // ---- enrolment ---------------------------------------------------------------------------

  function showEnrol() {
    show("enrol");
    const haveCode = state.enrolCode !== null;
    $("code-field").hidden = haveCode;
    $("no-code").hidden = haveCode;
    if (!$("device-name").value) $("device-name").value = state.device ? state.device.name : defaultName();
    // Safari outside the Home Screen: the installed app has storage of its own, so it is enrolled there.
    $("ios-hint").hidden = !(haveCode && isIos() && !standalone());
    if (state.device && !state.removed) say("This browser is already enrolled as “" + state.device.name + "”. Enrolling again gives it a new key; the old entry stays in the device list until an administrator removes it.");
  }

  async function enrol(event) {
    event.preventDefault();
    const code = state.enrolCode || parseCode($("enrol-code").value);
    const name = $("device-name").value.trim();
    if (!code) {
      say("Paste the enrolment link (or the code after “enrol=”).");
      $("code-field").hidden = false;
      $("enrol-code").focus();
      return;
    }
    if (!name) {
      say("Give this device a name.");
      $("device-name").focus();
      return;
    }
    // The permission prompt needs the tap that is being handled now: ask before anything is awaited.
    let permission = pushSupported() ? Notification.permission : "unsupported";
    const asking = pushSupported() && permission === "default" ? Notification.requestPermission() : null;
    const button = $("enrol");
    button.disabled = true;
    say("Enrolling…");
    try {
      const keys = await crypto.subtle.generateKey({ name: "ECDSA", namedCurve: "P-256" }, false, ["sign", "verify"]);
      const jwk = await crypto.subtle.exportKey("jwk", keys.publicKey);
      const res = await fetch(L.API + "/devices", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ enrolment: code, public_key: { kty: jwk.kty, crv: jwk.crv, x: jwk.x, y: jwk.y }, name }),
        cache: "no-store",
        credentials: "omit",
      });
      if (res.status === 401) {
        forgetCode();
        showEnrol();
        say("This enrolment link is no longer valid: it works once, for 10 minutes. Ask for a new one.");
        return;
      }
      if (res.status === 400) {
        say("The appliance refused this device's details. Check the name (one line, at most 64 characters).");
        return;
      }
      if (res.status !== 201) {
        say("Enrolment failed (HTTP " + res.status + "). Try again in a moment.");
        return;
      }
      const made = await res.json();
      const device = { id: made.device, name, privateKey: keys.privateKey, publicJwk: jwk, vapid: made.vapid_public_key, pushEndpoint: null, enrolledAt: Date.now() };
      await L.putDevice(device);
      forgetCode();
      state.device = device;
      state.removed = false;
      enterMain();
      say("This device is enrolled. Sign-in requests for your account will show up here.");
      // The browser's permission prompt may stay unanswered (Firefox keeps it open until the user
      // acts): the device works without notifications, so nothing waits for the answer.
      if (asking) {
        void asking
          .catch(() => "default")
          .then((answer) => (answer === "granted" ? subscribePush(true) : updateNotify()))
          .catch(() => {});
      } else if (permission === "granted") {
        await subscribePush(true);
      }
    } catch (e) {
      setOffline(!navigator.onLine);
      say("Enrolment failed: " + (e && e.name === "TypeError" ? "the appliance could not be reached." : "this browser could not make or keep the key.") + " Try again.");
    } finally {
      button.disabled = false;
    }
  }

  // ---- push ----------------------------------------------------------------------------------

  function sameKey(buffer, b64) {
    if (!buffer || !b64) return false;
    return L.b64url(buffer) === b64;
  }

  /** Subscribes to Web Push with the appliance's key and sends the subscription when it changed. */
  async function subscribePush(tell) {
    const device = state.device;
    if (!device || !pushSupported() || Notification.permission !== "granted" || !device.vapid) return updateNotify();
    try {
      const reg = await withTimeout(navigator.serviceWorker.ready, 10000, "the service worker");
      let sub = await reg.pushManager.getSubscription();
      if (sub && !sameKey(sub.options && sub.options.applicationServerKey, device.vapid)) {
        await sub.unsubscribe();
        sub = null;
      }
      if (!sub) sub = await withTimeout(reg.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: L.fromB64url(device.vapid) }), 20000, "the push service");
      const json = sub.toJSON();
      if (device.pushEndpoint !== json.endpoint) {
        const res = await call("PUT", "/push", { endpoint: json.endpoint, keys: json.keys });
        if (!res) return;
        if (res.status !== 204) {
          $("notify-text").textContent = "The appliance does not accept this browser's push service, so notifications cannot reach this device. Keep this app open to see requests.";
          $("notify").hidden = false;
          $("notify-on").hidden = true;
          return;
        }
        device.pushEndpoint = json.endpoint;
        await L.putDevice(device);
        if (tell) say("This device is enrolled, with notifications.");
      }
      $("notify").hidden = true;
    } catch (e) {
      $("notify-text").textContent = "Notifications could not be set up in this browser (" + (e && e.message ? "the push service did not answer" : "unknown error") + "). Requests show up while this app is open.";
      $("notify").hidden = false;
      $("notify-on").hidden = false;
    }
  }

  /** The notification banner: what the user can do about notifications here. */
  function updateNotify() {
    const note = $("notify-note");
    $("notify").hidden = true;
    note.textContent = "";
    if (!pushSupported()) {
      note.textContent = isIos() && !standalone() ? "For notifications on iPhone and iPad, add Portcullis to the Home Screen (Share, then Add to Home Screen) and enrol it there." : "This browser cannot show notifications: requests show up while this app is open.";
    } else if (Notification.permission === "denied") {
      note.textContent = "Notifications are blocked for this app in the browser's settings: requests show up while this app is open.";
    } else if (Notification.permission === "default") {
      $("notify-text").textContent = "Turn on notifications to hear about sign-in requests while this app is closed.";
      $("notify-on").hidden = false;
      $("notify").hidden = false;
    } else {
      note.textContent = "Notifications are on.";
    }
  }

  async function notifyOn() {
    const permission = await Notification.requestPermission().catch(() => "default");
    if (permission === "granted") await subscribePush(true);
    else updateNotify();
  }

  // ---- signed calls ----------------------------------------------------------------------------

  /** A signed call; null when the network failed or the device was removed (the view then says so). */
  async function call(method, path, json, init) {
    if (!state.device || state.removed) return null;
    let res;
    try {
      res = await L.signedFetch(state.device, method, path, json, init);
    } catch (e) {
      if (!(e && e.name === "AbortError")) setOffline(true);
      return null;
    }
    setOffline(false);
    if (res.status === 403 || res.status === 401) {
      const reason = await L.reasonOf(res.clone());
      if (reason === "removed_device" || reason === "unknown_device") {
        deviceRemoved();
        return null;
      }
    }
    return res;
  }

  function deviceRemoved() {
    // Once: a second refusal (of a call made before the first arrived) must not write the record
    // back after "Forget this device" deleted it.
    if (state.removed || !state.device) return;
    state.removed = true;
    if (state.streamCtrl) state.streamCtrl.abort();
    if (state.device) {
      state.device.removed = true;
      void L.putDevice(state.device).catch(() => undefined);
    }
    for (const entry of state.requests.values()) clearTimeout(entry.doneTimer);
    state.requests.clear();
    $("requests").replaceChildren();
    say("");
    show("removed");
  }

  async function forget() {
    try {
      const reg = "serviceWorker" in navigator ? await navigator.serviceWorker.getRegistration("/app/") : null;
      const sub = reg && reg.pushManager ? await reg.pushManager.getSubscription() : null;
      if (sub) await sub.unsubscribe();
    } catch (e) {
      // Nothing to unsubscribe.
    }
    state.device = null;
    await L.deleteDevice().catch(() => undefined);
    state.removed = false;
    showEnrol();
    say("This device was forgotten. Open a new enrolment link to set it up again.");
  }

  // ---- the request list --------------------------------------------------------------------------

  function when(v) {
    if (typeof v === "number") return v < 1e11 ? v * 1000 : v;
    const t = Date.parse(String(v));
    return Number.isFinite(t) ? t : NaN;
  }

  function clockText(ms) {
    if (!Number.isFinite(ms)) return "";
    return new Date(ms).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" });
  }

  function leftText(ms) {
    const s = Math.max(0, Math.round(ms / 1000));
    return Math.floor(s / 60) + ":" + String(s % 60).padStart(2, "0");
  }

  const KIND = { radius: "Sign-in request", "magic-link": "Web sign-in request", "password-reset": "Password reset request", "self-service": "Self-service sign-in" };

  function text(v, max) {
    const s = typeof v === "string" ? v : v === undefined || v === null ? "" : String(v);
    return s.length > max ? s.slice(0, max - 1) + "…" : s;
  }

  function updateEmpty() {
    let pending = 0;
    for (const e of state.requests.values()) if (!e.done) pending++;
    $("empty").hidden = state.requests.size > 0;
    document.title = pending > 0 ? "(" + pending + ") Portcullis approvals" : "Portcullis approvals";
  }

  /** Adds (or updates) the card of request `r`. */
  function upsert(r) {
    if (!r || typeof r.id !== "string") return;
    const existing = state.requests.get(r.id);
    if (existing) {
      existing.data = r;
      return;
    }
    const n = ++state.seq;
    const expires = when(r.expires);
    if (Number.isFinite(expires) && expires <= L.serverNow()) return;
    const entry = { data: r, expires, done: false, doneTimer: 0, el: null, buttons: [], result: null, left: null };
    const kind = KIND[r.kind] || "Request";
    const service = text(r.service, 64) || "an unnamed service";
    const rows = [
      ["Service", service],
      ["From", text(r.source, 64)],
      ["When", clockText(when(r.created))],
      ["For", text(r.user, 64)],
    ];
    const dl = el("dl", { class: "context" });
    for (const [k, v] of rows) if (v) dl.append(el("dt", { text: k }), el("dd", { text: v, "data-field": k.toLowerCase() }));
    entry.left = el("dd", { "data-field": "expires" });
    if (Number.isFinite(expires)) dl.append(el("dt", { text: "Expires in" }), entry.left);

    const answerButton = (label, cls, decision, pick) => {
      const b = el("button", { type: "button", class: cls, "data-decision": decision, "data-pick": pick, text: label });
      b.addEventListener("click", () => answer(entry, decision, pick));
      entry.buttons.push(b);
      return b;
    };

    const parts = [el("h3", { id: "req-title-" + n, text: kind }), dl];
    const choices = Array.isArray(r.choices) ? r.choices.filter((c) => Number.isInteger(c)).slice(0, 3) : [];
    if (choices.length > 0) {
      const legend = el("legend", { id: "req-pick-" + n, text: "To approve, pick the number shown where you are signing in:" });
      const row = el("div", { class: "choices" });
      for (const c of choices) {
        const b = answerButton(String(c), "pick", "approve", String(c));
        b.setAttribute("aria-label", "Number " + c);
        row.append(b);
      }
      parts.push(el("fieldset", {}, [legend, row]));
    } else {
      parts.push(answerButton("Approve", "approve", "approve"));
    }
    if (typeof r.code === "string" && r.code) {
      // Challenge mode: the code may be typed at the sign-in prompt instead of a tap here.
      // A password-reset portal's code for the user's own reset is typed on the portal's page.
      const label = r.kind === "password-reset" ? "Type this code on the password-reset page:" : "Or type this code where you are signing in:";
      parts.push(el("p", { class: "code-label", text: label, id: "req-code-label-" + n }));
      parts.push(el("p", { class: "code", "data-field": "code", "aria-labelledby": "req-code-label-" + n, text: r.code }));
    }
    parts.push(answerButton("Reject", "reject", "reject"));

    const confirmBox = el("div", { class: "confirm", hidden: true, role: "group", "aria-labelledby": "req-confirm-" + n }, [
      el("p", { id: "req-confirm-" + n, text: "Report this as not you? The sign-in is rejected, your administrator is told, and new requests for your account may be paused for a while." }),
    ]);
    const yes = answerButton("Yes, it wasn't me", "reject", "report");
    const no = el("button", { type: "button", class: "secondary", text: "Cancel" });
    confirmBox.append(yes, no);
    const report = el("button", { type: "button", class: "report", "data-decision": "ask-report", text: "This wasn't me" });
    entry.buttons.push(report, no);
    report.addEventListener("click", () => {
      confirmBox.hidden = false;
      report.hidden = true;
      yes.focus();
    });
    no.addEventListener("click", () => {
      confirmBox.hidden = true;
      report.hidden = false;
      report.focus();
    });
    parts.push(report, confirmBox);
    entry.result = el("p", { class: "result", role: "status" });
    parts.push(entry.result);

    entry.el = el("li", { class: "card request", "data-id": r.id, "data-kind": r.kind, "aria-labelledby": "req-title-" + n }, parts);
    state.requests.set(r.id, entry);
    $("requests").append(entry.el);
    tick();
    updateEmpty();
  }

  /** Removes request `id` (ended elsewhere, expired, or answered some time ago). */
  function drop(id, why) {
    const entry = state.requests.get(id);
    if (!entry) return;
    if (why) {
      // Ended elsewhere (another device, a code typed at the VPN, expiry): say so briefly instead of
      // vanishing. A card already answered here keeps its own result until its timer removes it.
      if (!entry.done) finish(entry, why, false);
      return;
    }
    clearTimeout(entry.doneTimer);
    entry.el.remove();
    state.requests.delete(id);
    updateEmpty();
  }

  function finish(entry, message, ok, answeredHere) {
    entry.done = true;
    for (const b of entry.buttons) b.remove();
    entry.el.querySelectorAll(".choices, fieldset, .confirm, .code, .code-label").forEach((x) => x.remove());
    entry.el.dataset.state = "done";
    entry.result.textContent = message;
    entry.result.className = "result " + (ok ? "result-ok" : "result-no");
    // An answer given here removed the button that had the focus: move it to the card's outcome.
    entry.result.setAttribute("tabindex", "-1");
    if (answeredHere) entry.result.focus();
    clearTimeout(entry.doneTimer);
    entry.doneTimer = setTimeout(() => drop(entry.data.id), DONE_MS);
    updateEmpty();
  }

  const RESULT = {
    approved: "Approved. The sign-in goes ahead.",
    rejected: "Rejected. The sign-in was refused.",
    reported: "Reported as not you. The sign-in was refused and your administrator is told.",
  };

  async function answer(entry, decision, pick) {
    if (entry.done) return;
    for (const b of entry.buttons) b.disabled = true;
    entry.result.textContent = "Sending…";
    const body = { decision };
    if (pick !== undefined) body.pick = Number(pick);
    const res = await call("POST", "/requests/" + encodeURIComponent(entry.data.id), body);
    if (!res) {
      if (state.removed) return;
      for (const b of entry.buttons) b.disabled = false;
      entry.result.textContent = "The appliance could not be reached. Try again.";
      return;
    }
    let status = "";
    try {
      status = res.status === 200 ? (await res.json()).status : "";
    } catch (e) {
      status = "";
    }
    if (res.status === 200 && RESULT[status]) {
      const wrongNumber = pick !== undefined && status === "rejected";
      const message = wrongNumber ? "Rejected: that was not the number shown where you are signing in, so the sign-in was refused." : RESULT[status];
      finish(entry, message, status === "approved", true);
      say(message);
    } else if (res.status === 409) {
      finish(entry, "This request has already ended.", false, true);
    } else if (res.status === 403) {
      finish(entry, "This request is not for this device.", false, true);
    } else if (res.status === 404) {
      finish(entry, "This request no longer exists.", false, true);
    } else {
      for (const b of entry.buttons) b.disabled = false;
      entry.result.textContent = "The appliance did not take the answer (HTTP " + res.status + "). Try again.";
    }
  }

  /** Once a second: the time left on each card; an expired request leaves the list. */
  function tick() {
    const now = L.serverNow();
    for (const entry of state.requests.values()) {
      if (entry.done || !Number.isFinite(entry.expires)) continue;
      const left = entry.expires - now;
      if (left <= 0) finish(entry, "This request has expired.", false);
      else entry.left.textContent = leftText(left);
    }
  }

  /** GET /requests: the full list replaces what is shown (cards being answered stay). */
  async function loadRequests() {
    const res = await call("GET", "/requests");
    if (!res || !res.ok) return false;
    let list = [];
    try {
      const body = await res.json();
      list = Array.isArray(body.requests) ? body.requests : [];
    } catch (e) {
      return false;
    }
    const ids = new Set();
    for (const r of list) {
      if (r && typeof r.id === "string") {
        ids.add(r.id);
        upsert(r);
      }
    }
    for (const [id, entry] of state.requests) if (!entry.done && !ids.has(id)) drop(id, "This request has ended.");
    return true;
  }

  // ---- the event stream ----------------------------------------------------------------------------

  /** Reads server-sent events from `body`, calling onEvent(name, data) for each; `alive` on every chunk. */
  async function readEvents(body, onEvent, alive) {
    const reader = body.pipeThrough(new TextDecoderStream()).getReader();
    let buf = "";
    let name = "";
    let data = [];
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      alive();
      buf += value;
      for (;;) {
        const i = buf.search(/[\r\n]/);
        if (i < 0) break;
        // A CR at the very end may be the first half of CRLF: wait for the next chunk.
        if (buf[i] === "\r" && i === buf.length - 1) break;
        const line = buf.slice(0, i);
        buf = buf.slice(buf[i] === "\r" && buf[i + 1] === "\n" ? i + 2 : i + 1);
        if (line === "") {
          if (data.length > 0) onEvent(name || "message", data.join("\n"));
          name = "";
          data = [];
          continue;
        }
        if (line[0] === ":") continue;
        const c = line.indexOf(":");
        const field = c < 0 ? line : line.slice(0, c);
        let val = c < 0 ? "" : line.slice(c + 1);
        if (val[0] === " ") val = val.slice(1);
        if (field === "event") name = val;
        else if (field === "data") data.push(val);
      }
      // A line longer than any event the appliance sends: not a stream of ours.
      if (buf.length > 65536) throw new Error("event stream line too long");
    }
  }

  function onEvent(name, data) {
    let obj;
    try {
      obj = JSON.parse(data);
    } catch (e) {
      return;
    }
    if (name === "request") upsert(obj);
    else if (name === "gone" && obj && typeof obj.id === "string") drop(obj.id, "This request has ended.");
  }

  function sleep(ms) {
    return new Promise((resolve) => {
      const t = setTimeout(done, ms);
      function done() {
        clearTimeout(t);
        state.wake = null;
        resolve();
      }
      state.wake = done;
    });
  }

  /** Keeps the event stream open while the device is enrolled: reconnects with back-off, polls meanwhile. */
  async function streamLoop() {
    if (state.running) return;
    state.running = true;
    let failures = 0;
    try {
      while (state.device && !state.removed) {
        const ctrl = new AbortController();
        state.streamCtrl = ctrl;
        let idle = 0;
        const alive = () => {
          clearTimeout(idle);
          idle = setTimeout(() => ctrl.abort(), IDLE_MS);
        };
        try {
          alive();
          const res = await call("GET", "/events", undefined, { signal: ctrl.signal, headers: { Accept: "text/event-stream" } });
          if (res && res.ok && /^text\/event-stream/.test(res.headers.get("Content-Type") || "") && res.body) {
            failures = 0;
            document.body.dataset.live = "stream";
            await loadRequests();
            await readEvents(res.body, onEvent, alive);
          } else if (res && res.body) {
            await res.body.cancel().catch(() => undefined);
          }
        } catch (e) {
          // Stream broken (network, idle, abort): reconnect below.
        } finally {
          clearTimeout(idle);
          ctrl.abort();
        }
        if (!state.device || state.removed) break;
        document.body.dataset.live = "poll";
        failures++;
        // While the stream is down the list is polled, so requests still show up.
        await loadRequests();
        const backoff = Math.min(MAX_BACKOFF_MS, 1000 * 2 ** Math.min(failures - 1, 4));
        await sleep(backoff / 2 + Math.random() * (backoff / 2));
      }
    } finally {
      state.running = false;
      delete document.body.dataset.live;
    }
  }

  function enterMain() {
    show("main");
    $("device-label").textContent = state.device.name;
    updateNotify();
    updateEmpty();
    void streamLoop();
  }

  // ---- start ---------------------------------------------------------------------------------------

  async function start() {
    show("loading");
    $("enrol-form").addEventListener("submit", enrol);
    $("notify-on").addEventListener("click", notifyOn);
    $("forget").addEventListener("click", forget);
    $("copy-link").addEventListener("click", async () => {
      try {
        await navigator.clipboard.writeText(location.origin + "/app/#enrol=" + state.enrolCode);
        say("Link copied. Paste it in Portcullis on the Home Screen.");
      } catch (e) {
        say("Copying is not allowed here; the code is: " + state.enrolCode);
      }
    });
    self.addEventListener("online", () => {
      setOffline(false);
      if (state.wake) state.wake();
    });
    self.addEventListener("offline", () => setOffline(true));
    document.addEventListener("visibilitychange", () => {
      if (document.visibilityState === "visible" && state.device && !state.removed) {
        void loadRequests();
        if (state.wake) state.wake();
      }
    });
    setInterval(tick, 1000);
    setOffline(!navigator.onLine);

    void registerWorker();
    if ("serviceWorker" in navigator) {
      navigator.serviceWorker.addEventListener("message", (e) => {
        if (e.data && e.data.type === "refresh" && state.device && !state.removed) void loadRequests();
      });
    }

    state.enrolCode = takeCodeFromAddress();
    try {
      state.device = await L.getDevice();
    } catch (e) {
      state.device = null;
      say("This browser does not let the app keep its key (private browsing?). Enrolment needs storage.");
    }
    if (!self.isSecureContext || !crypto.subtle) {
      show("enrol");
      say("The app needs a secure connection (HTTPS) to make its key.");
      $("enrol").disabled = true;
      return;
    }
    if (state.enrolCode || !state.device) {
      state.removed = !!(state.device && state.device.removed);
      showEnrol();
      return;
    }
    if (state.device.removed) {
      state.removed = true;
      show("removed");
      return;
    }
    enterMain();
    if (pushSupported() && Notification.permission === "granted") void subscribePush(false);
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else void start();
})();
