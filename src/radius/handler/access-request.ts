// Access-Request handler: an authenticated packet → one engine call → reply attributes.
// It hashes, verifies and stores nothing itself; the codec did authenticity, the engine decides.

import type { Attempt, Decision, Engine } from "../../auth/engine.ts";
import type { RadiusClient } from "../../store/types.ts";
import {
  Attr,
  Code,
  RADIUSError,
  getAttribute,
  integerAttribute,
  revealUserPassword,
  textAttribute,
  type RADIUSPacket,
  type RawAttribute,
} from "../codec/index.ts";

/** The reply to send: code and attributes; the server adds Message-Authenticator and Proxy-State. */
export interface Reply {
  code: number;
  attributes: RawAttribute[];
}

/** One generic text for every reject: it never tells whether the user exists (DESIGN, generic rejects). */
export const REJECT_MESSAGE = "Authentication failed";

const utf8 = new TextDecoder("utf-8", { fatal: false });

/** Why a request gets no reply at all. */
export type Drop = { drop: "malformed" | "overloaded" };

/**
 * Turns a verified Access-Request into an engine attempt and the engine's decision into a reply,
 * or into a drop: a User-Password that is not a valid hidden value is malformed, and an
 * overloaded appliance stays silent so that the NAS retries or fails over.
 */
export async function handleAccessRequest(
  engine: Engine,
  client: RadiusClient,
  secret: Uint8Array,
  packet: RADIUSPacket,
  now: number,
): Promise<Reply | Drop> {
  const userName = getAttribute(packet, Attr.UserName);
  const hidden = getAttribute(packet, Attr.UserPassword);
  const state = getAttribute(packet, Attr.State);

  let method: Attempt["method"] = "other";
  let typed: string | undefined;
  if (hidden) {
    let revealed: Uint8Array;
    try {
      revealed = revealUserPassword(hidden, secret, packet.authenticator);
    } catch (err) {
      if (err instanceof RADIUSError) return { drop: "malformed" };
      throw err;
    }
    method = "pap";
    typed = utf8.decode(revealed);
  } else if (getAttribute(packet, Attr.CHAPPassword)) {
    method = "chap";
  }

  const attempt: Attempt = {
    channel: {
      kind: "radius",
      name: client.name,
      firstFactor: client.firstFactor,
      otpMode: client.otpMode,
      allowPasswordOnly: client.allowPasswordOnly,
    },
    username: userName ? utf8.decode(userName) : "",
    method,
    now,
  };
  if (typed !== undefined) attempt.secret = typed;
  if (state) attempt.state = state;

  const decision = await engine.authenticate(attempt);
  return decision.kind === "drop" ? { drop: decision.reason } : toReply(decision);
}

/** RFC 2865 §4.4: an Access-Challenge carries only Reply-Message, State, VSAs, Session-Timeout, Idle-Timeout, Proxy-State. */
function toReply(decision: Exclude<Decision, { kind: "drop" }>): Reply {
  switch (decision.kind) {
    case "accept":
      return { code: Code.AccessAccept, attributes: [] };
    case "reject":
      return { code: Code.AccessReject, attributes: replyMessage(REJECT_MESSAGE) };
    case "challenge":
      return {
        code: Code.AccessChallenge,
        attributes: [
          ...replyMessage(decision.prompt),
          { type: Attr.State, value: decision.state },
          integerAttribute(Attr.SessionTimeout, decision.timeoutS),
        ],
      };
  }
}

/** Reply-Message, split into 253-octet attributes on UTF-8 character boundaries (RFC 2865 §5.18). */
function replyMessage(text: string): RawAttribute[] {
  const out: RawAttribute[] = [];
  let chunk = "";
  let size = 0;
  for (const ch of text) {
    const n = Buffer.byteLength(ch, "utf8");
    if (size + n > 253) {
      out.push(textAttribute(Attr.ReplyMessage, chunk));
      chunk = "";
      size = 0;
    }
    chunk += ch;
    size += n;
  }
  if (chunk) out.push(textAttribute(Attr.ReplyMessage, chunk));
  return out;
}
