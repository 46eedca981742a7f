// QR renderings of otpauth URIs: compact terminal blocks for the CLI, SVG for web pages.

// qrcode is loaded on first use: it is needed only when a token is enrolled, not at every start-up.
const qrcode = () => import("qrcode").then((m) => m.default);

/** Renders `text` as a small (half-block) QR code for a terminal. Rejects when `text` is too long for a QR code. */
export async function terminalQR(text: string): Promise<string> {
  return (await qrcode()).toString(text, { type: "terminal", small: true, errorCorrectionLevel: "M" });
}

/** Renders `text` as an SVG document. Rejects when `text` is too long for a QR code. */
export async function svgQR(text: string): Promise<string> {
  return (await qrcode()).toString(text, { type: "svg", margin: 2, errorCorrectionLevel: "M" });
}
