// The public listener's TLS material: generated once (ECDSA P-256, SANs, 0600 key), reused, renewed.

import { afterEach, describe, expect, test } from "bun:test";
import { X509Certificate } from "node:crypto";
import { statSync, writeFileSync } from "node:fs";
import * as path from "node:path";
import { certificateNames, GENERATED_CERT_FILE, GENERATED_KEY_FILE, loadOrCreateTLS } from "../../../src/http/tls.ts";
import { DEFAULT_HTTP_LIMITS, serveHttp } from "../../../src/runtime/http.ts";
import { cleanup, tempDir } from "../store/helpers.ts";
import { countingRandom } from "./helpers.ts";

let dir: string | undefined;
afterEach(() => cleanup(dir));

const NOW = Date.UTC(2026, 0, 1);
const DAY = 86_400_000;

test.each([
  ["127.0.0.1", "", "host1", ["127.0.0.1"]],
  ["0.0.0.0", "", "host1", ["host1"]],
  ["0.0.0.0", "https://MFA.example.com:8443/base", "host1", ["mfa.example.com"]],
  ["192.0.2.10", "https://mfa.example.com", "host1", ["mfa.example.com", "192.0.2.10"]],
  ["::", "https://[2001:db8::5]/", "host1", ["2001:db8::5"]],
])("certificateNames(%p, %p)", (listen, url, host, expected) => {
  expect(certificateNames(listen, url, host)).toEqual(expected);
});

describe("loadOrCreateTLS", () => {
  const opts = (names: string[], now = NOW) => ({ certFile: "", keyFile: "", dataDir: dir!, names, now, random: countingRandom() });

  test("generates an ECDSA P-256 certificate for the names, one year, key mode 0600; then reuses it", async () => {
    dir = tempDir();
    const first = await loadOrCreateTLS(opts(["mfa.example.com", "192.0.2.10"]));
    expect(first.source).toBe("generated");
    const cert = new X509Certificate(first.cert);
    expect(cert.publicKey.asymmetricKeyDetails?.namedCurve).toBe("prime256v1");
    expect(cert.subjectAltName).toBe("DNS:mfa.example.com, IP Address:192.0.2.10");
    expect(Date.parse(cert.validTo) - NOW).toBeGreaterThan(364 * DAY);
    expect(Date.parse(cert.validTo) - NOW).toBeLessThanOrEqual(366 * DAY);
    expect(cert.ca).toBe(false);
    expect(statSync(path.join(dir, GENERATED_KEY_FILE)).mode & 0o777).toBe(0o600);
    expect(first.key).toStartWith("-----BEGIN PRIVATE KEY-----");

    const again = await loadOrCreateTLS(opts(["mfa.example.com"], NOW + 100 * DAY));
    expect(again.source).toBe("reused");
    expect(again.cert).toBe(first.cert);
  });

  test.each([
    ["a name the certificate lacks", ["other.example.com"], NOW + DAY],
    ["less than 30 days left", ["mfa.example.com"], NOW + 340 * DAY],
  ])("renews for %s", async (_what, names, now) => {
    dir = tempDir();
    const first = await loadOrCreateTLS(opts(["mfa.example.com"]));
    const next = await loadOrCreateTLS(opts(names, now));
    expect(next.source).toBe("generated");
    expect(next.cert).not.toBe(first.cert);
  });

  test("a corrupt generated certificate is replaced", async () => {
    dir = tempDir();
    await loadOrCreateTLS(opts(["mfa.example.com"]));
    writeFileSync(path.join(dir, GENERATED_CERT_FILE), "garbage");
    expect((await loadOrCreateTLS(opts(["mfa.example.com"]))).source).toBe("generated");
  });

  test("configured files are used as given", async () => {
    dir = tempDir();
    const made = await loadOrCreateTLS(opts(["x.example"]));
    writeFileSync(path.join(dir, "c.pem"), made.cert);
    writeFileSync(path.join(dir, "k.pem"), made.key);
    const got = await loadOrCreateTLS({ ...opts(["y.example"]), certFile: path.join(dir, "c.pem"), keyFile: path.join(dir, "k.pem") });
    expect(got).toMatchObject({ source: "configured", cert: made.cert, key: made.key });
  });

  test("the generated certificate serves HTTPS that a client trusting it accepts, and one not trusting it refuses", async () => {
    dir = tempDir();
    const tls = await loadOrCreateTLS({ ...opts(["127.0.0.1"]), now: Date.now() });
    const listener = await serveHttp({ address: "127.0.0.1", port: 0, tls, limits: DEFAULT_HTTP_LIMITS, fetch: (_req, env) => new Response(`peer ${env.remoteAddress}`) });
    try {
      const r = await fetch(`https://127.0.0.1:${listener.port}/`, { tls: { ca: tls.cert } } as RequestInit);
      expect(await r.text()).toBe("peer 127.0.0.1");
      await expect(fetch(`https://127.0.0.1:${listener.port}/`)).rejects.toThrow();
    } finally {
      await listener.stop();
    }
  });
});
