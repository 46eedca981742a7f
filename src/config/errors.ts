// The one error type of configuration loading: a one-line message that names the option and its source, never its value.

/** A configuration problem; the message is one line starting with "config: " and holds no value. */
export class ConfigError extends Error {
  readonly code = "config";
  constructor(message: string) {
    super(message);
    this.name = "ConfigError";
  }
}
