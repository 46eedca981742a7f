// The public Magic Link routes: the Mideye-compatible API (/api/sfwa/auth[/{endpoint}]) and the
// approval pages (/ml/{token}). Every API answer is HTTP 200 with compact JSON {"code":"…"}. The
// sessions themselves are src/magiclink (which knows nothing of HTTP); this module adapts them.

import type { Context } from "hono";
import { verifyApiKey } from "./api-keys.ts";
import { BODY_LIMITS, bodyCap } from "./middleware.ts";
import { APPROVAL_CSS, APPROVAL_CSS_PATH, ApprovalPage, InvalidLinkPage, ResultPage, StaleFormPage } from "./pages/approval.tsx";
import type { HttpEnv, RouteModule } from "./types.ts";
import { DEFAULT_ENDPOINT } from "../store/types.ts";
import type { MagicLinkCode } from "../magiclink/service.ts";

/** The exact body Mideye clients expect: no spaces, so that a search for `"code":"` finds it. */
export function codeBody(code: MagicLinkCode): string {
  return `{"code":"${code}"}`;
}

/** Registers the Magic Link API and pages on the public app. Without `deps.magicLink` every call is FAILED_DELIVERY. */
export const magicLinkRoutes: RouteModule = (app, deps) => {
  const service = deps.magicLink;
  const answer = (c: Context<HttpEnv>, code: MagicLinkCode) => c.body(codeBody(code), 200, { "Content-Type": "application/json" });

  async function api(c: Context<HttpEnv>, endpoint: string | undefined): Promise<Response> {
    let check;
    try {
      const bearer = /^Bearer\s+(\S+)$/i.exec(c.req.header("authorization") ?? "")?.[1];
      check = await verifyApiKey(deps.store, c.req.header("api-key") ?? bearer, { now: deps.now(), roles: ["magiclink"] });
    } catch {
      deps.metrics.magiclinkOutcomes.inc({ code: "FAILED_DELIVERY" });
      deps.log("error", "magiclink.key_lookup_failed", { requestId: c.get("requestId") });
      return answer(c, "FAILED_DELIVERY");
    }
    if (!check.ok) {
      deps.metrics.magiclinkOutcomes.inc({ code: "BAD_REQUEST" });
      deps.audit({ type: "magiclink.bad_request", reason: `key_${check.reason}`, client: c.get("clientIp") });
      return answer(c, "BAD_REQUEST");
    }
    const key = check.key;
    const t = deps.now();
    if (key.lastUsedAt === null || t - key.lastUsedAt > 60_000) void deps.store.apiKeys.touch(key.id, t).catch(() => {});
    // Who asked (the key's name, never the key) and what they were answered.
    const answered = (code: MagicLinkCode) => {
      deps.audit({ type: "magiclink.call", key: key.name, endpoint: endpoint ?? key.endpoint ?? DEFAULT_ENDPOINT, client: c.get("clientIp"), code });
      return answer(c, code);
    };
    if (!service) {
      deps.metrics.magiclinkOutcomes.inc({ code: "FAILED_DELIVERY" });
      return answered("FAILED_DELIVERY");
    }
    // The wait is a promise continuation, not a suspended async frame: thousands of calls wait at once.
    return service.authenticate({ apiKey: key, endpoint, query: c.req.query(), signal: c.req.raw.signal, source: c.get("clientIp") }).then(answered);
  }

  app.get("/api/sfwa/auth", (c) => api(c, undefined));
  app.get("/api/sfwa/auth/:endpoint", (c) => api(c, c.req.param("endpoint")));

  app.get(APPROVAL_CSS_PATH, (c) => c.body(APPROVAL_CSS, 200, { "Content-Type": "text/css; charset=utf-8", "Cache-Control": "public, max-age=86400" }));

  // A GET only shows the question: link scanners that fetch the link change nothing.
  app.get("/ml/:token", async (c) => {
    const view = service ? await service.view(c.req.param("token")) : ({ kind: "invalid" } as const);
    if (view.kind === "pending") {
      // A password-reset approver is not the one signing in: the usual hint would mislead.
      const hint = view.approvalKind === "password-reset" ? "Reject unless you know that this person asked for a new password: whoever asks has only shown that they hold the user's phone." : undefined;
      return c.html(<ApprovalPage texts={view.texts} csrf={view.csrf} choices={view.choices} context={view.context} {...(hint ? { hint } : {})} />);
    }
    if (view.kind === "answered") return c.html(<ResultPage texts={view.texts} status={view.status} already />);
    return c.html(<InvalidLinkPage />, 404);
  });

  // The link is looked up before its form body is read, and the body is capped: nobody without a
  // live link token can make the server read a byte of an upload.
  app.post(
    "/ml/:token",
    async function knownLink(c, next) {
      if (!service || !(await service.isLink(c.req.param("token")))) return c.html(<InvalidLinkPage />, 404);
      await next();
    },
    bodyCap(BODY_LIMITS.form),
    async (c) => {
    if (!service) return c.html(<InvalidLinkPage />, 404);
    let body: Record<string, unknown> = {};
    try {
      body = (await c.req.parseBody()) as Record<string, unknown>;
    } catch {
      return c.html(<StaleFormPage />, 400);
    }
    const field = (k: string) => (typeof body[k] === "string" ? (body[k] as string) : undefined);
    const r = await service.answer(c.req.param("token"), { csrf: field("csrf"), action: field("action"), pick: field("pick") });
    switch (r.kind) {
      case "done":
        return c.html(<ResultPage texts={r.texts} status={r.status} wrongNumber={r.wrongNumber} />);
      case "answered":
        return c.html(<ResultPage texts={r.texts} status={r.status} already />, 409);
      case "bad_csrf":
        return c.html(<StaleFormPage />, 403);
      default:
        return c.html(<InvalidLinkPage />, 404);
    }
  },
  );
};
