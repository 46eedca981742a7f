// Headless Firefox driven over WebDriver BiDi (W3C), the protocol Firefox itself speaks. Playwright's
// BiDi channel sends commands Firefox ESR does not implement (emulation.setMediaFeaturesOverride), so
// the tests speak the protocol directly: a small client over one WebSocket, enough to open a tab in
// a fresh user context (its own cookies, IndexedDB and service workers), navigate, evaluate script,
// click an element with a real (trusted) pointer action and grant a permission.
//
// Every profile lives in a temp folder removed on close; the remote agent listens on 127.0.0.1 only.

import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export const FIREFOX = "/usr/bin/firefox-esr";

/** Preferences for a browser with no route to the internet: nothing phones home or updates. */
const OFFLINE_PREFS: Record<string, string | number | boolean> = {
  "app.update.disabledForTesting": true,
  "browser.shell.checkDefaultBrowser": false,
  "browser.startup.homepage_override.mstone": "ignore",
  "datareporting.policy.dataSubmissionEnabled": false,
  "toolkit.telemetry.reportingpolicy.firstRun": false,
  "network.captive-portal-service.enabled": false,
  "network.connectivity-service.enabled": false,
  "browser.safebrowsing.update.enabled": false,
  "extensions.update.enabled": false,
  "media.gmp-manager.updateEnabled": false,
};

interface Pending {
  resolve: (v: unknown) => void;
  reject: (e: Error) => void;
}

/** A value as BiDi serialises a script result (only the kinds these tests read). */
type Remote = { type: string; value?: unknown; sharedId?: string };

function deserialise(r: Remote): unknown {
  switch (r.type) {
    case "undefined":
    case "null":
      return null;
    case "string":
    case "boolean":
      return r.value;
    case "number":
      return typeof r.value === "number" ? r.value : Number(r.value);
    case "array":
      return (r.value as Remote[]).map(deserialise);
    case "object":
      return Object.fromEntries((r.value as Array<[string | Remote, Remote]>).map(([k, v]) => [typeof k === "string" ? k : String(deserialise(k)), deserialise(v)]));
    default:
      return r;
  }
}

export class Firefox implements AsyncDisposable {
  private nextId = 0;
  private readonly pending = new Map<number, Pending>();
  private readonly listeners: Array<(method: string, params: Record<string, unknown>) => void> = [];

  private constructor(
    private readonly proc: ReturnType<typeof Bun.spawn>,
    private readonly ws: WebSocket,
    private readonly profile: string,
    readonly version: string,
  ) {}

  /** Starts headless Firefox with a fresh profile and opens a BiDi session. */
  static async launch(prefs: Record<string, string | number | boolean> = {}): Promise<Firefox> {
    const profile = mkdtempSync(join(tmpdir(), "portcullis-firefox-"));
    const all = { ...OFFLINE_PREFS, ...prefs };
    writeFileSync(join(profile, "user.js"), Object.entries(all).map(([k, v]) => `user_pref(${JSON.stringify(k)}, ${JSON.stringify(v)});\n`).join(""));
    const proc = Bun.spawn([FIREFOX, "--headless", "--no-remote", "--profile", profile, "--remote-debugging-port=0", "--remote-allow-hosts=127.0.0.1", "about:blank"], {
      stdout: "ignore",
      stderr: "pipe",
      env: { ...process.env, MOZ_CRASHREPORTER_DISABLE: "1" },
    });
    const reader = (proc.stderr as ReadableStream<Uint8Array>).getReader();
    const decoder = new TextDecoder();
    let text = "";
    let url: string | undefined;
    const deadline = Date.now() + 60_000;
    while (!url && Date.now() < deadline) {
      const { value, done } = await reader.read();
      if (done) break;
      text += decoder.decode(value, { stream: true });
      url = /WebDriver BiDi listening on (ws:\/\/127\.0\.0\.1:\d+)/.exec(text)?.[1];
    }
    // Keep draining stderr so that Firefox never blocks on a full pipe.
    void (async () => {
      while (!(await reader.read().catch(() => ({ done: true }))).done);
    })();
    if (!url) {
      proc.kill();
      rmSync(profile, { recursive: true, force: true });
      throw new Error(`Firefox did not start its remote agent: ${text.split("\n").slice(-5).join(" | ")}`);
    }
    const ws = new WebSocket(`${url}/session`);
    await new Promise<void>((resolve, reject) => {
      ws.addEventListener("open", () => resolve(), { once: true });
      ws.addEventListener("error", () => reject(new Error("the BiDi WebSocket did not open")), { once: true });
    });
    const ff = new Firefox(proc, ws, profile, "");
    ws.addEventListener("message", (e) => ff.onMessage(String(e.data)));
    const session = (await ff.send("session.new", { capabilities: { alwaysMatch: { acceptInsecureCerts: false } } })) as { capabilities: { browserVersion: string } };
    (ff as { version: string }).version = session.capabilities.browserVersion;
    return ff;
  }

  private onMessage(raw: string): void {
    const m = JSON.parse(raw) as { id?: number; type: string; result?: unknown; error?: string; message?: string; method?: string; params?: Record<string, unknown> };
    if (m.type === "event") {
      for (const l of this.listeners) l(m.method!, m.params!);
      return;
    }
    const p = m.id === undefined ? undefined : this.pending.get(m.id);
    if (!p) return;
    this.pending.delete(m.id!);
    if (m.type === "success") p.resolve(m.result);
    else p.reject(new Error(`${m.error}: ${m.message}`));
  }

  /** One BiDi command; rejects with the browser's error. */
  send(method: string, params: Record<string, unknown>): Promise<unknown> {
    const id = ++this.nextId;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.ws.send(JSON.stringify({ id, method, params }));
    });
  }

  /** Subscribes to BiDi events (e.g. log.entryAdded); the listener sees every event. */
  async on(events: string[], listener: (method: string, params: Record<string, unknown>) => void): Promise<void> {
    this.listeners.push(listener);
    await this.send("session.subscribe", { events });
  }

  /** A tab in a user context of its own: storage, service workers and permissions apart from every other tab's. */
  async newTab(): Promise<Tab> {
    const { userContext } = (await this.send("browser.createUserContext", {})) as { userContext: string };
    const { context } = (await this.send("browsingContext.create", { type: "tab", userContext })) as { context: string };
    return new Tab(this, context, userContext);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.send("browser.close", {}).catch(() => {});
    this.ws.close();
    const exited = await Promise.race([this.proc.exited.then(() => true), Bun.sleep(10_000).then(() => false)]);
    if (!exited) this.proc.kill(9);
    await this.proc.exited;
    rmSync(this.profile, { recursive: true, force: true });
  }
}

export class Tab {
  constructor(
    private readonly ff: Firefox,
    readonly context: string,
    readonly userContext: string,
  ) {}

  async goto(url: string): Promise<void> {
    await this.ff.send("browsingContext.navigate", { context: this.context, url, wait: "complete" });
  }

  async reload(): Promise<void> {
    await this.ff.send("browsingContext.reload", { context: this.context, wait: "complete" });
  }

  /** Evaluates an expression in the page (awaiting a promise) and returns its value as JSON data. */
  async eval<T = unknown>(expression: string): Promise<T> {
    const r = (await this.ff.send("script.evaluate", { expression, target: { context: this.context }, awaitPromise: true, resultOwnership: "none" })) as { type: string; result?: Remote; exceptionDetails?: { text: string } };
    if (r.type === "exception") throw new Error(`in the page: ${r.exceptionDetails?.text}`);
    return deserialise(r.result!) as T;
  }

  /** Polls an expression until it is truthy (bounded in tries and time); returns its value. */
  async waitFor<T = unknown>(what: string, expression: string, { timeoutMs = 30_000, everyMs = 100 } = {}): Promise<T> {
    const until = Date.now() + timeoutMs;
    let last: unknown;
    for (let i = 0; i < Math.ceil(timeoutMs / everyMs) + 1 && Date.now() < until; i++) {
      last = await this.eval(expression).catch((e: Error) => e.message);
      if (last) return last as T;
      await Bun.sleep(everyMs);
    }
    throw new Error(`timed out waiting for ${what} (last value: ${JSON.stringify(last)})`);
  }

  /** A real pointer click (a trusted event, with user activation) in the middle of the element. */
  async click(selector: string): Promise<void> {
    const r = (await this.ff.send("script.evaluate", { expression: `document.querySelector(${JSON.stringify(selector)})`, target: { context: this.context }, awaitPromise: false, resultOwnership: "root" })) as { result: Remote };
    if (!r.result.sharedId) throw new Error(`no element ${selector}`);
    await this.ff.send("input.performActions", {
      context: this.context,
      actions: [
        {
          type: "pointer",
          id: "mouse",
          parameters: { pointerType: "mouse" },
          actions: [
            { type: "pointerMove", x: 0, y: 0, origin: { type: "element", element: { sharedId: r.result.sharedId } } },
            { type: "pointerDown", button: 0 },
            { type: "pointerUp", button: 0 },
          ],
        },
      ],
    });
  }

  /** Types into a field: its value set and an input event fired, as the app reads it. */
  async fill(selector: string, value: string): Promise<void> {
    await this.eval(`(() => { const e = document.querySelector(${JSON.stringify(selector)}); e.value = ${JSON.stringify(value)}; e.dispatchEvent(new Event("input", { bubbles: true })); return true; })()`);
  }

  /** Grants (or denies) a permission to an origin in this tab's user context. */
  async setPermission(name: string, origin: string, state: "granted" | "denied" | "prompt"): Promise<void> {
    await this.ff.send("permissions.setPermission", { descriptor: { name }, state, origin, userContext: this.userContext });
  }

  async close(): Promise<void> {
    await this.ff.send("browsingContext.close", { context: this.context }).catch(() => {});
    await this.ff.send("browser.removeUserContext", { userContext: this.userContext }).catch(() => {});
  }
}
