// The input rules moved to the admin operations (admin/validate.ts); re-exported here for the
// modules and tests that still import them from the CLI.
export { cleanUsername, isEmail, normalizePhone, PHONE_RULE } from "../admin/validate.ts";
