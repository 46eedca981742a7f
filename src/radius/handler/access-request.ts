// Access-Request handler: an authenticated packet → one engine call → reply attributes.
// It hashes, verifies and stores nothing itself; the codec did authenticity, the engine decides.

import { log } from "../../audit/log.ts";
import type { Attempt, Decision, Engine, ReplyAttribute } from "../../auth/engine.ts";
import { stationSource } from "../../auth/sources.ts";
import type { RadiusClient } from "../../store/types.ts";
import {
  Attr,
  Code,
  RADIUSError,
  getAttribute,
  integerAttribute,
  resolveReplyAttribute,
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

const MALFORMED: Drop = Object.freeze({ drop: "malformed" });
/** An accept without reply attributes; frozen, so a caller that pushed onto it would throw instead of changing every later reply. */
const NO_REPLY_ATTRIBUTES = Object.freeze([]) as unknown as RawAttribute[];

/**
 * Turns a verified Access-Request into an engine attempt and the engine's decision into a reply,
 * or into a drop: a User-Password that is not a valid hidden value is malformed, and an
 * overloaded appliance stays silent so that the NAS retries or fails over.
 */
export function handleAccessRequest(
  engine: Engine,
  client: RadiusClient,
  secret: Uint8Array,
  packet: RADIUSPacket,
  now: number,
): Promise<Reply | Drop> {
  return decideAccessRequest(engine, client, secret, packet, now).then(replyFor);
}

/** The reply for what decideAccessRequest settled with: a drop stays a drop. */
export function replyFor(outcome: Decision | Drop): Reply | Drop {
  if ("drop" in outcome) return outcome;
  return outcome.kind === "drop" ? { drop: outcome.reason } : toReply(outcome);
}

/**
 * handleAccessRequest without its last step: the engine's decision (or a malformed drop), for a
 * caller that maps it with replyFor itself (the server, which saves a promise step a request).
 */
export function decideAccessRequest(
  engine: Engine,
  client: RadiusClient,
  secret: Uint8Array,
  packet: RADIUSPacket,
  now: number,
): Promise<Decision | Drop> {
  let attempt: Attempt | Drop;
  try {
    attempt = attemptFor(client, secret, packet, now);
  } catch (err) {
    return Promise.reject(err);
  }
  return decideAttempt(engine, attempt);
}

/** The engine's decision for an attempt (attemptFor), or the drop attemptFor gave. */
export function decideAttempt(engine: Engine, attempt: Attempt | Drop): Promise<Decision | Drop> {
  return "drop" in attempt ? Promise.resolve(attempt) : engine.authenticate(attempt);
}

/**
 * The engine attempt a verified Access-Request stands for, or a malformed drop (a User-Password
 * that is not a valid hidden value). Throws only for what is not a RADIUSError (a bug).
 */
export function attemptFor(client: RadiusClient, secret: Uint8Array, packet: RADIUSPacket, now: number): Attempt | Drop {
  const userName = getAttribute(packet, Attr.UserName);
  const hidden = getAttribute(packet, Attr.UserPassword);
  const state = getAttribute(packet, Attr.State);

  let method: Attempt["method"] = "other";
  let typed: string | undefined;
  if (getAttribute(packet, Attr.EAPMessage)) {
    // RFC 3579: a server without EAP answers Access-Reject. The engine refuses the attempt before
    // any check, so nothing else in the packet is looked at (not even a User-Password beside it).
    method = "eap";
  } else if (hidden) {
    let revealed: Uint8Array;
    try {
      revealed = revealUserPassword(hidden, secret, packet.authenticator);
    } catch (err) {
      if (err instanceof RADIUSError) return MALFORMED;
      throw err;
    }
    method = "pap";
    typed = utf8.decode(revealed);
    revealed.fill(0); // the string is all that is needed from here on (codec/user-password.ts asks callers to zero it)
  } else if (getAttribute(packet, Attr.CHAPPassword)) {
    method = "chap";
  }

  const attempt: Attempt = {
    channel: channelOf(client),
    username: userName ? utf8.decode(userName) : "",
    method,
    now,
  };
  if (typed !== undefined) attempt.secret = typed;
  if (state) attempt.state = state;
  // The lockout's source: the calling station the NAS reports (RFC 2865 §5.31), read like every
  // attribute only from a packet whose authenticity the server checked. Without one, the engine
  // uses the client itself.
  const station = getAttribute(packet, Attr.CallingStationId);
  if (station) {
    const source = stationSource(utf8.decode(station));
    if (source !== undefined) attempt.source = source;
  }

  return attempt;
}

const channels = new WeakMap<RadiusClient, Attempt["channel"]>();

/**
 * A client's channel description, made once per client record and frozen (the engine only reads
 * it). Keyed by the record itself: a client table reload brings new records, so a changed client
 * gets a new channel and the old one goes with its record.
 */
function channelOf(client: RadiusClient): Attempt["channel"] {
  let channel = channels.get(client);
  if (!channel) {
    channel = Object.freeze({
      kind: "radius",
      name: client.name,
      firstFactor: client.firstFactor,
      otpMode: client.otpMode,
      allowPasswordOnly: client.allowPasswordOnly,
      directories: client.directories ?? null,
      phone: Object.freeze({
        approvalHoldS: client.approvalHoldS,
        approvalMode: client.approvalMode,
        approvalNumberMatch: client.approvalNumberMatch,
        smsCodeLength: client.smsCodeLength,
        smsCodeAlphabet: client.smsCodeAlphabet,
      }),
    });
    channels.set(client, channel);
  }
  return channel;
}

/**
 * The reply for a decision. RFC 2865 §4.4: an Access-Challenge carries only Reply-Message, State,
 * VSAs, Session-Timeout, Idle-Timeout, Proxy-State; the group reply attributes go on the final
 * Access-Accept only. A reject shows the generic text unless the engine set a clear one (only after
 * a proven password, auth/messages.ts).
 */
export function toReply(decision: Exclude<Decision, { kind: "drop" }>): Reply {
  switch (decision.kind) {
    case "accept": {
      if (decision.attributes === undefined || decision.attributes.length === 0) return { code: Code.AccessAccept, attributes: NO_REPLY_ATTRIBUTES };
      const encoded = encodeReplyAttributes(decision.attributes);
      if (encoded) return { code: Code.AccessAccept, attributes: encoded };
      // Fail closed: an attribute that limits the session (Filter-Id, a VSA role) must not go missing.
      return { code: Code.AccessReject, attributes: replyMessage(REJECT_MESSAGE) };
    }
    case "reject":
      return { code: Code.AccessReject, attributes: replyMessage(decision.message ?? REJECT_MESSAGE) };
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

/** Room for reply attributes: 4096 minus the header, Message-Authenticator and some Proxy-State (RFC 2865 §3). */
const REPLY_ATTRIBUTE_BUDGET = 4096 - 20 - 18 - 512;

/**
 * Encodes reply attributes by dictionary name, vendor attributes wrapped in Vendor-Specific (26)
 * with their Vendor-Id and sub-attribute (RFC 2865 §5.26). undefined when one cannot be encoded
 * (config validation refuses those first) or they do not fit in a packet: logged, never sent half.
 */
export function encodeReplyAttributes(list: readonly ReplyAttribute[]): RawAttribute[] | undefined {
  const out: RawAttribute[] = [];
  let size = 0;
  for (const { name, value } of list) {
    const resolved = resolveReplyAttribute(name, value);
    if (!resolved.ok) {
      log("error", "radius.reply_attribute_invalid", { code: resolved.code, detail: resolved.message });
      return undefined;
    }
    size += 2 + resolved.attribute.value.length;
    out.push(resolved.attribute);
  }
  if (size > REPLY_ATTRIBUTE_BUDGET) {
    log("error", "radius.reply_attributes_too_large", { octets: size });
    return undefined;
  }
  return out;
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
