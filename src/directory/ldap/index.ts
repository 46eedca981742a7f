// LDAP/AD directory profiles: named re-exports only.
export { createLdapDirectory, LdapDirectory, type LdapDirectoryOptions } from "./directory.ts";
export { escapeDNValue, escapeFilterValue, normalizeDN, userFilter } from "./escape.ts";
export { UrlHealth, type LogFn } from "./connection.ts";
