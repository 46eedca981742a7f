// The SMTP channel against a real SMTP server (smtp-server) with STARTTLS on a generated certificate and AUTH PLAIN/LOGIN; SMS → e-mail failover from config.
import { afterAll, afterEach, beforeAll, describe, expect, test } from "bun:test";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { AddressInfo } from "node:net";
import { SMTPServer, type SMTPServerOptions, type SMTPServerSession } from "smtp-server";
import { loadConfig } from "../../src/config/index.ts";
import { createDispatcher } from "../../src/delivery/dispatcher.ts";
import { allowListFromConfig, channelsFromConfig, limitsFromConfig } from "../../src/delivery/from-config.ts";
import { createSMTPChannel, type SMTPOptions } from "../../src/delivery/smtp.ts";
import type { SqliteStore } from "../../src/store/sqlite/store.ts";
import { cleanup, openIn, tempDir } from "../unit/store/helpers.ts";

const LINK = "https://mfa.example.com/ml/AbCdEfGhIjKlMnOpQrStUv";
const TEXT = `Approve or reject the sign-in request: ${LINK}`;
const USER = "mfa@example.com";
const PASSWORD = "smtp-p4ssword-s3cret";

interface Delivered {
  from: string | undefined;
  to: string[];
  raw: string;
  secure: boolean;
  authMethod: string | undefined;
}

/**
 * @peculiar/x509 loads tsyringe, which insists on a Reflect metadata API (the reflect-metadata
 * package, not installed); this minimal stand-in covers what tsyringe calls.
 */
function reflectMetadataShim(): void {
  const R = Reflect as unknown as Record<string, unknown>;
  if (typeof R.getMetadata === "function") return;
  const store = new WeakMap<object, Map<unknown, unknown>>();
  const bag = (t: object) => store.get(t) ?? (store.set(t, new Map()), store.get(t)!);
  R.defineMetadata = (k: unknown, v: unknown, t: object) => void bag(t).set(k, v);
  R.getOwnMetadata = (k: unknown, t: object) => store.get(t)?.get(k);
  R.getMetadata = (k: unknown, t: object) => store.get(t)?.get(k);
  R.hasMetadata = (k: unknown, t: object) => store.get(t)?.has(k) ?? false;
  R.metadata = (k: unknown, v: unknown) => (t: object) => void bag(t).set(k, v);
}

/** A certificate for 127.0.0.1 / localhost, self-signed (the client is given it as its CA). */
async function makeCertificate(): Promise<{ cert: string; key: string }> {
  reflectMetadataShim();
  const x509 = await import("@peculiar/x509");
  const alg = { name: "ECDSA", namedCurve: "P-256", hash: "SHA-256" } as const;
  const keys = (await crypto.subtle.generateKey(alg, true, ["sign", "verify"])) as CryptoKeyPair;
  const now = Date.now();
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: "01",
    name: "CN=localhost",
    notBefore: new Date(now - 60_000),
    notAfter: new Date(now + 86_400_000),
    keys,
    signingAlgorithm: alg,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.SubjectAlternativeNameExtension([
        { type: "dns", value: "localhost" },
        { type: "ip", value: "127.0.0.1" },
      ]),
    ],
  });
  const pkcs8 = Buffer.from(await crypto.subtle.exportKey("pkcs8", keys.privateKey)).toString("base64");
  const key = `-----BEGIN PRIVATE KEY-----\n${pkcs8.match(/.{1,64}/g)!.join("\n")}\n-----END PRIVATE KEY-----\n`;
  return { cert: cert.toString("pem"), key };
}

/** A real SMTP server on 127.0.0.1:0 collecting delivered messages. */
class MailServer {
  readonly messages: Delivered[] = [];
  authAttempts = 0;
  private lastAuthMethod: string | undefined;
  private server!: SMTPServer;
  port = 0;

  async start(options: Partial<SMTPServerOptions> = {}): Promise<this> {
    this.server = new SMTPServer({
      key: tls.key,
      cert: tls.cert,
      authMethods: ["PLAIN", "LOGIN"],
      logger: false,
      onAuth: (auth, _session, cb) => {
        this.authAttempts++;
        this.lastAuthMethod = auth.method;
        if (auth.username === USER && auth.password === PASSWORD) cb(null, { user: auth.username });
        else cb(Object.assign(new Error("Invalid username or password"), { responseCode: 535 }));
      },
      onData: (stream, session: SMTPServerSession, cb) => {
        const chunks: Buffer[] = [];
        stream.on("data", (c: Buffer) => chunks.push(c));
        stream.on("end", () => {
          this.messages.push({
            from: session.envelope.mailFrom ? session.envelope.mailFrom.address : undefined,
            to: session.envelope.rcptTo.map((r) => r.address),
            raw: Buffer.concat(chunks).toString("utf8"),
            secure: session.secure,
            authMethod: session.user === undefined ? undefined : this.lastAuthMethod,
          });
          cb();
        });
      },
      ...options,
    });
    await new Promise<void>((resolve) => this.server.listen(0, "127.0.0.1", resolve));
    this.port = ((this.server as unknown as { server: { address(): AddressInfo } }).server.address()).port;
    return this;
  }

  async stop(): Promise<void> {
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

let tls: { cert: string; key: string };
const servers: MailServer[] = [];
beforeAll(async () => {
  tls = await makeCertificate();
});
afterEach(async () => {
  for (const s of servers.splice(0)) await s.stop();
});

async function server(options: Partial<SMTPServerOptions> = {}): Promise<MailServer> {
  const s = await new MailServer().start(options);
  servers.push(s);
  return s;
}

function channel(port: number, patch: Partial<SMTPOptions> = {}) {
  return createSMTPChannel({
    host: "127.0.0.1",
    port,
    starttls: true,
    secure: false,
    auth: { user: USER, password: PASSWORD },
    from: "Portcullis <mfa@example.com>",
    ca: tls.cert,
    timeoutMs: 3000,
    ...patch,
  });
}

/** The decoded text body of a simple one-part message (nodemailer may quoted-printable it). */
function bodyOf(raw: string): string {
  const [head, ...rest] = raw.split("\r\n\r\n");
  const body = rest.join("\r\n\r\n");
  if (/content-transfer-encoding:\s*quoted-printable/i.test(head!)) {
    return body.replace(/=\r\n/g, "").replace(/=([0-9A-F]{2})/g, (_, h: string) => String.fromCharCode(parseInt(h, 16)));
  }
  return body;
}

describe("SMTP with STARTTLS and AUTH", () => {
  test.each(["PLAIN", "LOGIN"])("AUTH %s after STARTTLS: the message arrives with the link exactly once", async (method) => {
    const mail = await server({ authMethods: [method] });
    const r = await channel(mail.port).send({ to: "alice@example.com", text: TEXT, subject: "Sign-in request" }, {});
    expect(r.ok).toBe(true);
    expect(mail.messages.length).toBe(1);
    const [m] = mail.messages;
    expect([m!.from, m!.to, m!.secure, m!.authMethod]).toEqual([USER, ["alice@example.com"], true, method]);
    expect(m!.raw).toMatch(/^Subject: Sign-in request\r$/m);
    expect(m!.raw).toMatch(/^Auto-Submitted: auto-generated\r$/m);
    expect(m!.raw).toMatch(/^To: alice@example\.com\r$/m);
    const body = bodyOf(m!.raw);
    expect(body.split(LINK).length - 1).toBe(1);
    expect(body.trim()).toBe(TEXT);
  });

  test("a wrong password is rejected, with the SMTP code and no secret in the detail", async () => {
    const mail = await server();
    const r = await channel(mail.port, { auth: { user: USER, password: "wrong-password" } }).send({ to: "alice@example.com", text: TEXT }, {});
    expect(r).toEqual({ ok: false, reason: "rejected", detail: "smtp EAUTH 535" });
    expect(mail.messages).toEqual([]);
  });

  test("STARTTLS required but not offered: nothing is sent and the password never leaves", async () => {
    // A server without STARTTLS (it neither advertises nor accepts it) that would take AUTH in clear text.
    const mail = await server({ hideSTARTTLS: true, disabledCommands: ["STARTTLS"], allowInsecureAuth: true });
    const r = await channel(mail.port).send({ to: "alice@example.com", text: TEXT }, {});
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.detail).toMatch(/^smtp E[A-Z]+( \d{3})?$/);
    expect(mail.authAttempts).toBe(0);
    expect(mail.messages).toEqual([]);
  });

  test("the same plain-text server accepts the message when STARTTLS is not required (the control for the test above)", async () => {
    const mail = await server({ hideSTARTTLS: true, disabledCommands: ["STARTTLS"], allowInsecureAuth: true });
    const r = await channel(mail.port, { starttls: false }).send({ to: "alice@example.com", text: TEXT }, {});
    expect(r.ok).toBe(true);
    expect(mail.messages.map((m) => m.secure)).toEqual([false]);
  });

  test("a certificate the client does not trust fails the delivery", async () => {
    const mail = await server();
    const r = await channel(mail.port, { ca: undefined }).send({ to: "alice@example.com", text: TEXT }, {});
    expect(r.ok).toBe(false);
    expect(r).toEqual({ ok: false, reason: "network", detail: "smtp ESOCKET" });
    expect(mail.authAttempts).toBe(0);
    expect(mail.messages).toEqual([]);
  });

  test("connection refused is a network failure", async () => {
    const mail = await server();
    const port = mail.port;
    await servers.pop()!.stop();
    const r = await channel(port).send({ to: "alice@example.com", text: TEXT }, {});
    expect(r).toMatchObject({ ok: false, reason: "network" });
    if (!r.ok) for (const s of [PASSWORD, LINK, "alice"]) expect(r.detail).not.toContain(s);
  });
});

describe("from config: SMS gateway down → e-mail", () => {
  let dir: string;
  let store: SqliteStore;
  beforeAll(async () => {
    dir = tempDir();
    store = await openIn(dir);
  });
  afterAll(async () => {
    await store.close();
    cleanup(dir);
  });

  test("the configured SMS gateway refuses connections; the SMTP channel from [delivery.smtp] delivers", async () => {
    const mail = await server();
    const cfgDir = join(dir, "cfg");
    mkdirSync(cfgDir);
    writeFileSync(join(cfgDir, "smtp.pass"), `${PASSWORD}\n`, { mode: 0o600 });
    writeFileSync(join(cfgDir, "ca.pem"), tls.cert);
    writeFileSync(
      join(cfgDir, "portcullis.toml"),
      [
        'region = "SE"',
        "[delivery]",
        'channels = ["sms", "email"]',
        "[delivery.sms]",
        'url = "http://127.0.0.1:9/sms"', // discard port: nothing listens
        'headers = { "X-Api-Key" = "gateway-key-s3cret" }',
        "timeout_ms = 2000",
        "[delivery.smtp]",
        'host = "127.0.0.1"',
        `port = ${mail.port}`,
        `user = "${USER}"`,
        `password_file = "${join(cfgDir, "smtp.pass")}"`,
        'from = "Portcullis <mfa@example.com>"',
        `ca_file = "${join(cfgDir, "ca.pem")}"`,
      ].join("\n"),
    );
    const { config } = loadConfig({ configFile: join(cfgDir, "portcullis.toml"), env: {}, dataDir: dir, systemFile: "/nonexistent" });
    const channels = channelsFromConfig(config.delivery);
    expect(channels.map((c) => [c.name, c.kind])).toEqual([
      ["sms", "sms"],
      ["email", "email"],
    ]);
    const d = createDispatcher({ channels, region: config.region, allowList: allowListFromConfig(config.delivery), limits: limitsFromConfig(config.delivery), rateLimits: store.rateLimits, deliveryLog: store.deliveryLog });
    const r = await d.deliver({ msisdn: "070 123 45 67", email: "alice@example.com", text: TEXT, subject: config.delivery.email_subject, endpoint: "default", apiKeyId: "k1" });
    expect(r).toEqual({ ok: true, channel: "email" });
    expect(bodyOf(mail.messages[0]!.raw).trim()).toBe(TEXT);
    const rows = (await store.deliveryLog.recent(10)).reverse();
    expect(rows.map((e) => [e.channel, e.destination, e.result, e.reason])).toEqual([
      ["sms", "+46…67", "failed", "network"],
      ["email", "…@example.com", "sent", null],
    ]);
    expect(JSON.stringify(rows)).not.toMatch(/s3cret|AbCdEf|alice@|701234567/);
  });
});
