// The password-reset portal's pages (hono/jsx, server-rendered): forms that work without script,
// on the approval pages' stylesheet plus a few rules of their own. The waiting page is a form with a
// "Check again" button; with script, wait.js polls the status endpoint and reloads once it changes.

import type { Child } from "hono/jsx";
import { APPROVAL_CSS_PATH } from "./approval.tsx";

/** Path of the portal's own rules (served after the approval stylesheet). */
export const RESET_CSS_PATH = "/password-reset/assets/reset.css";
/** Path of the waiting page's progressive enhancement. */
export const RESET_JS_PATH = "/password-reset/assets/wait.js";

/** Additive rules: labels, text fields and the message box; the base is APPROVAL_CSS. */
export const RESET_CSS = `
label { display: block; font-weight: 600; margin: 0 0 0.35rem; }
input[type=text], input[type=password] { display: block; width: 100%; min-height: 3rem; padding: 0.6rem 0.75rem; font: inherit; color: var(--fg); background: var(--bg); border: 2px solid var(--muted); border-radius: 0.5rem; margin: 0 0 1rem; }
input:focus-visible { outline: 3px solid var(--focus); outline-offset: 2px; }
button.primary { background: var(--focus); color: #fff; }
button.secondary { background: transparent; color: var(--fg); border-color: var(--muted); }
.message { border-left: 4px solid var(--no); padding: 0.5rem 0.75rem; margin: 0 0 1rem; }
.spinner { width: 2rem; height: 2rem; border: 4px solid var(--muted); border-top-color: var(--focus); border-radius: 50%; margin: 0 0 1rem; animation: spin 1s linear infinite; }
@media (prefers-reduced-motion: reduce) { .spinner { animation: none; } }
@keyframes spin { to { transform: rotate(360deg); } }
a { color: var(--focus); }
`;

/**
 * The waiting page's script: polls `data-status` every 3 s (at most 200 times, then stops) and
 * reloads the page once the answer is no longer "waiting". No inline script: the CSP forbids it.
 */
export const RESET_JS = `(() => {
  const el = document.getElementById("waiting");
  const url = el && el.getAttribute("data-status");
  if (!url) return;
  let left = 200;
  const tick = async () => {
    if (--left < 0) return;
    try {
      const r = await fetch(url, { credentials: "same-origin", cache: "no-store" });
      const body = await r.json();
      if (body.state !== "waiting") { location.reload(); return; }
    } catch (e) { /* try again */ }
    setTimeout(tick, 3000);
  };
  setTimeout(tick, 3000);
})();
`;

function Layout({ title, script = false, children }: { title: string; script?: boolean; children: Child }) {
  return (
    <html lang="en">
      <head>
        <meta charset="utf-8" />
        <meta name="viewport" content="width=device-width, initial-scale=1" />
        <meta name="robots" content="noindex, nofollow" />
        <meta name="referrer" content="no-referrer" />
        <title>{title}</title>
        <link rel="stylesheet" href={APPROVAL_CSS_PATH} />
        <link rel="stylesheet" href={RESET_CSS_PATH} />
        {script ? <script src={RESET_JS_PATH} defer /> : null}
      </head>
      <body>
        <main>
          <div class="card">{children}</div>
        </main>
      </body>
    </html>
  );
}

/** The one text every failure shows: it never says whether the username exists or what went wrong. */
export const GENERIC_FAILURE = "The password could not be reset. The details may not match, the code may have expired, or the request was not approved.";

export function StartPage({ csrf, role }: { csrf: string; role: string }) {
  return (
    <Layout title="Reset your password">
      <h1 id="title">Reset your password</h1>
      <p>Enter your username. A one-time code then goes to the phone on record, or to your approver app, and {role} is asked to approve the reset.</p>
      <form method="post">
        <input type="hidden" name="csrf" value={csrf} />
        <label for="username">Username</label>
        <input type="text" id="username" name="username" autocomplete="username" autocapitalize="none" spellcheck={false} required maxlength={256} />
        <button type="submit" class="primary" id="start">
          Send code
        </button>
      </form>
    </Layout>
  );
}

export function CodePage({ csrf, wrong = false }: { csrf: string; wrong?: boolean }) {
  return (
    <Layout title="Enter the code">
      <h1 id="title">Enter the code</h1>
      {wrong ? (
        <p class="message" role="alert" id="message">
          That code is not right. Check the message and try again.
        </p>
      ) : null}
      <p>If the username is one of ours, a one-time code is on its way to your phone or approver app. It is valid for a few minutes.</p>
      <form method="post">
        <input type="hidden" name="csrf" value={csrf} />
        <input type="hidden" name="step" value="code" />
        <label for="code">One-time code</label>
        <input type="text" id="code" name="code" autocomplete="one-time-code" inputmode="text" autocapitalize="characters" spellcheck={false} required maxlength={64} />
        <button type="submit" class="primary" id="submit-code">
          Continue
        </button>
      </form>
      <StartAgain csrf={csrf} />
    </Layout>
  );
}

export function WaitingPage({ csrf, role, statusPath }: { csrf: string; role: string; statusPath: string }) {
  return (
    <Layout title="Waiting for approval" script>
      <h1 id="title">Waiting for approval</h1>
      <div class="spinner" aria-hidden="true" />
      <p id="waiting" role="status" data-status={statusPath}>
        We have asked {role} to approve the reset. Keep this page open: it moves on when they answer.
      </p>
      <form method="get">
        <button type="submit" class="secondary" id="check">
          Check again
        </button>
      </form>
      <StartAgain csrf={csrf} />
    </Layout>
  );
}

export function PasswordPage({ csrf, message }: { csrf: string; message?: string }) {
  return (
    <Layout title="Choose a new password">
      <h1 id="title">Choose a new password</h1>
      {message ? (
        <p class="message" role="alert" id="message">
          {message}
        </p>
      ) : null}
      <p>The reset was approved. Type your new password twice.</p>
      <form method="post">
        <input type="hidden" name="csrf" value={csrf} />
        <input type="hidden" name="step" value="password" />
        <label for="password">New password</label>
        <input type="password" id="password" name="password" autocomplete="new-password" required maxlength={256} />
        <label for="again">New password again</label>
        <input type="password" id="again" name="again" autocomplete="new-password" required maxlength={256} />
        <button type="submit" class="primary" id="set-password">
          Set password
        </button>
      </form>
    </Layout>
  );
}

export function DonePage() {
  return (
    <Layout title="Password changed">
      <h1 id="done" class="result-ok" role="status">
        Your password has been changed
      </h1>
      <p>Sign in with the new password. You can close this page.</p>
    </Layout>
  );
}

export function FailedPage({ startPath }: { startPath: string }) {
  return (
    <Layout title="Password not reset">
      <h1 id="failed" class="result-no">
        Password not reset
      </h1>
      <p id="generic">{GENERIC_FAILURE}</p>
      <p>
        <a href={startPath} id="again-link">
          Start again
        </a>
      </p>
    </Layout>
  );
}

/** A form that did not come from this page (missing or wrong CSRF token), or an unknown portal. */
export function NotFoundPage() {
  return (
    <Layout title="Not found">
      <h1 id="not-found">This page does not exist</h1>
      <p>Check the address you were given for resetting your password.</p>
    </Layout>
  );
}

function StartAgain({ csrf }: { csrf: string }) {
  return (
    <form method="post">
      <input type="hidden" name="csrf" value={csrf} />
      <input type="hidden" name="step" value="restart" />
      <button type="submit" class="secondary" id="restart">
        Start again
      </button>
    </form>
  );
}
