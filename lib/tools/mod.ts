/**
 * The companion subcommands of the same binary, compatible with the old
 * tools: `send` (lvalert_send), `command` (lvalert_commandMP), `admin`
 * (lvalert_admin), `ctl` (the control socket) and `status` (a Nagios
 * plugin), with the connection flags they share.
 *
 * May import every lower layer; nothing imports it but `main.ts`.
 *
 * @module
 */

export * from "./admin.ts";
export * from "./command.ts";
export * from "./ctl.ts";
export * from "./send.ts";
export * from "./session.ts";
export * from "./status.ts";
