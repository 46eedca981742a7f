// Generates minimal FreeRADIUS 3.2 configurations in a temp dir: rlm_totp + files for the OTP benchmark,
// rlm_ldap (Debian package `freeradius-ldap`) for the LDAP-password benchmark.
//
// The policy mirrors Portcullis's `--first-factor none` client: User-Password is the TOTP code alone.
// rlm_totp accepts only the current time step and keeps no replay state; Portcullis does both
// (±1 step window, high-water mark committed before the reply), so the comparison is generous to FreeRADIUS.

import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";

/** One benchmark user as FreeRADIUS sees it. */
export interface FreeRADIUSUser {
  username: string;
  base32Secret: string;
}

/** Options for {@link writeFreeRADIUSConfig}. */
export interface FreeRADIUSConfigOptions {
  dir: string;
  port: number;
  secret: string;
  users: readonly FreeRADIUSUser[];
  /** Worker threads (FreeRADIUS default pool is 5..32). */
  maxServers?: number;
}

/**
 * Writes radiusd.conf, dictionary, the users file and the log/run dirs under `dir`.
 * Throws on file-system errors only.
 */
export function writeFreeRADIUSConfig({ dir, port, secret, users, maxServers = 32 }: FreeRADIUSConfigOptions): void {
  for (const d of ["log", "run", "acct"]) mkdirSync(join(dir, d), { recursive: true });
  writeFileSync(join(dir, "dictionary"), "$INCLUDE /usr/share/freeradius/dictionary\n");
  // `files` puts check items with := into the control list: control:TOTP-Secret.
  writeFileSync(
    join(dir, "users"),
    users.map((u) => `"${u.username}"\tTOTP-Secret := "${u.base32Secret}"\n`).join(""),
    { mode: 0o600 },
  );
  const conf = radiusdConf({
    dir,
    port,
    secret,
    maxServers,
    title: "FreeRADIUS 3.2 + rlm_totp",
    modules: `	totp {
	}
	files {
		filename = ${dir}/users
	}`,
    authorize: `		files
		if (&control:TOTP-Secret) {
			update request {
				&TOTP-Password := &User-Password
			}
			update control {
				&Auth-Type := TOTP
			}
		}`,
    authenticate: `		Auth-Type TOTP {
			totp
		}`,
  });
  writeFileSync(join(dir, "radiusd.conf"), conf, { mode: 0o600 });
}

/** The LDAP server and service account rlm_ldap searches with (the same slapd Portcullis uses). */
export interface FreeRADIUSLdapOptions {
  dir: string;
  port: number;
  secret: string;
  /** ldap://127.0.0.1:PORT (plain LDAP on loopback, as for Portcullis). */
  ldapUrl: string;
  bindDN: string;
  /** The service account's password; written into the 0600 radiusd.conf only. */
  bindPassword: string;
  baseDN: string;
  /** uid attribute the User-Name is matched against, inside an objectClass=inetOrgPerson filter. */
  uidAttribute?: string;
  /** Worker threads (FreeRADIUS default pool is 5..32). */
  maxServers?: number;
  /** rlm_ldap connection pool: start/min and max connections (default 8 and 32, max = worker threads). */
  poolStart?: number;
  poolMax?: number;
  /** rlm_ldap per-operation timeouts in seconds (res_timeout, srv_timelimit, net_timeout; default 3). */
  timeoutSeconds?: number;
}

/**
 * Writes radiusd.conf and dictionary for PAP via `Auth-Type LDAP`: `ldap` in authorize searches as
 * the service account (rlm_ldap escapes the User-Name for the filter, RFC 4515), authenticate binds
 * as the user's DN on a pooled connection (rlm_ldap rebinds it as the service account before its
 * next search). Throws TypeError for a URL that is not ldap://HOST:PORT; otherwise on file-system
 * errors only.
 */
export function writeFreeRADIUSLdapConfig(opts: FreeRADIUSLdapOptions): void {
  const { dir, port, secret, bindDN, bindPassword, baseDN, uidAttribute = "uid", maxServers = 32, poolStart = 8, poolMax = maxServers, timeoutSeconds = 3 } = opts;
  const m = /^ldap:\/\/([^/:]+):(\d+)\/?$/.exec(opts.ldapUrl);
  if (!m) throw new TypeError("ldapUrl must be ldap://HOST:PORT");
  for (const d of ["log", "run", "acct"]) mkdirSync(join(dir, d), { recursive: true });
  writeFileSync(join(dir, "dictionary"), "$INCLUDE /usr/share/freeradius/dictionary\n");
  // FreeRADIUS config strings: a double-quoted value expands %{...}; single quotes keep it literal.
  const lit = (v: string) => {
    if (/['\\\n]/.test(v)) throw new TypeError("LDAP settings must not contain quotes, backslashes or newlines");
    return `'${v}'`;
  };
  const conf = radiusdConf({
    dir,
    port,
    secret,
    maxServers,
    title: "FreeRADIUS 3.2 + rlm_ldap (PAP, bind as the user)",
    modules: `	ldap {
		server = ${lit(m[1]!)}
		port = ${m[2]}
		identity = ${lit(bindDN)}
		password = ${lit(bindPassword)}
		base_dn = ${lit(baseDN)}
		user {
			base_dn = "\${..base_dn}"
			filter = "(&(objectClass=inetOrgPerson)(${uidAttribute}=%{%{Stripped-User-Name}:-%{User-Name}}))"
			scope = 'sub'
		}
		options {
			chase_referrals = no
			rebind = no
			res_timeout = ${timeoutSeconds}
			srv_timelimit = ${timeoutSeconds}
			net_timeout = ${timeoutSeconds}
			idle = 60
			probes = 3
			interval = 3
			ldap_debug = 0x0000
		}
		tls {
			start_tls = no
		}
		pool {
			start = ${poolStart}
			min = ${poolStart}
			max = ${poolMax}
			spare = ${poolMax - poolStart}
			uses = 0
			retry_delay = 1
			lifetime = 0
			idle_timeout = 0
		}
	}`,
    authorize: `		ldap
		if ((ok || updated) && &User-Password) {
			update control {
				&Auth-Type := LDAP
			}
		}`,
    authenticate: `		Auth-Type LDAP {
			ldap
		}`,
  });
  writeFileSync(join(dir, "radiusd.conf"), conf, { mode: 0o600 });
}

interface RadiusdParts {
  dir: string;
  port: number;
  secret: string;
  maxServers: number;
  title: string;
  /** Body of the modules { } section. */
  modules: string;
  /** Bodies of the virtual server's authorize { } and authenticate { } sections. */
  authorize: string;
  authenticate: string;
}

/** radiusd.conf for one auth listener on 127.0.0.1, one client (Message-Authenticator required), files logging only. */
function radiusdConf({ dir, port, secret, maxServers, title, modules, authorize, authenticate }: RadiusdParts): string {
  return `# generated by scripts/bench-radius; ${title}, 127.0.0.1 only
prefix = /usr
exec_prefix = /usr
sysconfdir = /etc
localstatedir = ${dir}
sbindir = /usr/sbin
logdir = ${dir}/log
raddbdir = ${dir}
radacctdir = ${dir}/acct
name = freeradius
confdir = ${dir}
modconfdir = ${dir}
run_dir = ${dir}/run
db_dir = ${dir}
libdir = /usr/lib/freeradius
pidfile = ${dir}/run/radiusd.pid
max_request_time = 30
cleanup_delay = 5
max_requests = 262144
hostname_lookups = no

log {
	destination = files
	file = ${dir}/log/radius.log
	colourise = no
	stripped_names = no
	auth = no
	auth_badpass = no
	auth_goodpass = no
}

security {
	allow_core_dumps = no
	max_attributes = 200
	reject_delay = 0
	status_server = yes
}

thread pool {
	start_servers = 5
	max_servers = ${maxServers}
	min_spare_servers = 3
	max_spare_servers = ${maxServers}
	max_requests_per_server = 0
	max_queue_size = 65536
	auto_limit_acct = no
}

client bench {
	ipaddr = 127.0.0.1
	secret = ${secret}
	require_message_authenticator = yes
	limit_proxy_state = yes
}

modules {
${modules}
}

server default {
	listen {
		type = auth
		ipaddr = 127.0.0.1
		port = ${port}
	}

	authorize {
${authorize}
	}

	authenticate {
${authenticate}
	}
}
`;
}
