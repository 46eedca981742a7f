// The self-service portal's pages (hono/jsx, server-rendered, no script): sign-in, the link
// landing page, the signed-in overview of one's tokens and devices, TOTP enrolment with its QR code,
// and the approver-app enrolment link, and the page that waits for an approval in the app. Every
// POST form carries the CSRF token. The stylesheet is the approval pages' (APPROVAL_CSS) plus
// SELF_SERVICE_CSS, served as one file; the waiting page's one script is SELF_SERVICE_WAIT_JS.

import type { Child } from "hono/jsx";
import { raw } from "hono/html";
import type { DeviceView } from "../admin/devices.ts";
import type { TokenView } from "../admin/tokens.ts";

/** Path of the stylesheet (the CSP forbids inline styles). */
export const SELF_SERVICE_CSS_PATH = "/self-service/style.css";

/** Path of the waiting page's script (no inline script under the CSP). */
export const SELF_SERVICE_WAIT_JS_PATH = "/self-service/wait.js";

/**
 * The waiting page's progressive enhancement: polls the status path every 2 s (at most 300 times,
 * then stops; the Continue button still works) and, once the approval is no longer pending, submits
 * the page's Continue form, once. No reload loop: the page itself is never reloaded.
 */
export const SELF_SERVICE_WAIT_JS = `(() => {
  const el = document.getElementById("waiting");
  const form = document.getElementById("continue-form");
  const url = el && el.getAttribute("data-status");
  if (!url || !form) return;
  let left = 300;
  const tick = async () => {
    if (--left < 0) return;
    try {
      const r = await fetch(url, { credentials: "same-origin", cache: "no-store" });
      const body = await r.json();
      if (body.state !== "waiting") { form.submit(); return; }
    } catch (e) { /* try again */ }
    setTimeout(tick, 2000);
  };
  setTimeout(tick, 2000);
})();
`;

/** The portal's rules on top of APPROVAL_CSS: form fields, lists of factors, the QR code, notices. */
export const SELF_SERVICE_CSS = `
label { display: block; font-weight: 600; margin: 0.75rem 0 0.25rem; }
input[type=text], input[type=password] { display: block; width: 100%; min-height: 3rem; padding: 0.5rem 0.75rem; font: inherit; color: var(--fg); background: var(--card); border: 1px solid var(--muted); border-radius: 0.5rem; }
input:focus-visible { outline: 3px solid var(--focus); outline-offset: 2px; }
form.inline { margin: 0; }
button.primary { background: #1a56db; color: #fff; margin-top: 1rem; }
button.secondary { background: transparent; color: var(--fg); border-color: var(--muted); margin-top: 0.75rem; }
button.remove { background: transparent; color: var(--no); border-color: var(--no); min-height: 2.75rem; padding: 0.4rem 0.75rem; width: auto; }
ul.factors { list-style: none; margin: 0 0 1rem; padding: 0; }
ul.factors li { display: flex; flex-wrap: wrap; align-items: center; justify-content: space-between; gap: 0.5rem; padding: 0.75rem 0; border-bottom: 1px solid var(--muted); }
ul.factors li:last-child { border-bottom: 0; }
h2 { font-size: 1.1rem; margin: 1.25rem 0 0.5rem; }
.notice { border-left: 4px solid var(--ok); padding: 0.5rem 0.75rem; margin: 0 0 1rem; }
.error { border-left: 4px solid var(--no); padding: 0.5rem 0.75rem; margin: 0 0 1rem; }
.qr { background: #fff; padding: 0.5rem; border-radius: 0.5rem; max-width: 16rem; margin: 0 auto 1rem; }
.qr svg { display: block; width: 100%; height: auto; }
code.secret { display: block; font-size: 1.05rem; letter-spacing: 0.05em; overflow-wrap: anywhere; padding: 0.5rem; background: var(--bg); border-radius: 0.5rem; margin: 0 0 1rem; }
.link-text { overflow-wrap: anywhere; font-size: 0.9rem; }
.hint { font-size: 0.9rem; margin: 0.25rem 0 0; }
.match { font-size: 2.5rem; font-weight: 700; letter-spacing: 0.1em; text-align: center; margin: 0.5rem 0 1rem; }
.spinner { width: 2rem; height: 2rem; border: 4px solid var(--muted); border-top-color: var(--focus); border-radius: 50%; margin: 0 auto 1rem; animation: spin 1s linear infinite; }
@media (prefers-reduced-motion: reduce) { .spinner { animation: none; } }
@keyframes spin { to { transform: rotate(360deg); } }
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
        <link rel="stylesheet" href={SELF_SERVICE_CSS_PATH} />
        {script ? <script src={SELF_SERVICE_WAIT_JS_PATH} defer /> : null}
      </head>
      <body>
        <main>
          <div class="card">{children}</div>
        </main>
      </body>
    </html>
  );
}

function Csrf({ token }: { token: string }) {
  return <input type="hidden" name="csrf" value={token} />;
}

function Message({ notice, error }: { notice?: string | undefined; error?: string | undefined }) {
  return (
    <>
      {notice ? (
        <p class="notice" id="notice" role="status">
          {notice}
        </p>
      ) : null}
      {error ? (
        <p class="error" id="error" role="alert">
          {error}
        </p>
      ) : null}
    </>
  );
}

/**
 * The sign-in form (password and code), or only the hint about links when password sign-in is off.
 * With `appSignIn`, the code may be left empty to approve the sign-in in the approver app instead
 * (and without `passwordSignIn` there is no code field: the app is the only way).
 */
export function SignInPage({ csrf, error, passwordSignIn, appSignIn = false }: { csrf: string; error?: string; passwordSignIn: boolean; appSignIn?: boolean }) {
  return (
    <Layout title="Sign in – self-service">
      <h1>Manage your sign-in methods</h1>
      <Message error={error} />
      {passwordSignIn || appSignIn ? (
        <form method="post" action="/self-service/sign-in">
          <Csrf token={csrf} />
          <label for="username">User name</label>
          <input type="text" id="username" name="username" autocomplete="username" autocapitalize="none" spellcheck={false} required />
          <label for="password">Password</label>
          <input type="password" id="password" name="password" autocomplete="current-password" required />
          {!passwordSignIn ? (
            <p class="muted hint" id="code-hint">
              You approve the sign-in in the approver app on your phone.
            </p>
          ) : null}
          {passwordSignIn ? <label for="code">Code from your authenticator app</label> : null}
          {!passwordSignIn ? null : appSignIn ? (
            <>
              <input type="text" id="code" name="code" inputmode="numeric" autocomplete="one-time-code" pattern="[0-9]{6,8}" aria-describedby="code-hint" />
              <p class="muted hint" id="code-hint">
                Using the approver app? Leave the code empty and approve the sign-in on your phone.
              </p>
            </>
          ) : (
            <input type="text" id="code" name="code" inputmode="numeric" autocomplete="one-time-code" pattern="[0-9]{6,8}" required />
          )}
          <button type="submit" class="primary" id="sign-in">
            Sign in
          </button>
        </form>
      ) : null}
      <p class="muted">No authenticator yet? Ask your administrator for a sign-in link.</p>
    </Layout>
  );
}

/** The page a sign-in link opens: the code is used only when the button is pressed (link previewers fetch pages). */
export function LinkPage({ csrf, code }: { csrf: string; code: string }) {
  return (
    <Layout title="Sign-in link – self-service">
      <h1>Sign in with your link</h1>
      <p>This link signs you in once, so that you can add an authenticator.</p>
      <form method="post" action="/self-service/link">
        <Csrf token={csrf} />
        <input type="hidden" name="code" value={code} />
        <button type="submit" class="primary" id="continue">
          Continue
        </button>
      </form>
    </Layout>
  );
}

/** A refused or stale link or form: one text whatever the reason. */
export function ProblemPage({ title, text }: { title: string; text: string }) {
  return (
    <Layout title={`${title} – self-service`}>
      <h1>{title}</h1>
      <p id="problem">{text}</p>
      <p>
        <a href="/self-service">Back to the sign-in page</a>
      </p>
    </Layout>
  );
}

export interface HomeView {
  user: string;
  csrf: string;
  tokens: TokenView[];
  devices: DeviceView[];
  canEnrolTotp: boolean;
  canEnrolApp: boolean;
  canRemove: boolean;
  notice?: string | undefined;
  error?: string | undefined;
}

const stateText = (s: string) => (s === "active" ? "active" : s === "disabled" ? "disabled by an administrator" : s);

/** The signed-in overview: one's tokens and devices, adding and removing them, signing out. */
export function HomePage(v: HomeView) {
  return (
    <Layout title="Your sign-in methods – self-service">
      <h1>Your sign-in methods</h1>
      <p class="muted">
        Signed in as <strong id="who">{v.user}</strong>
      </p>
      <Message notice={v.notice} error={v.error} />
      <h2 id="tokens-heading">Authenticator apps and tokens</h2>
      {v.tokens.length === 0 ? (
        <p id="no-tokens">None yet.</p>
      ) : (
        <ul class="factors" id="tokens" aria-labelledby="tokens-heading">
          {v.tokens.map((t) => (
            <li data-token={String(t.id)}>
              <span>
                {t.kind.toUpperCase()} {t.serial}
                <br />
                <span class="muted">{stateText(t.state)}</span>
              </span>
              {v.canRemove ? (
                <form method="post" action={`/self-service/tokens/${t.id}/remove`} class="inline">
                  <Csrf token={v.csrf} />
                  <button type="submit" class="remove" aria-label={`Remove token ${t.serial}`}>
                    Remove
                  </button>
                </form>
              ) : null}
            </li>
          ))}
        </ul>
      )}
      <h2 id="devices-heading">Approver app</h2>
      {v.devices.length === 0 ? (
        <p id="no-devices">No device yet.</p>
      ) : (
        <ul class="factors" id="devices" aria-labelledby="devices-heading">
          {v.devices.map((d) => (
            <li data-device={d.id}>
              <span>
                {d.name}
                <br />
                <span class="muted">added {d.createdAt.slice(0, 10)}</span>
              </span>
              {v.canRemove ? (
                <form method="post" action={`/self-service/devices/${d.id}/remove`} class="inline">
                  <Csrf token={v.csrf} />
                  <button type="submit" class="remove" aria-label={`Remove device ${d.name}`}>
                    Remove
                  </button>
                </form>
              ) : null}
            </li>
          ))}
        </ul>
      )}
      {v.canEnrolTotp ? (
        <form method="post" action="/self-service/totp">
          <Csrf token={v.csrf} />
          <button type="submit" class="primary" id="add-totp">
            Add an authenticator app
          </button>
        </form>
      ) : null}
      {v.canEnrolApp ? (
        <form method="post" action="/self-service/app">
          <Csrf token={v.csrf} />
          <button type="submit" class="secondary" id="add-app">
            Add the approver app
          </button>
        </form>
      ) : null}
      <form method="post" action="/self-service/sign-out">
        <Csrf token={v.csrf} />
        <button type="submit" class="secondary" id="sign-out">
          Sign out
        </button>
      </form>
    </Layout>
  );
}

/** "ABCD EFGH …": a base32 secret in groups of four, easier to type. */
function grouped(secret: string): string {
  return secret.replace(/(.{4})/g, "$1 ").trim();
}

/**
 * TOTP enrolment: the QR code of the otpauth URI (an SVG made by qrcode, no script or style in it),
 * the secret in text for typing, and the form that confirms one code.
 */
export function TotpPage({ csrf, svg, secret, issuer, account, digits, period, algorithm, error }: { csrf: string; svg: string; secret: string; issuer: string; account: string; digits: number; period: number; algorithm: string; error?: string }) {
  return (
    <Layout title="Add an authenticator app – self-service">
      <h1>Add an authenticator app</h1>
      <Message error={error} />
      <p>Scan this code with your authenticator app, then type the code it shows.</p>
      <div class="qr" id="qr" role="img" aria-label="QR code for your authenticator app">
        {raw(svg)}
      </div>
      <p class="muted">Cannot scan? Add an account by hand with this secret key ({algorithm}, {String(digits)} digits, every {String(period)} seconds):</p>
      <code class="secret" id="secret">
        {grouped(secret)}
      </code>
      <p class="muted">
        It will be listed as <span id="label">{`${issuer}: ${account}`}</span>. The new token works only once you confirm a code.
      </p>
      <form method="post" action="/self-service/totp/confirm">
        <Csrf token={csrf} />
        <label for="code">Code from the app</label>
        <input type="text" id="code" name="code" inputmode="numeric" autocomplete="one-time-code" pattern="[0-9]{6,8}" required />
        <button type="submit" class="primary" id="confirm">
          Confirm
        </button>
      </form>
      <form method="post" action="/self-service/totp/cancel">
        <Csrf token={csrf} />
        <button type="submit" class="secondary" id="cancel">
          Cancel
        </button>
      </form>
    </Layout>
  );
}

/** The approver-app enrolment link (single use, 10 minutes) as a QR code to scan with the phone, and as a link to open on it. */
export function AppEnrolPage({ csrf, link, svg, expires }: { csrf: string; link: string; svg: string; expires: string }) {
  return (
    <Layout title="Add the approver app – self-service">
      <h1>Add the approver app</h1>
      <p>Scan this code with your phone's camera, or open the link on your phone. It works once, until {expires}.</p>
      <div class="qr" id="qr" role="img" aria-label="QR code of the approver app's enrolment link">
        {raw(svg)}
      </div>
      <p class="link-text">
        <a href={link} id="app-link">
          {link}
        </a>
      </p>
      <form method="get" action="/self-service">
        <button type="submit" class="secondary" id="done">
          Done
        </button>
      </form>
      <form method="post" action="/self-service/sign-out">
        <Csrf token={csrf} />
        <button type="submit" class="secondary">
          Sign out
        </button>
      </form>
    </Layout>
  );
}

/**
 * Waiting for the answer in the approver app: the number to pick (number matching), a Continue form
 * that works without script, and a Cancel form. With script, SELF_SERVICE_WAIT_JS submits Continue
 * once the approval is answered or ended.
 */
export function WaitPage({ csrf, number, statusPath }: { csrf: string; number: number | null; statusPath: string }) {
  return (
    <Layout title="Approve in your app – self-service" script>
      <h1>Approve the sign-in in your app</h1>
      <div class="spinner" aria-hidden="true" />
      <p id="waiting" role="status" data-status={statusPath}>
        A request is waiting in the approver app on your phone. Open the app and approve it. Keep this page open: it moves on when you answer.
      </p>
      {number !== null ? (
        <>
          <p id="match-label">In the app, pick this number:</p>
          <p class="match" id="match" aria-labelledby="match-label">
            {String(number)}
          </p>
        </>
      ) : null}
      <form method="post" action="/self-service/sign-in/continue" id="continue-form">
        <Csrf token={csrf} />
        <button type="submit" class="primary" id="continue">
          Continue
        </button>
      </form>
      <form method="post" action="/self-service/sign-in/cancel">
        <Csrf token={csrf} />
        <button type="submit" class="secondary" id="cancel">
          Cancel
        </button>
      </form>
    </Layout>
  );
}
