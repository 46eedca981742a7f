// One delivery dispatcher per distinct endpoint channel list, built on first use over the
// configured channels (an endpoint's `channels = ["email", "sms"]` reorders or narrows them).

import { createDispatcher, type Dispatcher, type DispatcherOptions } from "../delivery/dispatcher.ts";
import type { Channel } from "../delivery/types.ts";

/**
 * `dispatcherFor(names)`: the dispatcher over the configured `channels` named in `names`, in that
 * order; [] means all configured channels in configured order. A name that is not configured is
 * skipped (a profile naming only unconfigured channels gets a dispatcher with none, which answers
 * all_channels_failed). Throws TypeError like createDispatcher for invalid limits.
 */
export function dispatcherPool(channels: readonly Channel[], base: Omit<DispatcherOptions, "channels">): (names: readonly string[]) => Dispatcher {
  const cache = new Map<string, Dispatcher>();
  const all = createDispatcher({ ...base, channels });
  return (names) => {
    if (names.length === 0) return all;
    const key = names.join(",");
    let d = cache.get(key);
    if (!d) {
      // A name may stand for several channels of different kinds (`switch`: SMS and e-mail).
      const picked = names.flatMap((n) => channels.filter((c) => c.name === n));
      d = createDispatcher({ ...base, channels: picked });
      cache.set(key, d);
    }
    return d;
  };
}
