// The approver app's files on the public listener (DESIGN "Approver app"; docs/app.md "The app"):
//
//   GET /app/                        the page (server-rendered; the client script fills it in)
//   GET /app/app.js                  the client script (enrolment, the request list, the event stream)
//   GET /app/lib.js                  what the page and the worker share (the key store, signed calls)
//   GET /app/sw.js                   the service worker (push notifications, offline copy of the page)
//   GET /app/app.css                 the stylesheet (the approval pages' plus the app's own rules)
//   GET /app/manifest.webmanifest    the web app manifest
//   GET /app/icons/{name}.png        the icons (drawn in code, src/app/icons.ts)
//
// Every file is part of the executable (the scripts are imported as text), so nothing is read from
// disk and there is no build step beyond `bun build`. Each answer carries an ETag and
// `Cache-Control: no-cache`: the browser keeps a copy but asks each time whether it changed, so an
// upgraded appliance never serves an old script beside a new page.

import type { Context } from "hono";
import { APPROVAL_CSS } from "../http/pages/approval.tsx";
import type { HttpEnv, RouteModule } from "../http/types.ts";
import APP_JS from "./client/app.js" with { type: "text" };
import LIB_JS from "./client/lib.js" with { type: "text" };
import SW_JS from "./client/sw.js" with { type: "text" };
import { APP_BLUE, ICONS, iconPng } from "./icons.ts";
import { APP_CSS, AppPage } from "./page.tsx";

/**
 * The Content-Security-Policy of the app's answers: its own scripts, styles, images, manifest, worker
 * and API calls, nothing else (no inline script or style, no eval, no other origin, no framing, no
 * form posts: the script sends every answer with fetch). On the page, Trusted Types enforce that the
 * script never writes HTML as text (it builds the page with DOM calls only) and hands the browser one
 * script URL, the worker's, through its one policy. The worker builds no DOM and loads lib.js with
 * importScripts, so its own answer carries the policy without the Trusted Types part.
 */
export const WORKER_CSP =
  "default-src 'none'; script-src 'self'; img-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";
export const APP_CSP =
  "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; manifest-src 'self'; worker-src 'self'; " +
  "base-uri 'none'; form-action 'none'; frame-ancestors 'none'; require-trusted-types-for 'script'; trusted-types portcullis-app";

/** The manifest's contents (also what tests check). */
export function appManifest(): Record<string, unknown> {
  return {
    id: "/app/",
    name: "Portcullis approvals",
    short_name: "Portcullis",
    description: "Approve or reject sign-ins with a key kept on this device.",
    lang: "en",
    start_url: "/app/",
    scope: "/app/",
    display: "standalone",
    orientation: "portrait",
    background_color: "#f6f7f9",
    theme_color: APP_BLUE,
    icons: Object.entries(ICONS)
      .filter(([name]) => name !== "apple-touch-icon.png")
      .map(([name, { size, variant }]) => ({ src: `/app/icons/${name}`, sizes: `${size}x${size}`, type: "image/png", purpose: variant })),
  };
}

interface StaticFile {
  body: string | Uint8Array;
  type: string;
  etag: string;
}

function file(body: string | Uint8Array, type: string): StaticFile {
  const hash = new Bun.CryptoHasher("sha256").update(body).digest("base64url").slice(0, 22);
  return { body, type, etag: `"${hash}"` };
}

/** Answers `f` (or 304 when the browser's copy is current) with the app's CSP and cache policy. */
function serve(c: Context<HttpEnv>, f: StaticFile, extra: Record<string, string> = {}): Response {
  const headers: Record<string, string> = { "Content-Type": f.type, "Cache-Control": "no-cache", ETag: f.etag, "Content-Security-Policy": APP_CSP, ...extra };
  const match = c.req.header("if-none-match");
  if (match && match.split(",").some((t) => t.trim().replace(/^W\//, "") === f.etag)) return c.body(null, 304, headers);
  return c.body(f.body as string, 200, headers);
}

/** Registers the app's files on the public app. */
export const appPageRoutes: RouteModule = (app) => {
  // Built once on first use: the page is the same for everyone (all state lives in the browser).
  type Files = Record<"page" | "js" | "lib" | "sw" | "css" | "manifest", StaticFile>;
  let files: Files | undefined;
  const get = (): Files =>
    (files ??= {
      page: file("<!doctype html>" + String(<AppPage />), "text/html; charset=utf-8"),
      js: file(APP_JS, "text/javascript; charset=utf-8"),
      lib: file(LIB_JS, "text/javascript; charset=utf-8"),
      sw: file(SW_JS, "text/javascript; charset=utf-8"),
      css: file(APPROVAL_CSS + APP_CSS, "text/css; charset=utf-8"),
      manifest: file(JSON.stringify(appManifest()), "application/manifest+json"),
    });

  app.get("/app", (c) => c.redirect("/app/", 301));
  app.get("/app/", (c) => serve(c, get().page));
  app.get("/app/app.js", (c) => serve(c, get().js));
  app.get("/app/lib.js", (c) => serve(c, get().lib));
  app.get("/app/app.css", (c) => serve(c, get().css));
  app.get("/app/manifest.webmanifest", (c) => serve(c, get().manifest));
  // The worker's scope is /app/ (where it lives), so it never sees another path of the listener.
  app.get("/app/sw.js", (c) => serve(c, get().sw, { "Content-Security-Policy": WORKER_CSP }));

  const icons = new Map<string, StaticFile>();
  app.get("/app/icons/:name", (c) => {
    const name = c.req.param("name");
    let f = icons.get(name);
    if (!f) {
      const png = iconPng(name);
      if (!png) return c.notFound();
      f = file(png, "image/png");
      icons.set(name, f);
    }
    return serve(c, f);
  });
};
