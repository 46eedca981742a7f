// The approver app's page (hono/jsx, server-rendered, the same style as the approval pages). It
// holds every view the app has, each hidden until the client script (client/app.js) shows it:
// loading, enrolment, the request list, a removed device. Without script only the notice shows.
// Element IDs here are what app.js looks up; keep the two in step.

import { APP_BLUE } from "./icons.ts";

/** The app's own rules, served after the approval pages' stylesheet (same variables, dark mode). */
export const APP_CSS = `
main { padding-top: 0.75rem; }
header.bar { display: flex; align-items: center; gap: 0.6rem; margin: 0 0 1rem; }
header.bar img { width: 2rem; height: 2rem; border-radius: 0.4rem; }
header.bar h1 { margin: 0; font-size: 1.25rem; }
.card + .card, .card + ul, ul + .card { margin-top: 1rem; }
h2 { font-size: 1.2rem; margin: 0 0 0.75rem; }
h3 { font-size: 1.1rem; margin: 0 0 0.5rem; }
label { display: block; font-weight: 600; margin: 0 0 0.25rem; }
input[type=text] { display: block; width: 100%; min-height: 3rem; padding: 0.6rem 0.75rem; font: inherit; color: var(--fg); background: var(--bg); border: 2px solid var(--muted); border-radius: 0.5rem; margin: 0 0 1rem; }
input[type=text]:focus-visible { outline: 3px solid var(--focus); outline-offset: 2px; }
button + button, form + button, .choices + button { margin-top: 0.75rem; }
.choices button + button { margin-top: 0; }
fieldset + button { margin-top: 0.75rem; }
button.secondary { background: transparent; color: var(--fg); border-color: var(--muted); }
button.report { background: transparent; color: var(--no); border-color: transparent; text-decoration: underline; min-height: 2.75rem; }
button:disabled { opacity: 0.6; cursor: default; }
ul.requests { list-style: none; margin: 0 0 1rem; padding: 0; }
ul.requests > li + li { margin-top: 1rem; }
.banner { border-radius: 0.5rem; padding: 0.6rem 0.9rem; margin: 0 0 1rem; background: var(--card); border-left: 0.4rem solid var(--no); }
.banner.info { border-left-color: var(--focus); }
.banner p { margin: 0; }
.banner button { margin-top: 0.6rem; }
.code-label { margin: 1rem 0 0.25rem; }
.code { font-size: 2rem; font-weight: 700; letter-spacing: 0.15em; font-variant-numeric: tabular-nums; margin: 0 0 1rem; }
.confirm { border-top: 1px solid var(--muted); margin-top: 1rem; padding-top: 0.75rem; }
.result { font-weight: 600; margin: 0.75rem 0 0; }
.result:empty { display: none; }
#status:empty { display: none; }
ul.support { padding-left: 1.2rem; margin: 0 0 1rem; }
[hidden] { display: none !important; }
`;

/** The page: every view is in the HTML; app.js decides which one shows. */
export function AppPage() {
  return (
    <html lang="en">
      <head>
        <meta charset="utf-8" />
        <meta name="viewport" content="width=device-width, initial-scale=1, viewport-fit=cover" />
        <meta name="robots" content="noindex, nofollow" />
        <meta name="referrer" content="no-referrer" />
        <meta name="theme-color" content={APP_BLUE} />
        <meta name="apple-mobile-web-app-capable" content="yes" />
        <meta name="apple-mobile-web-app-title" content="Portcullis" />
        <title>Portcullis approvals</title>
        <link rel="manifest" href="/app/manifest.webmanifest" />
        <link rel="icon" type="image/png" href="/app/icons/icon-192.png" />
        <link rel="apple-touch-icon" href="/app/icons/apple-touch-icon.png" />
        <link rel="stylesheet" href="/app/app.css" />
        <script src="/app/lib.js" defer></script>
        <script src="/app/app.js" defer></script>
      </head>
      <body>
        <main>
          <header class="bar">
            <img src="/app/icons/icon-192.png" alt="" width="32" height="32" />
            <h1>Portcullis approvals</h1>
          </header>
          <div id="offline" class="banner" role="status" hidden>
            You are offline. Requests will show up again when this device is back online.
          </div>
          <p id="status" class="banner info" role="status" aria-live="polite"></p>
          <noscript>
            <div class="card">
              <p>This app needs JavaScript: it keeps a key on this device and signs each answer with it.</p>
            </div>
          </noscript>

          <section id="view-loading" class="card" aria-busy="true" hidden>
            <p>Loading…</p>
          </section>

          <section id="view-enrol" class="card" aria-labelledby="enrol-title" hidden>
            <h2 id="enrol-title">Set up this device</h2>
            <p id="enrol-intro">
              This device will receive the sign-in requests of the account the enrolment link was made for, and you will approve or reject them here.
            </p>
            <p id="no-code" hidden>
              Open the enrolment link you were given on this device, or paste it below. An administrator makes one with <code>portcullis device enrol</code>; it works once, for 10 minutes.
            </p>
            <form id="enrol-form" novalidate>
              <div id="code-field" hidden>
                <label for="enrol-code">Enrolment link or code</label>
                <input type="text" id="enrol-code" name="code" autocomplete="off" autocapitalize="off" spellcheck={false} />
              </div>
              <label for="device-name">Name of this device</label>
              <input type="text" id="device-name" name="name" maxlength={64} autocomplete="off" required aria-describedby="name-hint" />
              <p id="name-hint" class="muted">
                Shown to administrators in the device list.
              </p>
              <button type="submit" class="approve" id="enrol">
                Enrol this device
              </button>
            </form>
            <div id="ios-hint" class="banner info" hidden>
              <p>
                On iPhone and iPad, notifications only reach apps on the Home Screen. To get them: tap Share, then <strong>Add to Home Screen</strong>, open Portcullis from the Home Screen and paste the enrolment link there.
              </p>
              <button type="button" class="secondary" id="copy-link">
                Copy the enrolment link
              </button>
            </div>
            <h3>Where it works</h3>
            <ul class="support" id="support">
              <li>Chrome, Edge and other Chromium browsers, and Firefox, on Android and on desktop.</li>
              <li>Safari on iPhone and iPad with iOS 16.4 or later, after “Add to Home Screen”.</li>
            </ul>
            <p class="muted">
              Enrolling makes a key on this device that never leaves it; every answer you give is signed with it. Notifications need your permission; without them, requests show up while this app is open.
            </p>
          </section>

          <section id="view-removed" class="card" aria-labelledby="removed-title" hidden>
            <h2 id="removed-title">This device was removed</h2>
            <p>An administrator removed this device, so it can no longer answer sign-in requests. Ask for a new enrolment link to set it up again.</p>
            <button type="button" class="secondary" id="forget">
              Forget this device
            </button>
          </section>

          <section id="view-main" aria-labelledby="requests-title" hidden>
            <div id="notify" class="banner info" hidden>
              <p id="notify-text">Turn on notifications to hear about sign-in requests while this app is closed.</p>
              <button type="button" class="secondary" id="notify-on">
                Turn on notifications
              </button>
            </div>
            <h2 id="requests-title">Sign-in requests</h2>
            <p id="empty" class="muted">
              Nothing is waiting for you. Requests appear here as soon as someone signs in with your account.
            </p>
            <ul id="requests" class="requests" aria-labelledby="requests-title"></ul>
            <p class="muted" id="device-line">
              This device: <span id="device-label"></span>. <span id="notify-note"></span>
            </p>
          </section>
        </main>
      </body>
    </html>
  );
}
