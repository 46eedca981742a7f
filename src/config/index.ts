// Configuration: the schema, the loader (file → env → flags) and the generated reference.
export { configSchema, isCountryCode, isLdapURL, isPushSubject, isListenAddress, isUserFilter, parseCIDR, PROFILE_NAME, type Config, type FieldKind, type LdapConfig } from "./schema.ts";
export { CONFIG_FIELDS, CONFIG_SECTIONS, CONFIG_TABLE_ARRAYS, fieldAt, type ConfigField, type ConfigSection, type ConfigTableArray } from "./fields.ts";
export { endpointProfiles } from "./endpoints.ts";
export { ldapPasswordEnv, ldapProfiles, ldapWarnings } from "./ldap.ts";
export {
  ConfigError,
  configWarnings,
  DEFAULT_DATA_DIR,
  loadConfig,
  SYSTEM_CONFIG_FILE,
  type ConfigOverride,
  type LoadedConfig,
  type LoadOptions,
} from "./load.ts";
export { renderConfigReference } from "./reference.ts";
