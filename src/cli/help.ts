// The text of `portcullis --help` and `portcullis GROUP --help`.

import { ADMIN_USAGE } from "./admin.ts";
import { APIKEY_USAGE } from "./apikey.ts";
import { CLIENT_USAGE } from "./client.ts";
import { DEVICE_USAGE } from "./device.ts";
import { ENDPOINT_USAGE } from "./endpoint.ts";
import { KEY_USAGE } from "./key.ts";
import { LDAP_USAGE } from "./ldap.ts";
import { STORE_USAGE } from "./store.ts";
import { TOKEN_USAGE } from "./token.ts";
import { SWITCH_USAGE } from "./switch.ts";
import { USER_USAGE } from "./user.ts";

export const SERVE_USAGE = ["portcullis serve [--radius-listen ADDR:PORT]... [--http-listen ADDR:PORT]"];

const GROUPS: Record<string, string[]> = {
  serve: SERVE_USAGE,
  client: CLIENT_USAGE,
  user: USER_USAGE,
  token: TOKEN_USAGE,
  device: DEVICE_USAGE,
  apikey: APIKEY_USAGE,
  endpoint: ENDPOINT_USAGE,
  key: KEY_USAGE,
  admin: ADMIN_USAGE,
  store: STORE_USAGE,
  ldap: LDAP_USAGE,
  switch: SWITCH_USAGE,
};

const GLOBAL = `Global flags:
  --config FILE     configuration file (also $PORTCULLIS_CONFIG); default: the first of
                    DATA_DIR/portcullis.toml and /etc/portcullis/portcullis.toml that exists
  --data-dir DIR    data directory (also $PORTCULLIS_DATA_DIR, data_dir in the file); default ./data
  -h, --help        show help
  --version         show the version

Users from LDAP or Active Directory come from [[ldap]] profiles in the configuration file; a
client may name the ones it uses (client add --directories corp,local), and user add --directory
creates a local record for a directory user that holds their tokens and local overrides.

Secrets are best given on standard input (--secret-stdin, --password-stdin) so that they do not
appear in the process list or shell history. See docs/cli.md and docs/configuration.md.
`;

/** Help for one command group, or for everything when `group` is undefined or unknown. */
export function helpText(group?: string): string {
  const usage = group !== undefined && GROUPS[group] ? GROUPS[group] : Object.values(GROUPS).flat();
  const head = group !== undefined && GROUPS[group] ? "" : "Portcullis: RADIUS + TOTP multi-factor authentication appliance.\n\n";
  return `${head}Usage:\n${usage.map((u) => `  ${u}`).join("\n")}\n\n${GLOBAL}`;
}

export const COMMAND_GROUPS = Object.keys(GROUPS);
