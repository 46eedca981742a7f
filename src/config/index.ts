// Configuration: the schema, the loader (file → env → flags) and the generated reference.
export { configSchema, isCountryCode, isListenAddress, parseCIDR, type Config, type FieldKind } from "./schema.ts";
export { CONFIG_FIELDS, CONFIG_SECTIONS, fieldAt, type ConfigField, type ConfigSection } from "./fields.ts";
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
