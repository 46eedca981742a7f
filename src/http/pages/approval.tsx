// The Magic Link approval pages (hono/jsx, server-rendered): mobile-first, accessible, no JavaScript
// at all (the CSP forbids inline script anyway). Approve and Reject are separate POST forms.

import type { Child } from "hono/jsx";
import { contextText, type ApprovalContext } from "../../approvals/texts.ts";

/** Path of the stylesheet; served by src/http/magiclink.tsx (the CSP forbids inline styles). */
export const APPROVAL_CSS_PATH = "/ml/assets/approval.css";

/** The stylesheet: large tap targets, visible focus, readable on a small screen and in dark mode. */
export const APPROVAL_CSS = `
:root { color-scheme: light dark; --fg: #1b1f24; --bg: #f6f7f9; --card: #fff; --muted: #4a5360; --ok: #0b6b2f; --no: #a4161a; --focus: #1a56db; }
@media (prefers-color-scheme: dark) { :root { --fg: #eef1f4; --bg: #111418; --card: #1c2127; --muted: #b6bec8; --ok: #3fb96b; --no: #ff6b6b; --focus: #8ab4ff; } }
* { box-sizing: border-box; }
html { font-size: 112.5%; }
body { margin: 0; font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; line-height: 1.5; color: var(--fg); background: var(--bg); }
main { max-width: 28rem; margin: 0 auto; padding: 1.5rem 1rem 3rem; }
.card { background: var(--card); border-radius: 0.75rem; padding: 1.25rem; box-shadow: 0 1px 3px rgba(0,0,0,.15); }
h1 { font-size: 1.4rem; margin: 0 0 0.75rem; }
p { margin: 0 0 1rem; }
.muted { color: var(--muted); font-size: 0.95rem; }
form { margin: 0.75rem 0 0; }
fieldset { border: 0; margin: 0; padding: 0; }
legend { font-weight: 600; margin-bottom: 0.5rem; }
button { display: block; width: 100%; min-height: 3rem; padding: 0.75rem 1rem; font: inherit; font-weight: 600; border-radius: 0.5rem; border: 2px solid transparent; cursor: pointer; }
button.approve { background: var(--ok); color: #fff; }
button.reject { background: transparent; color: var(--no); border-color: var(--no); }
.choices { display: flex; gap: 0.75rem; }
.choices button { font-size: 1.5rem; background: var(--ok); color: #fff; }
button:focus-visible { outline: 3px solid var(--focus); outline-offset: 3px; }
dl.context { display: grid; grid-template-columns: auto 1fr; gap: 0.25rem 0.75rem; margin: 0 0 1rem; font-size: 0.95rem; }
dl.context dt { color: var(--muted); }
dl.context dd { margin: 0; overflow-wrap: anywhere; }
.result-ok { color: var(--ok); }
.result-no { color: var(--no); }
`;

function Layout({ title, children }: { title: string; children: Child }) {
  return (
    <html lang="en">
      <head>
        <meta charset="utf-8" />
        <meta name="viewport" content="width=device-width, initial-scale=1" />
        <meta name="robots" content="noindex, nofollow" />
        <meta name="referrer" content="no-referrer" />
        <title>{title}</title>
        <link rel="stylesheet" href={APPROVAL_CSS_PATH} />
      </head>
      <body>
        <main>
          <div class="card">{children}</div>
        </main>
      </body>
    </html>
  );
}

/** The texts a page shows (already merged with the endpoint's defaults); rendered escaped. */
export interface PageTexts {
  title: string;
  authentication: string;
  accept: string;
  reject: string;
  buttonAccept: string;
  buttonReject: string;
}

/** "2024-05-01 13:37:05 UTC": the page has no script to show local time, and UTC says which zone it is. */
function utcTime(ms: number): string {
  return new Date(ms).toISOString().replace("T", " ").replace(/\.\d{3}Z$/, " UTC");
}

/**
 * Where the sign-in comes from (approvals other than Magic Link calls): the service, the source as
 * the NAS reported it, and when it arrived. Cleaned and cut (contextText), then escaped like every text.
 */
function Context({ context }: { context: ApprovalContext }) {
  return (
    <dl class="context" id="context">
      <dt>Service</dt>
      <dd id="context-client">{contextText(context.client)}</dd>
      {context.source ? (
        <>
          <dt>From</dt>
          <dd id="context-source">{contextText(context.source)}</dd>
        </>
      ) : null}
      <dt>Time</dt>
      <dd id="context-time">
        <time datetime={new Date(context.createdAt).toISOString()}>{utcTime(context.createdAt)}</time>
      </dd>
    </dl>
  );
}

/**
 * The question: Approve and Reject as two POST forms carrying the CSRF token. With number matching
 * (`choices`), approving means pressing the number shown on the sign-in screen. `context` (client,
 * source, time) is shown when present.
 */
export function ApprovalPage({ texts, csrf, choices, context = null, hint = "If you are not signing in right now, reject: someone may know your password." }: { texts: PageTexts; csrf: string; choices: number[] | null; context?: ApprovalContext | null; hint?: string }) {
  return (
    <Layout title={texts.title}>
      <h1 id="title">{texts.title}</h1>
      <p id="question">{texts.authentication}</p>
      {context ? <Context context={context} /> : null}
      {choices ? (
        <form method="post" aria-labelledby="pick-legend">
          <input type="hidden" name="csrf" value={csrf} />
          <input type="hidden" name="action" value="approve" />
          <fieldset>
            <legend id="pick-legend">To approve, pick the number shown where you are signing in:</legend>
            <div class="choices">
              {choices.map((n) => (
                <button type="submit" name="pick" value={String(n)} aria-label={`Number ${n}`}>
                  {String(n)}
                </button>
              ))}
            </div>
          </fieldset>
        </form>
      ) : (
        <form method="post">
          <input type="hidden" name="csrf" value={csrf} />
          <input type="hidden" name="action" value="approve" />
          <button type="submit" class="approve" id="approve">
            {texts.buttonAccept}
          </button>
        </form>
      )}
      <form method="post">
        <input type="hidden" name="csrf" value={csrf} />
        <input type="hidden" name="action" value="reject" />
        <button type="submit" class="reject" id="reject">
          {texts.buttonReject}
        </button>
      </form>
      <p class="muted">{hint}</p>
    </Layout>
  );
}

/** After an answer: the endpoint's accept or reject text. */
export function ResultPage({ texts, status, wrongNumber = false, already = false }: { texts: PageTexts; status: "accepted" | "rejected"; wrongNumber?: boolean; already?: boolean }) {
  const ok = status === "accepted";
  return (
    <Layout title={texts.title}>
      <h1 id="result" class={ok ? "result-ok" : "result-no"} role="status">
        {ok ? texts.accept : texts.reject}
      </h1>
      {wrongNumber ? <p>The number you picked was not the one shown where you are signing in, so the sign-in was rejected.</p> : null}
      {already ? <p class="muted">This request was already answered.</p> : null}
    </Layout>
  );
}

/** Unknown, expired, cancelled or failed links: one page for all, so the page is no oracle. */
export function InvalidLinkPage() {
  return (
    <Layout title="Link not valid">
      <h1 id="invalid">This link is no longer valid</h1>
      <p>It has expired or was already used. If you are signing in, start again to get a new link.</p>
    </Layout>
  );
}

/** A form that did not come from this page (missing or wrong CSRF token). */
export function StaleFormPage() {
  return (
    <Layout title="Please try again">
      <h1 id="stale">Please open the link again</h1>
      <p>This form could not be accepted. Open the link from your message again and answer there.</p>
    </Layout>
  );
}
