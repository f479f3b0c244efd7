/**
 * Configuration: the INI dialect of Python 2.7's `ConfigParser`, the
 * listener config and childConfigs validated into typed objects (every
 * problem a `ConfigError` naming file and line), worker permissions built
 * from a section, and the listener's command-line flags.
 *
 * May import only `core/`.
 *
 * @module
 */

export * from "./cli.ts";
export * from "./config.ts";
export * from "./ini.ts";
export * from "./permissions.ts";
