// Types for the embedded dictionary files, imported as text (`with { type: "text" }`) by ../dictionary.ts.
declare module "*/dictionary.rfc2865" { const text: string; export default text; }
declare module "*/dictionary.rfc2866" { const text: string; export default text; }
declare module "*/dictionary.rfc2869" { const text: string; export default text; }
declare module "*/dictionary.rfc3162" { const text: string; export default text; }
declare module "*/dictionary.rfc3576" { const text: string; export default text; }
declare module "*/dictionary.rfc5176" { const text: string; export default text; }
declare module "*/dictionary.microsoft" { const text: string; export default text; }
declare module "*/dictionary.cisco" { const text: string; export default text; }
declare module "*/dictionary.juniper" { const text: string; export default text; }
declare module "*/dictionary.fortinet" { const text: string; export default text; }
declare module "*/dictionary.paloalto" { const text: string; export default text; }
