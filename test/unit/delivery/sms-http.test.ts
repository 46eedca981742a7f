// HTTP SMS gateway helpers: value encodings, template rendering, the request built, provider IDs, construction errors.
import { describe, expect, test } from "bun:test";
import { createSmsHttpChannel, formEncode, gatewayRequest, jsonEscape, providerIdFrom, renderTemplate } from "../../../src/delivery/sms-http.ts";

test.each([
  ["a b", "a+b"],
  ["+46701234567", "%2B46701234567"],
  ["x&y=z", "x%26y%3Dz"],
  ["åäö", "%C3%A5%C3%A4%C3%B6"],
  ["https://h/p?q=1", "https%3A%2F%2Fh%2Fp%3Fq%3D1"],
  ["!'()~*", "%21%27%28%29%7E*"],
])("formEncode(%p) = %p", (input, expected) => {
  expect(formEncode(input)).toBe(expected);
  expect(new URLSearchParams(`v=${expected}`).get("v")).toBe(input);
});

test.each([
  ['say "hi"', 'say \\"hi\\"'],
  ["line\nbreak", "line\\nbreak"],
  ["back\\slash", "back\\\\slash"],
  ["\u0001", "\\u0001"],
])("jsonEscape(%p)", (input, expected) => {
  expect(jsonEscape(input)).toBe(expected);
  expect(JSON.parse(`"${jsonEscape(input)}"`)).toBe(input);
});

describe("renderTemplate", () => {
  test("one pass: placeholders inside the values are not expanded", () => {
    expect(renderTemplate("to={to}&d={to_digits}&m={message}", { to: "+4670", message: "{to} {message}" }, (s) => s)).toBe("to=+4670&d=4670&m={to} {message}");
  });
});

test("gatewayRequest: configured headers override the generated ones; redirects are manual", () => {
  const { url, init } = gatewayRequest(
    { url: "https://gw.example/sms", method: "POST", contentType: "json", body: '{"t":"{to}","m":"{message}"}', headers: { "Content-Type": "application/json; charset=utf-8" }, basicAuth: { user: "u", password: "p" }, timeoutMs: 1000 },
    { to: "+46701234567", text: "hi" },
  );
  expect(url).toBe("https://gw.example/sms");
  expect(init).toEqual({
    method: "POST",
    headers: { Authorization: "Basic dTpw", "Content-Type": "application/json; charset=utf-8" },
    body: '{"t":"+46701234567","m":"hi"}',
    redirect: "manual",
  });
});

test.each([
  ['{"sid":"SM123"}', "SM123"],
  ['{"id":"s70df"}', "s70df"],
  ['{"messages":[{"message-id":"0C00","status":"0"}]}', "0C00"],
  ['{"id":42}', undefined],
  ['{"id":"has space"}', undefined],
  ["OK 12345", undefined],
  ["null", undefined],
])("providerIdFrom(%p)", (body, expected) => {
  expect(providerIdFrom(body)).toBe(expected);
});

test.each([
  ["ftp URL", { url: "ftp://gw.example/" }],
  ["body without {message}", { body: "to={to}" }],
  ["body without {to}", { body: "m={message}" }],
])("construction refuses %s", (_, patch) => {
  expect(() => createSmsHttpChannel({ url: "https://gw.example/", method: "POST", contentType: "form", body: "to={to}&m={message}", timeoutMs: 1000, ...patch })).toThrow(TypeError);
});
