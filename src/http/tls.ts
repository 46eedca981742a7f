// TLS material for the public listener: configured PEM files as given, or a self-signed ECDSA P-256
// certificate generated once into the data directory and reused while it still fits.

import { X509Certificate } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { hostname } from "node:os";
import { isIP } from "node:net";
import * as path from "node:path";
import "./reflect-shim.ts";
import type * as X509 from "@peculiar/x509";
import { chownToDirectoryOwner, ensurePrivateDirectory, replaceAtomically } from "../runtime/files.ts";

let loaded: Promise<typeof X509> | undefined;
/**
 * @peculiar/x509 is loaded on first use, after the Reflect shim has run: Bun evaluates a static
 * CommonJS import before the ES modules listed ahead of it, so the shim would come too late.
 */
function x509Module(): Promise<typeof X509> {
  loaded ??= import("@peculiar/x509").then((m) => {
    m.cryptoProvider.set(globalThis.crypto);
    return m;
  });
  return loaded;
}

const ALG = { name: "ECDSA", namedCurve: "P-256", hash: "SHA-256" } as const;
const DAY_MS = 86_400_000;
/** A generated certificate is renewed when it has less than this left. */
const RENEW_BEFORE_MS = 30 * DAY_MS;

/** File names of the generated certificate and key inside the data directory. */
export const GENERATED_CERT_FILE = "http-cert.pem";
export const GENERATED_KEY_FILE = "http-key.pem";

export interface TLSMaterial {
  cert: string;
  key: string;
  /** Where it came from: the configured files, a certificate generated now, or one generated earlier. */
  source: "configured" | "generated" | "reused";
  certFile: string;
  keyFile: string;
}

/**
 * The names a generated certificate must carry: the public_url host, and the listen address unless
 * it is a wildcard (then this machine's host name). Lower-cased, without duplicates.
 */
export function certificateNames(listenAddress: string, publicUrl: string, host = hostname()): string[] {
  const names: string[] = [];
  if (publicUrl) names.push(new URL(publicUrl).hostname.replace(/^\[(.*)\]$/, "$1"));
  if (listenAddress !== "0.0.0.0" && listenAddress !== "::") names.push(listenAddress);
  else if (names.length === 0) names.push(host);
  return [...new Set(names.map((n) => n.toLowerCase()))];
}

function toPEM(der: ArrayBuffer, label: string): string {
  const b64 = Buffer.from(der).toString("base64").replace(/(.{64})/g, "$1\n").replace(/\n$/, "");
  return `-----BEGIN ${label}-----\n${b64}\n-----END ${label}-----\n`;
}

/**
 * Generates a self-signed ECDSA P-256 server certificate for `names` (IP addresses become IP SANs,
 * the rest DNS SANs), valid from `now` - 1 hour for one year. `random` supplies the serial number.
 */
export async function generateSelfSigned(names: readonly string[], { now, random }: { now: number; random: (n: number) => Uint8Array }): Promise<{ cert: string; key: string }> {
  if (names.length === 0) throw new TypeError("a certificate needs at least one name");
  const x509 = await x509Module();
  const keys = (await crypto.subtle.generateKey(ALG, true, ["sign", "verify"])) as CryptoKeyPair;
  const serial = random(16);
  serial[0] = serial[0]! & 0x7f; // a positive INTEGER (RFC 5280 §4.1.2.2)
  const cn = names[0]!.replace(/[,=+<>#;\\"]/g, "");
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: Buffer.from(serial).toString("hex"),
    name: `CN=${cn}, O=Portcullis self-signed`,
    notBefore: new Date(now - 3_600_000),
    notAfter: new Date(now + 365 * DAY_MS),
    signingAlgorithm: ALG,
    keys,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
      new x509.SubjectAlternativeNameExtension(names.map((n) => (isIP(n) ? { type: "ip" as const, value: n } : { type: "dns" as const, value: n }))),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  const pkcs8 = await crypto.subtle.exportKey("pkcs8", keys.privateKey);
  return { cert: cert.toString("pem") + "\n", key: toPEM(pkcs8, "PRIVATE KEY") };
}

/**
 * True when `pem` is a certificate valid RENEW_BEFORE_MS past `now` whose SANs include every name.
 * Checked with node:crypto's parser, so that a restart that reuses the certificate does not load
 * the X.509 generator (tens of milliseconds before the first request can be served).
 */
function stillFits(pem: string, names: readonly string[], now: number): boolean {
  try {
    const cert = new X509Certificate(pem);
    if (Date.parse(cert.validTo) - now < RENEW_BEFORE_MS) return false;
    return names.every((n) => (isIP(n) ? cert.checkIP(n) !== undefined : cert.checkHost(n, { subject: "never", wildcards: false }) !== undefined));
  } catch {
    return false;
  }
}

/**
 * The public listener's TLS material. Configured `certFile` and `keyFile` are read as given (both or
 * neither: the config loader refuses one alone). Otherwise the certificate generated earlier into
 * `dataDir` is reused while it is valid for 30 more days and names every name in `names`; else a
 * new one is generated (key file mode 0600, handed to the data directory's owner). Throws the fs
 * error when a file cannot be read or written.
 */
export async function loadOrCreateTLS({
  certFile,
  keyFile,
  dataDir,
  names,
  now,
  random,
}: {
  certFile: string;
  keyFile: string;
  dataDir: string;
  names: readonly string[];
  now: number;
  random: (n: number) => Uint8Array;
}): Promise<TLSMaterial> {
  if (certFile && keyFile) {
    return { cert: readFileSync(certFile, "utf8"), key: readFileSync(keyFile, "utf8"), source: "configured", certFile, keyFile };
  }
  const genCert = path.join(dataDir, GENERATED_CERT_FILE);
  const genKey = path.join(dataDir, GENERATED_KEY_FILE);
  if (existsSync(genCert) && existsSync(genKey)) {
    const cert = readFileSync(genCert, "utf8");
    if (stillFits(cert, names, now)) return { cert, key: readFileSync(genKey, "utf8"), source: "reused", certFile: genCert, keyFile: genKey };
  }
  ensurePrivateDirectory(dataDir);
  const made = await generateSelfSigned(names, { now, random });
  // Key first: a crash between the two leaves an old certificate that no longer matches, which the
  // next start cannot detect cheaply, so the certificate is written last and both are replaced.
  replaceAtomically(genKey, made.key);
  replaceAtomically(genCert, made.cert);
  chownToDirectoryOwner(dataDir, [genKey, genCert]);
  return { ...made, source: "generated", certFile: genCert, keyFile: genKey };
}
