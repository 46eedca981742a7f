// Tokens: the list (per user), enrolment with a QR code shown once, import (PSKC or CSV),
// assign, resync, disable/enable and remove.

import { raw } from "hono/html";
import { assignToken, enrolToken, findToken, importTokens, listTokens, removeToken, resyncToken, setTokenState } from "../../admin/tokens.ts";
import { svgQR } from "../../otp/index.ts";
import type { HttpDeps } from "../types.ts";
import { get, optional, post, seeOther, text, type Form, type UiApp } from "./common.tsx";
import { ImportJobs } from "./import-jobs.ts";
import { ActionButton, Csrf, Field, FormAlert, formError, Page, Select, type FormError } from "./layout.tsx";
import { may, randomToken, uiAdminContext, UI_BASE, type UiContext } from "./session.ts";

const NOTICES: Record<string, string> = {
  state: "Token state changed.",
  assigned: "Token assigned.",
  resynced: "Token resynchronised.",
  removed: "Token removed.",
};

export function tokenRoutes(app: UiApp, deps: HttpDeps): void {
  async function listPage(c: UiContext, { error, values = {}, enrolled, form: which }: { error?: FormError; values?: Form; enrolled?: { serial: string; user: string; uri: string; svg: string; warnings: string[] }; form?: string } = {}) {
    const { account, session } = c.get("ui");
    const user = (c.req.query("user") ?? "").trim();
    let tokens: Awaited<ReturnType<typeof listTokens>> = [];
    let listError: FormError | undefined;
    try {
      tokens = await listTokens(deps, user ? { user } : {});
    } catch (err) {
      listError = formError(err);
      if (!listError) throw err;
    }
    const notice = c.req.query("done");
    const errorFor = (name: string) => (which === name ? error : undefined);
    if (error) c.status(400);
    return c.html(
      <Page title="Tokens" account={account} csrf={session.csrf} current="/tokens">
        {notice && NOTICES[notice] ? (
          <p class="notice" role="status" id="notice">
            {NOTICES[notice]}
          </p>
        ) : null}
        {enrolled ? (
          <div class="card" id="enrolled">
            <h2>Token {enrolled.serial} enrolled for {enrolled.user}</h2>
            <p>Scan this code with the authenticator app now. It is shown only once: the page does not keep it.</p>
            <div class="qr" role="img" aria-label={`QR code of token ${enrolled.serial}`} id="qr">
              {raw(enrolled.svg)}
            </div>
            <p>
              Or type the key: <code id="otpauth-uri">{enrolled.uri}</code>
            </p>
            {enrolled.warnings.map((w) => (
              <p class="alert">{w}</p>
            ))}
          </div>
        ) : null}
        <div class="card">
          <form method="get" action={`${UI_BASE}/tokens`} role="search">
            <Field name="user" label="Tokens of user (empty: all)" type="search" value={user} error={listError ? { field: "user", message: listError.message } : undefined} />
            <button type="submit" class="secondary">
              Show
            </button>
          </form>
          <div class="table-wrap" tabindex={0}>
            <table id="tokens">
              <thead>
                <tr>
                  <th scope="col">ID</th>
                  <th scope="col">Serial</th>
                  <th scope="col">Kind</th>
                  <th scope="col">State</th>
                  <th scope="col">User</th>
                  {may(c, "admin") ? <th scope="col">Actions</th> : null}
                </tr>
              </thead>
              <tbody>
                {tokens.slice(0, 500).map((t) => (
                  <tr>
                    <td>{String(t.id)}</td>
                    <td>{t.serial}</td>
                    <td>
                      {t.kind} {String(t.digits)} {t.algorithm}
                    </td>
                    <td>{t.state}</td>
                    <td>{t.user ?? "-"}</td>
                    {may(c, "admin") ? (
                      <td>
                        <ActionButton action={`${UI_BASE}/tokens/${t.id}/state`} csrf={session.csrf} text={t.state === "active" ? "Disable" : "Enable"} fields={{ state: t.state === "active" ? "disabled" : "active" }} />
                        <ActionButton action={`${UI_BASE}/tokens/${t.id}/remove`} csrf={session.csrf} text="Remove" kind="danger" />
                      </td>
                    ) : null}
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        </div>
        {may(c, "admin") ? (
          <>
            <div class="card">
              <h2 id="enrol">Enrol a token</h2>
              <form method="post" action={`${UI_BASE}/tokens`} aria-labelledby="enrol">
                <Csrf token={session.csrf} />
                <FormAlert error={errorFor("enrol")} />
                <div class="row">
                  <Field name="user" label="User" value={text(values, "user") || user} error={errorFor("enrol")} required />
                  <Select name="kind" label="Kind" options={[["totp", "TOTP (authenticator app)"], ["hotp", "HOTP (counter)"]]} value={text(values, "kind")} error={errorFor("enrol")} />
                </div>
                <div class="row">
                  <Select name="digits" label="Digits" options={[["", "default"], ["6", "6"], ["8", "8"]]} value={text(values, "digits")} error={errorFor("enrol")} />
                  <Select name="algorithm" label="Algorithm" options={[["", "default"], ["SHA1", "SHA1"], ["SHA256", "SHA256"], ["SHA512", "SHA512"]]} value={text(values, "algorithm")} error={errorFor("enrol")} />
                </div>
                <button type="submit" class="primary" id="enrol-submit">
                  Enrol and show the QR code
                </button>
              </form>
            </div>
            <div class="card">
              <h2 id="manage">Assign or resynchronise</h2>
              <form method="post" action={`${UI_BASE}/tokens/assign`} aria-labelledby="manage">
                <Csrf token={session.csrf} />
                <FormAlert error={errorFor("assign")} />
                <div class="row">
                  <Field name="id" label="Token ID" inputmode="numeric" value={text(values, "id")} error={errorFor("assign")} required />
                  <Field name="user" label="User (empty: unassign)" value={which === "assign" ? text(values, "user") : ""} error={errorFor("assign")} />
                </div>
                <button type="submit" class="secondary" id="assign-submit">
                  Assign
                </button>
              </form>
              <form method="post" action={`${UI_BASE}/tokens/resync`} aria-label="Resynchronise">
                <Csrf token={session.csrf} />
                <FormAlert error={errorFor("resync")} />
                <div class="row">
                  <Field name="id" label="Token ID " inputmode="numeric" value={which === "resync" ? text(values, "id") : ""} error={errorFor("resync")} required />
                  <Field name="code1" label="First code" inputmode="numeric" error={errorFor("resync")} required />
                  <Field name="code2" label="Next code" inputmode="numeric" error={errorFor("resync")} required />
                </div>
                <button type="submit" class="secondary" id="resync-submit">
                  Resynchronise
                </button>
              </form>
            </div>
            <div class="card">
              <h2 id="import">Import tokens</h2>
              <p class="muted">A PSKC or CSV file of up to {String(TOKEN_IMPORT_MAX_BYTES / 1024 / 1024)} MiB, imported all or nothing; a page shows how far the import is. One import at a time per account.</p>
              <form method="post" action={`${UI_BASE}/tokens/import`} enctype="multipart/form-data" aria-labelledby="import">
                <Csrf token={session.csrf} />
                <FormAlert error={errorFor("import")} />
                <div class="row">
                  <Select name="format" label="Format" options={[["pskc", "PSKC (RFC 6030)"], ["csv", "CSV"]]} value={text(values, "format")} error={errorFor("import")} />
                  <div>
                    <label for="f-file">File</label>
                    <input id="f-file" name="file" type="file" required />
                  </div>
                </div>
                <div class="row">
                  <Field name="pskHex" label="PSKC pre-shared key (hex, optional)" error={errorFor("import")} />
                  <Field name="password" label="PSKC password (optional)" type="password" autocomplete="off" error={errorFor("import")} />
                </div>
                <button type="submit" class="secondary" id="import-submit">
                  Import
                </button>
              </form>
            </div>
          </>
        ) : null}
      </Page>,
    );
  }

  app.get("/tokens", (c) => listPage(c));

  post(app, deps, "/tokens", "admin", async (c, form) => {
    try {
      const digits = optional(form, "digits");
      const enrolled = await enrolToken(uiAdminContext(deps, c), {
        user: text(form, "user"),
        kind: text(form, "kind") === "hotp" ? "hotp" : "totp",
        ...(digits ? { digits: Number(digits) } : {}),
        ...(optional(form, "algorithm") ? { algorithm: optional(form, "algorithm")! } : {}),
      });
      return listPage(c, { enrolled: { serial: enrolled.token.serial, user: enrolled.owner.username, uri: enrolled.uri, svg: await svgQR(enrolled.uri), warnings: enrolled.warnings } });
    } catch (err) {
      const error = formError(err);
      if (!error) throw err;
      return listPage(c, { error, values: form, form: "enrol" });
    }
  });

  const tokenId = (raw: string | undefined) => (raw !== undefined && /^\d{1,15}$/.test(raw) ? Number(raw) : -1);

  post(app, deps, "/tokens/:id/state", "admin", async (c, form) => {
    await setTokenState(uiAdminContext(deps, c), tokenId(c.req.param("id")), text(form, "state") === "disabled" ? "disabled" : "active");
    return seeOther(c, `${UI_BASE}/tokens?done=state`);
  });

  post(app, deps, "/tokens/:id/remove", "admin", async (c) => {
    await removeToken(uiAdminContext(deps, c), tokenId(c.req.param("id")));
    return seeOther(c, `${UI_BASE}/tokens?done=removed`);
  });

  post(app, deps, "/tokens/assign", "admin", async (c, form) => {
    try {
      const ctx = uiAdminContext(deps, c);
      const token = await findToken(ctx, tokenId(text(form, "id").trim()));
      await assignToken(ctx, token, optional(form, "user") ?? null);
      return seeOther(c, `${UI_BASE}/tokens?done=assigned`);
    } catch (err) {
      const error = formError(err);
      if (!error) throw err;
      return listPage(c, { error, values: form, form: "assign" });
    }
  });

  post(app, deps, "/tokens/resync", "admin", async (c, form) => {
    try {
      await resyncToken(uiAdminContext(deps, c), tokenId(text(form, "id").trim()), text(form, "code1").trim(), text(form, "code2").trim());
      return seeOther(c, `${UI_BASE}/tokens?done=resynced`);
    } catch (err) {
      const error = formError(err);
      if (!error) throw err;
      return listPage(c, { error, values: form, form: "resync" });
    }
  });

  const jobs = new ImportJobs(deps.now);
  const jobPath = (id: string) => `${UI_BASE}/tokens/import/${id}`;

  post(app, deps, "/tokens/import", "admin", async (c, form) => {
    const { account } = c.get("ui");
    const file = form.file;
    const psk = optional(form, "pskHex");
    const refuse = (field: string, message: string) => listPage(c, { error: { field, message }, values: { format: text(form, "format") }, form: "import" });
    if (!(file instanceof File) || file.size === 0) return refuse("", "Choose a file to import.");
    if (file.size > TOKEN_IMPORT_MAX_BYTES) return refuse("", `The file is larger than ${TOKEN_IMPORT_MAX_BYTES / 1024 / 1024} MiB; split it.`);
    if (psk !== undefined && !/^([0-9a-fA-F]{2})+$/.test(psk)) return refuse("pskHex", "Pre-shared key: must be hexadecimal");
    const running = jobs.running(account.name);
    if (running) return refuse("", "An import of yours is still running; wait for it to end (its page shows how far it is).");
    const content = await file.text();
    const ctx = uiAdminContext(deps, c);
    const password = text(form, "password");
    const input = {
      format: text(form, "format") === "csv" ? ("csv" as const) : ("pskc" as const),
      content,
      ...(psk ? { preSharedKey: new Uint8Array(Buffer.from(psk, "hex")) } : {}),
      ...(password !== "" ? { password } : {}),
    };
    const requestId = c.get("requestId");
    const job = jobs.start(
      randomToken(deps),
      account.name,
      (onProgress) => importTokens(ctx, input, { onProgress }),
      (err) => formError(err)?.message,
      (err) => deps.log("error", "http.error", { requestId, path: "/ui/tokens/import", error: err instanceof Error ? err.name : "unknown" }),
    );
    if (!job) return refuse("", "Too many imports are being kept on this appliance; try again in a few minutes.");
    return seeOther(c, jobPath(job.id));
  });

  // The progress page: without script it reloads itself (meta refresh inside noscript); with
  // script, import-progress.js polls the status and reloads the page once the job has ended.
  get(app, deps, "/tokens/import/:id", "admin", (c) => {
    const { account, session } = c.get("ui");
    const job = jobs.get(c.req.param("id") ?? "", account.name);
    if (!job) {
      c.status(404);
      return c.html(
        <Page title="Token import" account={account} csrf={session.csrf} current="/tokens">
          <div class="card">
            <p id="import-gone">This import is not known here: it ended more than 15 minutes ago, was started by another account, or on another appliance.</p>
            <a href={`${UI_BASE}/tokens#import`}>Import tokens</a>
          </div>
        </Page>,
      );
    }
    const running = job.state === "running";
    const head = running ? (
      <>
        <noscript>
          <meta http-equiv="refresh" content="2" />
        </noscript>
        <script src={`${UI_BASE}/assets/import-progress.js`} defer></script>
      </>
    ) : undefined;
    const r = job.result;
    return c.html(
      <Page title="Token import" account={account} csrf={session.csrf} current="/tokens" head={head}>
        <div class="card">
          {running ? (
            <div id="import-progress" data-status={`${jobPath(job.id)}/status`}>
              <h2 id="import-progress-label">{job.phase === "reading" ? "Reading the file" : "Importing tokens"}</h2>
              <progress id="import-bar" aria-labelledby="import-progress-label" max={job.total > 0 ? job.total : undefined} value={job.total > 0 ? job.done : undefined}></progress>
              <p role="status" id="import-count">
                {job.phase === "reading" ? "Reading and checking the file…" : `${job.done} of ${job.total} imported`}
              </p>
              <p class="muted">This page follows the import; it can be left and opened again from its address for 15 minutes after it ends.</p>
            </div>
          ) : job.state === "done" && r ? (
            <>
              <p class="notice" role="status" id="imported">
                Imported {String(r.imported)} tokens; {String(r.assigned)} assigned to existing users{r.unknownOwners > 0 ? `, ${r.unknownOwners} named users that do not exist (left unassigned)` : ""}.
              </p>
              {r.warnings.length > 0 ? (
                <ul id="import-warnings">
                  {r.warnings.map((w) => (
                    <li class="alert">{w}</li>
                  ))}
                </ul>
              ) : null}
              <a href={`${UI_BASE}/tokens`}>Back to the tokens</a>
            </>
          ) : (
            <>
              <p class="alert" role="alert" id="import-failed">
                {job.error}
              </p>
              <a href={`${UI_BASE}/tokens#import`}>Back to the import form</a>
            </>
          )}
        </div>
      </Page>,
    );
  });

  get(app, deps, "/tokens/import/:id/status", "admin", (c) => {
    const job = jobs.get(c.req.param("id") ?? "", c.get("ui").account.name);
    if (!job) return c.json({ state: "gone" }, 404);
    return c.json({ state: job.state, phase: job.phase, done: job.done, total: job.total });
  });

  app.get("/assets/import-progress.js", (c) => c.body(IMPORT_PROGRESS_JS, 200, { "Content-Type": "text/javascript; charset=utf-8", "Cache-Control": "private, max-age=3600" }));
}

/** The largest file the import form takes: below the admin listener's body cap (BODY_LIMITS.adminImport), which also holds the form's other fields. */
export const TOKEN_IMPORT_MAX_BYTES = 7 * 1024 * 1024;

/**
 * The progress page's script (served from 'self', as the CSP asks): polls the job's status every
 * second, shows "N of M imported", and reloads the page when the job has ended. Bounded: it stops
 * after an hour.
 */
const IMPORT_PROGRESS_JS = `"use strict";
(function () {
  var box = document.getElementById("import-progress");
  if (!box) return;
  var url = box.getAttribute("data-status");
  var bar = document.getElementById("import-bar");
  var count = document.getElementById("import-count");
  var polls = 0;
  function poll() {
    if (++polls > 3600) return;
    fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (r) { return r.json(); })
      .then(function (s) {
        if (s.state !== "running") { window.location.reload(); return; }
        if (s.phase === "writing" && s.total > 0) {
          bar.max = s.total;
          bar.value = s.done;
          count.textContent = s.done + " of " + s.total + " imported";
        }
        setTimeout(poll, 1000);
      })
      .catch(function () { setTimeout(poll, 3000); });
  }
  setTimeout(poll, 500);
})();
`;
