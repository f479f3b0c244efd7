/**
 * `lvalert_listenMP`: the entry point. Parses argv, picks the subcommand,
 * runs it, and is the only place that decides the exit code.
 *
 * @module
 */

import denoJson from "./deno.json" with { type: "json" };
import { LISTEN_USAGE, parseListenArgs } from "./lib/cli.ts";
import { listen, type ListenOutcome } from "./lib/listen.ts";

/** sysexits-style exit codes. */
export const EXIT = {
  ok: 0,
  failure: 1,
  usage: 2,
  unavailable: 69,
  auth: 77,
  config: 78,
} as const;

export const VERSION: string = denoJson.version;

function outcomeCode(outcome: ListenOutcome): number {
  if (outcome.ok) return EXIT.ok;
  console.error(`lvalert_listenMP: ${outcome.error.message}`);
  switch (outcome.kind) {
    case "config":
      return EXIT.config;
    case "unavailable":
      return EXIT.unavailable;
    case "auth":
      return EXIT.auth;
    case "runtime":
      return EXIT.failure;
    default: {
      const never: never = outcome.kind;
      return never;
    }
  }
}

/** Runs the command line; resolves with the exit code. */
export async function main(argv: string[]): Promise<number> {
  const parsed = parseListenArgs(argv);
  if (!parsed.ok) {
    console.error(`lvalert_listenMP: ${parsed.message}\n\n${LISTEN_USAGE}`);
    return EXIT.usage;
  }
  const args = parsed.value;
  if (args.help) {
    console.log(LISTEN_USAGE);
    return EXIT.ok;
  }
  if (args.version) {
    console.log(`lvalert_listenMP (lvalertMP) ${VERSION}`);
    return EXIT.ok;
  }
  if (args.password !== undefined) {
    console.error(
      "lvalert_listenMP: warning: -b/--password puts the password in argv, " +
        "where other users can read it; use a netrc file",
    );
  }
  try {
    return outcomeCode(await listen(args));
  } catch (error) {
    console.error(`lvalert_listenMP: ${(error as Error)?.stack ?? error}`);
    return EXIT.failure;
  }
}

if (import.meta.main) {
  Deno.exit(await main(Deno.args));
}
