/**
 * An in-process child context for event_supervisor unit tests: a real
 * queue and childConfig, a log and a mailbox that record, a clock the
 * test sets.
 */

import { parseIni } from "../lib/config/ini.ts";
import type { GraceDbClient } from "../lib/gracedb/mod.ts";
import { type ChildContext, Ini, type JsonObject, type Level } from "../lib/mod.ts";
import { SortedQueue } from "../lib/queue/sorted_queue.ts";

/** A recorded log record. */
export interface Logged extends JsonObject {
  level: Level;
  event: string;
  msg: string;
}

/** A recorded mail. */
export interface Sent {
  subject: string;
  body: string;
  to: readonly string[];
}

/** The context, with what it recorded. */
export interface TestContext extends ChildContext {
  queue: SortedQueue;
  logged: Logged[];
  mails: Sent[];
  clock: { now: number };
}

/** A childConfig from text (its file name is `file`). */
export function ini(text: string, file = "c.ini"): Ini {
  return new Ini(parseIni(text, file));
}

/** A context over `config`; `gracedb` when the test reads GraceDB. */
export function testContext(
  config: Ini,
  options: { gracedb?: GraceDbClient; logDirectory?: string; now?: number } = {},
): TestContext {
  const logged: Logged[] = [];
  const mails: Sent[] = [];
  const clock = { now: options.now ?? 1_700_000_000 };
  const record = (level: Level, event: string, fields: JsonObject = {}, msg = "") =>
    logged.push({ ...fields, level, event, msg });
  const recipients = ["listener@example.org"];
  return {
    child: "es",
    queue: new SortedQueue(),
    config,
    log: {
      debug: (m, f) => record("debug", "message", f, m),
      info: (m, f) => record("info", "message", f, m),
      warning: (m, f) => record("warning", "message", f, m),
      error: (m, f) => record("error", "message", f, m),
      event: record,
    },
    recipients,
    logDirectory: options.logDirectory ?? "/nonexistent",
    filesDirectory: options.logDirectory ?? "/nonexistent",
    identity: { hostname: "testhost", username: "tester", pid: 1, config: "l.ini" },
    gracedb: options.gracedb,
    now: () => clock.now,
    notify: (subject, body, to = recipients) => {
      if (to.length > 0) mails.push({ subject, body, to });
    },
    publish: () => {},
    logged,
    mails,
    clock,
  };
}
