/**
 * The shape of a handler module (`workers/handlers/<process_type>.ts`).
 *
 * @module
 */

import type { Alert } from "../core/alert.ts";
import { ConfigError } from "../core/config_error.ts";
import type { CommandSpec } from "./commands.ts";
import type { ChildContext } from "../queue/queue_item.ts";
import type { Ini } from "../config/ini.ts";

/** What a handler module exports. */
export interface HandlerModule {
  /**
   * Reacts to one alert (never a command or heartbeat: the runtime takes
   * those), typically by inserting items into `ctx.queue` or marking
   * queued ones complete. `t0` is when the listener received the alert.
   */
  parseAlert(
    ctx: ChildContext,
    alert: Alert,
    t0: number,
    config: Ini,
  ): void | Promise<void>;
  /** Checks the handler's own childConfig sections; throw a `ConfigError`. */
  validateConfig?(config: Ini): void;
  /** Extra commands, such as approval_processor's resetThrottle. */
  commands?: readonly CommandSpec[];
}

/**
 * Checks that a loaded module has the exports a handler needs.
 *
 * @throws {ConfigError} naming the module and what is missing
 */
export function asHandlerModule(mod: unknown, where: string): HandlerModule {
  const m = mod as Partial<HandlerModule> | null;
  if (typeof m?.parseAlert !== "function") {
    throw new ConfigError(
      where,
      "Handler does not export a parseAlert function",
    );
  }
  if (
    m.validateConfig !== undefined && typeof m.validateConfig !== "function"
  ) {
    throw new ConfigError(where, "Handler's validateConfig must be a function");
  }
  if (m.commands !== undefined && !Array.isArray(m.commands)) {
    throw new ConfigError(where, "Handler's commands must be an array");
  }
  return m as HandlerModule;
}
