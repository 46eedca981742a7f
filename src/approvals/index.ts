// Approvals (phone factors): the one store-backed record every kind of pending approval waits on,
// the service around it, the waiter hub, and SMS one-time codes.
export {
  ApprovalService,
  SOURCE_MAX,
  type AnswerForm,
  type ApprovalRequest,
  type ApprovalServiceOptions,
  type DeliverResult,
  type LinkTarget,
  type NotDeliveredReason,
  type OpenResult,
  type PageAnswer,
  type PageView,
  type RequestResult,
  type WaitFor,
} from "./service.ts";
export { WaiterHub, type ClosedListener, type WaitOptions, type WaitOutcome, type WaiterHubOptions, type WaitSource } from "./waiters.ts";
export { contextText, defaultApprovalTexts, parseTexts, CONTEXT_MAX, type ApprovalContext, type ApprovalTexts } from "./texts.ts";
export { sendText, type TextSender, type TextTarget } from "./send.ts";
export {
  DEFAULT_SMS_CODE_FORMAT,
  DEFAULT_SMS_CODE_TEMPLATE,
  generateSmsCode,
  hashSmsCode,
  isSmsCodeTemplate,
  normalizeSmsCode,
  smsCodeText,
  SMS_CODE_ALPHABET_NAMES,
  SMS_CODE_ALPHABETS,
  SMS_CODE_MAX_LENGTH,
  SMS_CODE_MIN_LENGTH,
  type SmsCodeAlphabet,
  type SmsCodeBinding,
  type SmsCodeFormat,
} from "./sms-code.ts";
export { SmsCodes, smsCodeSettings, SMS_CODE_LIFETIME_MS, SMS_CODE_MAX_FAILURES, type SendResult, type SmsCodeConfig, type SmsCodeMetric, type SmsCodesOptions, type VerifyResult } from "./sms-codes.ts";
