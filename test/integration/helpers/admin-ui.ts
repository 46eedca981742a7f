// The admin web UI in headless Chromium: launching it, accounts made with `portcullis admin add`,
// their TOTP codes, signing in, and axe-core on a page (no serious or critical violation).

import { expect } from "bun:test";
import { existsSync, mkdirSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { chromium, type Browser, type Page } from "playwright-core";
import { decodeBase32, generateTOTP } from "../../../src/otp/index.ts";
import type { Appliance } from "./appliance.ts";

export const CHROMIUM = "/usr/bin/chromium";
const AXE = readFileSync(resolve(import.meta.dir, "../../../node_modules/axe-core/axe.min.js"), "utf8");
const SCREENSHOTS = process.env.PORTCULLIS_SCREENSHOTS === "1" ? resolve(import.meta.dir, "../../../docs/img") : null;

export async function launchChromium(): Promise<Browser> {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: these tests need headless Chromium`);
  return chromium.launch({ executablePath: CHROMIUM, headless: true, args: ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"] });
}

/** Admin accounts made in a test, with their TOTP secrets. */
export class AdminAccounts {
  readonly secrets: Record<string, Uint8Array> = {};

  constructor(private readonly appliance: Appliance) {}

  /** `admin add NAME --role ROLE --password-stdin`; keeps the TOTP secret from the printed otpauth URI. */
  async add(name: string, role: string, password: string): Promise<void> {
    const out = await this.appliance.cli(["admin", "add", name, "--role", role, "--password-stdin"], { stdin: `${password}\n` });
    const secret = /^otpauth:\/\/totp\/[^?]+\?secret=([A-Z2-7]+)/m.exec(out)?.[1];
    if (!secret) throw new Error("admin add printed no otpauth URI");
    this.secrets[name] = decodeBase32(secret);
  }

  /** The account's code `offset` steps from now (each step is accepted once: a later use needs a later step). */
  code(name: string, offset = 0): string {
    return generateTOTP({ secret: this.secrets[name]!, algorithm: "SHA1", digits: 6, period: 30 }, { now: Date.now() + offset * 30_000 });
  }
}

export async function signIn(page: Page, base: string, name: string, password: string, totp: string): Promise<void> {
  await page.goto(`${base}/ui/`);
  await page.waitForSelector("#sign-in");
  await page.fill("#f-name", name);
  await page.fill("#f-password", password);
  await page.fill("#f-code", totp);
  await page.click("#sign-in");
  await page.waitForLoadState("domcontentloaded");
}

/** axe-core on the current page: no violation of impact serious or critical. */
export async function expectAccessible(page: Page): Promise<void> {
  // page.evaluate runs outside the page's CSP (no inline script is allowed there).
  await page.evaluate(AXE);
  const { passes, violations } = (await page.evaluate(async () => {
    const r = await (globalThis as unknown as { axe: { run(): Promise<{ passes: unknown[]; violations: Array<{ id: string; impact: string; nodes: Array<{ target: string[] }> }> }> } }).axe.run();
    return { passes: r.passes.length, violations: r.violations.map((v) => ({ id: v.id, impact: v.impact, targets: v.nodes.map((n) => n.target.join(" ")).slice(0, 3) })) };
  })) as { passes: number; violations: Array<{ id: string; impact: string; targets: string[] }> };
  expect(passes).toBeGreaterThan(5);
  const bad = violations.filter((v) => v.impact === "serious" || v.impact === "critical");
  expect({ url: page.url(), bad }).toEqual({ url: page.url(), bad: [] });
}

/** With PORTCULLIS_SCREENSHOTS=1, the page into docs/img/FILE. */
export async function screenshot(page: Page, file: string): Promise<void> {
  if (!SCREENSHOTS) return;
  mkdirSync(SCREENSHOTS, { recursive: true });
  await page.screenshot({ path: join(SCREENSHOTS, file), fullPage: true });
}
