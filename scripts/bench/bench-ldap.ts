// LDAP-password login benchmark (issue 3 item 8): PAP against one slapd, FreeRADIUS 3.2 + rlm_ldap versus the
// compiled Portcullis binary with an [[ldap]] profile; same users, same load generator, alternating rounds.
//
// Both servers reach slapd over plain ldap:// on 127.0.0.1 (no TLS on either side), search as the same
// service account with an RFC 4515-escaped uid filter, then bind as the user's DN:
//   - FreeRADIUS: `ldap` in authorize, `Auth-Type LDAP` in authenticate; one pool of `--fr-pool` (default 32 =
//     its worker threads, 8 opened at start) connections used for searches and user binds alike (rlm_ldap
//     rebinds a connection as the service account before its next search).
//   - Portcullis: its profile defaults unless --ldap-pool, --ldap-pipeline or --ldap-bind-pool say otherwise:
//     4 service connections for searches, each carrying up to 8 pipelined requests, and 32 connections
//     used only for user binds (docs/ldap.md, "Performance"). One server per `--workers` value, each measured in
//     every round: 0 (the default) is the product's default `[radius] workers` (the number of CPUs, at most 8;
//     2 on a 2-core host), each worker with its own pools; its CPU is the supervisor's plus its workers'.
//     `--baseline-bin` adds the same servers from another build (e.g. main's) to the same run.
// Users are password-only on both sides: `default_type = "password"` with `allow_type_password = true`, and
// a client with `--allow-password-only true`.
//
// Needs `slapd` and `ldap-utils` (slapadd, ldapmodify), `openssl`, `freeradius` and `freeradius-ldap`
// (rlm_ldap) from Debian, and a built binary (`bun run build`); installs nothing.

import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import { BASE_DN, PEOPLE, SERVICE_DN, SERVICE_PASSWORD, ssha, startSlapd, type Slapd } from "../../test/integration/helpers/slapd.ts";
import { writeFreeRADIUSLdapConfig } from "./freeradius.ts";
import { runLoad, type LoadResult, type LoadUser } from "../loadgen.ts";
import { cpuMs, freePort, portcullisCLI, summarize, treeCpuMs, waitStatusServer } from "./harness.ts";

/** Options for {@link runLdapBenchmark}. */
export interface LdapBenchmarkOptions {
  bin: string;
  /** Scratch directory (removed by the caller). */
  work: string;
  /** RADIUS shared secret of both servers; never printed. */
  secret: string;
  users: number;
  rounds: number;
  concurrency: number;
  /** Logins per round, cycling over the users (each request one login). */
  requests: number;
  /** rlm_ldap pool max (and FreeRADIUS worker threads). Default 32. */
  freeradiusPool?: number;
  /** Portcullis profile settings; each omitted one keeps the product's default. */
  portcullis?: { poolSize?: number; pipeline?: number; bindPoolSize?: number };
  /**
   * One Portcullis server per entry, each measured in every round: its `[radius] workers` (0: the
   * product's default, the number of CPUs). Default [0].
   */
  workers?: number[];
  /** Another build measured in the same run (each worker count once more), e.g. main's, labelled "baseline". */
  baselineBin?: string;
  /** Spawned servers, killed by the caller's cleanup. */
  children: Bun.Subprocess[];
  /** Synchronous clean-ups the caller runs on SIGINT (here: kill slapd). */
  exitHooks: Array<() => void>;
  info: (msg: string) => void;
}

/** The bench users as LDIF for slapadd, with {SSHA} passwords. */
export function benchUsersLdif(users: readonly { username: string; password: string }[]): string {
  return users
    .map((u) => `dn: uid=${u.username},${PEOPLE}\nobjectClass: inetOrgPerson\nuid: ${u.username}\ncn: ${u.username}\nsn: bench\nuserPassword: ${ssha(u.password)}\n`)
    .join("\n");
}

/** The Portcullis config file for the benchmark: one [[ldap]] profile of password-only users. */
export function portcullisLdapToml({ url, passwordFile, settings = {} }: { url: string; passwordFile: string; settings?: LdapBenchmarkOptions["portcullis"] }): string {
  return [
    "[[ldap]]",
    'name = "bench"',
    `urls = [${JSON.stringify(url)}]`,
    `bind_dn = ${JSON.stringify(SERVICE_DN)}`,
    `bind_password_file = ${JSON.stringify(passwordFile)}`,
    `base_dn = ${JSON.stringify(BASE_DN)}`,
    'user_filter = "(&(objectClass=inetOrgPerson)(uid={username}))"',
    "allow_type_password = true",
    'default_type = "password"',
    "timeout_ms = 3000",
    ...(settings?.poolSize !== undefined ? [`pool_size = ${settings.poolSize}`] : []),
    ...(settings?.pipeline !== undefined ? [`pipeline = ${settings.pipeline}`] : []),
    ...(settings?.bindPoolSize !== undefined ? [`bind_pool_size = ${settings.bindPoolSize}`] : []),
    "",
  ].join("\n");
}

const slapdPid = (s: Slapd) => Number(readFileSync(join(s.dir, "slapd.pid"), "utf8").trim());

/** One login user for the load generator (password-only: `key` is unused). */
const loginUser = (username: string, password: string): LoadUser => ({ username, password, key: new Uint8Array(0), params: { algorithm: "SHA1", digits: 6, period: 30 } });

/**
 * Runs the benchmark and prints a table and one JSON line on stdout.
 * Throws when a peer is missing, a server does not start, or the sanity check fails (a right password
 * not accepted, a wrong password or an unknown user not rejected).
 */
export async function runLdapBenchmark(o: LdapBenchmarkOptions): Promise<void> {
  const { bin, work, secret, rounds, concurrency, info } = o;
  if (!existsSync(bin)) throw new Error(`${bin} not found: run \`bun run build\` first`);
  if (!Bun.which("freeradius")) throw new Error("freeradius not found: apt-get install freeradius freeradius-ldap");
  if (!existsSync("/usr/lib/freeradius/rlm_ldap.so")) throw new Error("rlm_ldap not found: apt-get install freeradius-ldap");
  const frPool = o.freeradiusPool ?? 32;

  const users = Array.from({ length: o.users }, (_, i) => ({ username: `ldapbench${String(i).padStart(6, "0")}`, password: randomBytes(12).toString("base64url") }));
  info(`starting slapd with ${users.length} users`);
  const slapd = await startSlapd({ extraLdif: benchUsersLdif(users), debug: "sync" });
  try {
    const sPid = slapdPid(slapd);
    o.exitHooks.push(() => {
      try {
        process.kill(sPid, "SIGKILL");
      } catch {
        // already gone
      }
    });

    // FreeRADIUS + rlm_ldap.
    const frDir = join(work, "freeradius-ldap");
    const frPort = await freePort();
    writeFreeRADIUSLdapConfig({ dir: frDir, port: frPort, secret, ldapUrl: slapd.url, bindDN: SERVICE_DN, bindPassword: SERVICE_PASSWORD, baseDN: BASE_DN, maxServers: frPool, poolMax: frPool });
    info(`starting FreeRADIUS (rlm_ldap, pool ≤ ${frPool}) on 127.0.0.1:${frPort}`);
    const fr = Bun.spawn(["freeradius", "-f", "-d", frDir], { stdout: "ignore", stderr: Bun.file(join(frDir, "log", "stderr.log")) });
    o.children.push(fr);
    await waitStatusServer(frPort, secret, { timeoutMs: 60_000, everyMs: 50 }).catch((e: Error) => {
      throw new Error(`${e.message}; see ${join(frDir, "log")} (run with --keep)`);
    });

    // Portcullis with one [[ldap]] profile, one server per worker count, each on its own data directory and
    // with its own pools; its audit lines go to a file, as FreeRADIUS logs to one.
    const passwordFile = join(work, "ldap.pass");
    writeFileSync(passwordFile, SERVICE_PASSWORD + "\n", { mode: 0o600 });
    const configFile = join(work, "portcullis-ldap.toml");
    writeFileSync(configFile, portcullisLdapToml({ url: slapd.url, passwordFile, settings: o.portcullis ?? {} }), { mode: 0o600 });
    const pre = ["--config", configFile];
    const variants = [...(o.baselineBin ? (o.workers ?? [0]).map((w) => ({ w, bin: o.baselineBin!, tag: "baseline " })) : []), ...(o.workers ?? [0]).map((w) => ({ w, bin, tag: "" }))];
    const pServers: Array<readonly [string, number, number]> = [];
    for (const { w, bin, tag } of variants) {
      const name = `${tag}${w === 0 ? "portcullis" : `portcullis-w${w}`}`;
      const pDir = join(work, name);
      const env = { PORTCULLIS_RADIUS_WORKERS: String(w), PORTCULLIS_KEY: randomBytes(32).toString("base64") };
      await portcullisCLI(bin, pDir, ["client", "add", "bench", "--address", "127.0.0.1/32", "--secret-stdin", "--allow-password-only", "true"], env, { stdin: secret + "\n", pre });
      const pPort = await freePort();
      const pLog = join(work, `${name}.log`);
      const srv = Bun.spawn([bin, ...pre, "--data-dir", pDir, "serve", "--radius-listen", `127.0.0.1:${pPort}`, "--http-listen", "127.0.0.1:0"], {
        env: { ...process.env, ...env, PORTCULLIS_ADMIN_LISTEN: "127.0.0.1:0" },
        stdout: "ignore",
        stderr: Bun.file(pLog),
      });
      o.children.push(srv);
      info(`starting ${tag}Portcullis (workers = ${w === 0 ? "default" : w}) on 127.0.0.1:${pPort}`);
      await waitStatusServer(pPort, secret, { timeoutMs: 60_000, everyMs: 50 }).catch((e: Error) => {
        throw new Error(`${e.message}; see ${pLog} (run with --keep)`);
      });
      pServers.push([name, pPort, srv.pid] as const);
    }

    const servers: Array<readonly [string, number, number]> = [["freeradius", frPort, fr.pid], ...pServers];
    const load = (list: LoadUser[], port: number, c = concurrency) =>
      runLoad(list, { host: "127.0.0.1", port, secret, concurrency: c, timeoutMs: 5000, maxSeconds: 120, waitForStep: false });

    // Sanity (not timed): right passwords accepted, a wrong password and an unknown user rejected.
    for (const [name, port] of servers) {
      const ok = await load(users.slice(0, 50).map((u) => loginUser(u.username, u.password)), port, 8);
      const bad = await load([loginUser(users[1]!.username, users[1]!.password + "x"), loginUser("ldapbench-nobody", "whatever-Pw1")], port, 1);
      info(`sanity ${name}: right password ${ok.accepts}/50 accepted; wrong password and unknown user: ${bad.rejects}/2 rejected`);
      if (ok.accepts !== 50 || bad.rejects !== 2) throw new Error(`sanity check failed for ${name}: ${JSON.stringify({ ok, bad })}`);
    }

    // Requests cycle over the users; each is one login (search + bind on both servers).
    const list = Array.from({ length: o.requests }, (_, i) => loginUser(users[i % users.length]!.username, users[i % users.length]!.password));
    // Warm-up (not recorded): one full round each fills the connection pools and warms the JIT.
    for (const [name, port] of servers) {
      info(`warm-up: ${name}`);
      await load(list, port);
    }

    type Cpu = { server_ms_per_req: number; slapd_ms_per_req: number; loadgen_ms_per_req: number };
    const results: Record<string, LoadResult[]> = Object.fromEntries(servers.map(([name]) => [name, []]));
    const cpu: Record<string, Cpu[]> = Object.fromEntries(servers.map(([name]) => [name, []]));
    for (let r = 1; r <= rounds; r++) {
      for (const [name, port, pid] of servers) {
        info(`round ${r}/${rounds}: ${name}`);
        // A supervisor's CPU includes its RADIUS workers'; FreeRADIUS's threads are one process.
        const s0 = treeCpuMs(pid), d0 = cpuMs(sPid), l0 = process.cpuUsage();
        const res = await load(list, port);
        const lu = process.cpuUsage(l0);
        const per = (x: number) => Math.round((x / Math.max(1, res.accepts + res.rejects)) * 1000) / 1000;
        const c = { server_ms_per_req: per(treeCpuMs(pid) - s0), slapd_ms_per_req: per(cpuMs(sPid) - d0), loadgen_ms_per_req: per((lu.user + lu.system) / 1000) };
        info(`  ${JSON.stringify(res)} cpu ${JSON.stringify(c)}`);
        results[name]!.push(res);
        cpu[name]!.push(c);
      }
    }
    for (const c of o.children) if (c.exitCode === null && !c.killed) c.kill("SIGTERM");
    await Promise.all(o.children.map((c) => c.exited));

    const med = (xs: number[]) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)]!;
    const cpuSummary = (xs: Cpu[]) => ({
      server_ms_per_req: med(xs.map((x) => x.server_ms_per_req)),
      slapd_ms_per_req: med(xs.map((x) => x.slapd_ms_per_req)),
      loadgen_ms_per_req: med(xs.map((x) => x.loadgen_ms_per_req)),
    });
    const fs = summarize(results.freeradius!);
    const fc = cpuSummary(cpu.freeradius!);
    const ps = pServers.map(([name], i) => ({ name, workers: variants[i]!.w, tag: variants[i]!.tag, s: summarize(results[name]!), c: cpuSummary(cpu[name]!) }));
    const label = (p: { workers: number; tag: string }) => `${p.tag ? "baseline " : ""}${p.workers === 0 ? "Portcullis (default)" : `Portcullis workers=${p.workers}`}`;
    const pad = (s: string, n: number) => s.padStart(n);
    const row = (name: string, s: ReturnType<typeof summarize>, c: ReturnType<typeof cpuSummary>) =>
      `${name.padEnd(22)}${pad(String(s.rps), 10)}${pad(s.p50_ms.toFixed(2), 10)}${pad(s.p99_ms.toFixed(2), 10)}${pad(c.server_ms_per_req.toFixed(3), 13)}${pad(c.slapd_ms_per_req.toFixed(3), 14)}   rounds ${s.rps_rounds.join("/")}; accepts ${s.accepts.join("/")}, rejects ${s.rejects.join("/")}, timeouts ${s.timeouts.join("/")}, invalid ${s.invalid.join("/")}, replies without MA ${s.reply_ma_missing.join("/")}`;
    process.stdout.write(
      [
        "",
        `LDAP-password (PAP) logins against one slapd (ldap:// on 127.0.0.1), ${o.users} users, ${o.requests} logins per round, ${concurrency} in flight, ${rounds} rounds each (medians)`,
        `${"server".padEnd(22)}${pad("req/s", 10)}${pad("p50 ms", 10)}${pad("p99 ms", 10)}${pad("cpu ms/req", 13)}${pad("slapd ms/req", 14)}`,
        row("FreeRADIUS (rlm_ldap)", fs, fc),
        ...ps.map((p) => row(label(p), p.s, p.c)),
        ...ps.map((p) => `ratio ${label(p)}/FreeRADIUS (req/s): ${(p.s.rps / fs.rps).toFixed(2)}; p99 ${p.s.p99_ms.toFixed(2)} ms vs ${fs.p99_ms.toFixed(2)} ms`),
        `load generator CPU per request: FreeRADIUS ${fc.loadgen_ms_per_req.toFixed(3)}; ${ps.map((p) => `${label(p)} ${p.c.loadgen_ms_per_req.toFixed(3)}`).join("; ")} ms`,
        "",
      ].join("\n"),
    );
    process.stdout.write(
      JSON.stringify({
        workload: "ldap",
        users: o.users,
        requests: o.requests,
        concurrency,
        rounds,
        freeradius_pool: frPool,
        portcullis_settings: o.portcullis ?? {},
        freeradius: { ...fs, cpu: fc },
        portcullis: ps.map((p) => ({ workers: p.workers, ...(p.tag ? { baseline: true } : {}), ...p.s, cpu: p.c, ratio_rps: p.s.rps / fs.rps })),
      }) + "\n",
    );
  } finally {
    await slapd.stop();
  }
}
