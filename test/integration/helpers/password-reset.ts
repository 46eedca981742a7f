// Shared by the password-reset portal tests (their SMS gateway is ./sms-gateway.ts): the Chromium
// launcher, axe-core run inside a page, and the portal's forms as one small driver.

import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { chromium, type Browser, type Page } from "playwright-core";

export const CHROMIUM = "/usr/bin/chromium";
/** A phone-sized viewport (iPhone 12-15 CSS pixels). */
export const PHONE_VIEWPORT = { width: 390, height: 844 };

export function freePort(): number {
  const l = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  const port = l.port;
  l.stop(true);
  return port;
}

export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
}

let axeSource: string | undefined;

/**
 * axe-core on the page as it stands: "id (impact): help" for each violation of impact serious or
 * critical. The script goes in through page.evaluate (DevTools protocol), which the page's CSP does not govern.
 */
export async function axeViolations(page: Page): Promise<string[]> {
  axeSource ??= readFileSync(createRequire(import.meta.url).resolve("axe-core/axe.min.js"), "utf8");
  await page.evaluate(axeSource);
  const found = (await page.evaluate(async () => {
    const axe = (globalThis as unknown as { axe: { run(ctx: unknown, opts: unknown): Promise<{ violations: Array<{ id: string; impact: string | null; help: string }> }> } }).axe;
    const r = await axe.run((globalThis as unknown as { document: unknown }).document, { resultTypes: ["violations"] });
    return r.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help }));
  })) as Array<{ id: string; impact: string | null; help: string }>;
  return found.filter((v) => v.impact === "serious" || v.impact === "critical").map((v) => `${page.url()} ${v.id} (${v.impact}): ${v.help}`);
}

/** The portal's forms, each submitted and waited for. */
export function resetFlow(page: Page, url: string) {
  const submit = async (selector: string) => {
    await Promise.all([page.waitForLoadState("load"), page.waitForNavigation({ waitUntil: "load" }), page.click(selector)]);
  };
  return {
    open: async () => {
      await page.goto(url);
    },
    username: async (name: string) => {
      await page.fill("#username", name);
      await submit("#start");
    },
    code: async (code: string) => {
      await page.fill("#code", code);
      await submit("#submit-code");
    },
    restart: async () => {
      await submit("#restart");
    },
    password: async (password: string, again: string) => {
      await page.fill("#password", password);
      await page.fill("#again", again);
      await submit("#set-password");
    },
  };
}
