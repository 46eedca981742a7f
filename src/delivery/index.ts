// Delivery: channels behind one interface (HTTP SMS gateway, SMTP), failover, and the SMS-pumping defences.
export type { Channel, ChannelFailure, DeliveryResult, OutboundMessage, SendOptions } from "./types.ts";
export { createSmsHttpChannel, formEncode, gatewayRequest, isBodyTemplate, jsonEscape, providerIdFrom, renderTemplate, type SmsHttpOptions } from "./sms-http.ts";
export { createSMTPChannel, type SMTPOptions } from "./smtp.ts";
export { buildSmsText, DEFAULT_SMS_TEMPLATE, endpointSmsText, type EndpointSmsOptions } from "./sms-text.ts";
export { destinationRefusal, isAllowedDestination, maskEmail, maskNumber, numberType, parseDestination, type AllowList, type Destination, type DestinationRefusal } from "./phone.ts";
export {
  createDispatcher,
  DEFAULT_LIMITS,
  type DeliveryRequest,
  type Dispatcher,
  type DispatcherHooks,
  type DispatcherOptions,
  type DispatchResult,
  type RateLimitSettings,
  type RefusalReason,
} from "./dispatcher.ts";
export { allowListFromConfig, channelsFromConfig, deliveryWarnings, limitsFromConfig, type ChannelsFromConfigOptions } from "./from-config.ts";
