/**
 * The child side (code that runs inside a worker): the runtime that puts a
 * handler's context, the scheduler, alert intake and command table
 * together; recovery and checkpoints of the child's state; queue-length
 * warnings; and the typed messages between a worker and the listener.
 *
 * May import only `core/`, `config/`, `queue/` and `durability/`.
 *
 * @module
 */

export * from "./commands.ts";
export * from "./handler.ts";
export * from "./intake.ts";
export * from "./messages.ts";
export * from "./queue_watch.ts";
export * from "./runtime.ts";
export * from "./scheduler.ts";
export * from "./snapshot_commands.ts";
export * from "./state.ts";
