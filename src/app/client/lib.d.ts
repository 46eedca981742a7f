// lib.js is served as text (imported `with { type: "text" }` by src/app/routes.tsx), never run by Bun.
declare const text: string;
export default text;
