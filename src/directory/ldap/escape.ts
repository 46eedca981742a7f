// LDAP string escaping: RFC 4515 filter assertion values, RFC 4514 DN attribute values, and user filter templates.

/**
 * Escapes a value for use inside an RFC 4515 filter (§3: `valueencoding`).
 *
 * `*`, `(`, `)`, `\` and NUL must be escaped as `\XX`; we also escape the other ASCII control
 * characters (0x01-0x1F, 0x7F), which RFC 4515 allows. Non-ASCII characters are left as UTF-8
 * (`UTFMB` in the §3 grammar): escaping their bytes one by one is also legal, but ldapts's filter
 * parser decodes each `\XX` as one UTF-16 code unit and would re-encode `\c3\a9` as four bytes,
 * so the server would search for the wrong value. Unpaired surrogates cannot be encoded as UTF-8
 * and become U+FFFD, which can only match itself.
 */
export function escapeFilterValue(value: string): string {
  let out = "";
  for (const ch of value.toWellFormed()) {
    const c = ch.codePointAt(0)!;
    if (c === 0x2a || c === 0x28 || c === 0x29 || c === 0x5c || c < 0x20 || c === 0x7f) {
      out += "\\" + c.toString(16).padStart(2, "0");
    } else {
      out += ch;
    }
  }
  return out;
}

/**
 * Escapes a string for use as an attribute value in a DN (RFC 4514 §2.4): `"`, `+`, `,`, `;`,
 * `<`, `>`, `\`, `=` and NUL anywhere, `#` or a space at the start, and a space at the end.
 */
export function escapeDNValue(value: string): string {
  let out = "";
  const chars = [...value.toWellFormed()];
  chars.forEach((ch, i) => {
    if (ch === "\0") out += "\\00";
    else if ('"+,;<>\\='.includes(ch)) out += "\\" + ch;
    else if (i === 0 && (ch === "#" || ch === " ")) out += "\\" + ch;
    else if (i === chars.length - 1 && ch === " ") out += "\\ ";
    else out += ch;
  });
  return out;
}

/**
 * Fills a filter template such as `(&(objectClass=user)(sAMAccountName={username}))`: every
 * `{username}` becomes the RFC 4515-escaped name, so a User-Name like `*)(uid=*` stays one
 * assertion value. Throws TypeError when the template has no `{username}` (a configuration error).
 */
export function userFilter(template: string, username: string): string {
  if (!template.includes("{username}")) throw new TypeError("ldap user_filter must contain {username}");
  return template.replaceAll("{username}", escapeFilterValue(username));
}

/**
 * Normalises a DN for comparison: RDNs trimmed, attribute types lower-cased, values compared
 * case-insensitively (the usual matching rule for names in AD and OpenLDAP), escapes of
 * printable characters kept as written by the server. Not a full RFC 4517 distinguishedNameMatch:
 * enough to compare the DNs a server returns with the DNs an administrator configured.
 */
export function normalizeDN(dn: string): string {
  const rdns: string[] = [];
  let cur = "";
  for (let i = 0; i < dn.length; i++) {
    const ch = dn[i]!;
    if (ch === "\\" && i + 1 < dn.length) {
      cur += ch + dn[i + 1];
      i++;
    } else if (ch === ",") {
      rdns.push(cur);
      cur = "";
    } else cur += ch;
  }
  rdns.push(cur);
  return rdns
    .map((rdn) =>
      rdn
        .split("+")
        .map((ava) => {
          const eq = ava.indexOf("=");
          if (eq < 0) return ava.trim().toLowerCase();
          return ava.slice(0, eq).trim().toLowerCase() + "=" + unescapeHexPairs(ava.slice(eq + 1).trim()).toLowerCase();
        })
        .join("+"),
    )
    .join(",")
    .normalize("NFC");
}

/** `\41` → `A` for printable ASCII only, so `cn=a\2cb` and `cn=a\,b` compare equal. */
function unescapeHexPairs(v: string): string {
  return v.replace(/\\([0-9a-fA-F]{2})/g, (m, hex: string) => {
    const c = parseInt(hex, 16);
    if (c < 0x20 || c > 0x7e) return m;
    const ch = String.fromCharCode(c);
    return '"+,;<>\\=#'.includes(ch) ? "\\" + ch : ch;
  });
}
