// `[[endpoint]]` profiles from the config file, as the store's EndpointProfile records.

import { defaultEndpointProfile, type EndpointProfile } from "../store/types.ts";
import type { Config } from "./schema.ts";

/** Each declared profile over the built-in defaults, in file order. */
export function endpointProfiles(config: Pick<Config, "endpoint">): EndpointProfile[] {
  return config.endpoint.map((e) => {
    const base = defaultEndpointProfile(e.name);
    return {
      name: e.name,
      texts: {
        sms_text: e.sms_text ?? base.texts.sms_text,
        authentication_text: e.authentication_text ?? base.texts.authentication_text,
        touch_accept_text: e.touch_accept_text ?? base.texts.touch_accept_text,
        touch_reject_text: e.touch_reject_text ?? base.texts.touch_reject_text,
        button_accept_text: e.button_accept_text ?? base.texts.button_accept_text,
        button_reject_text: e.button_reject_text ?? base.texts.button_reject_text,
        title_text: e.title_text ?? base.texts.title_text,
      },
      touchTimeoutS: e.touch_timeout_s,
      allowCustomSmsText: e.allow_custom_sms_text,
      requireKnownUser: e.require_known_user,
      rateLimits: {
        perNumberPerMinute: e.per_number_per_minute,
        perNumberPerHour: e.per_number_per_hour,
        perKeyPerMinute: e.per_key_per_minute,
        overallPerMinute: e.overall_per_minute,
      },
      channels: e.channels,
    };
  });
}
