/**
 * The `event_supervisor` handler: the watchdog of GraceDB follow-up. For
 * each event, every follow-up process that should write to GraceDB (data
 * quality, iDQ, Omega scans, sky maps, parameter estimation,
 * notifications) is a check with a deadline; at its deadline the check
 * reads GraceDB, decides PASS or FAIL, mails the section's lists and
 * annotates the event (`ES: ...`, tagged `event_supervisor`).
 *
 * - `event_supervisor/catalog.ts`: the checks, as data; a site adds its
 *   own in the childConfig (`event_supervisor/custom.ts`).
 * - `event_supervisor/parse.ts`: which checks an alert creates.
 * - `event_supervisor/task.ts`: how a check runs without holding the
 *   child while GraceDB answers.
 * - `event_supervisor/rules.ts`: how each rule is judged.
 *
 * The README's "event_supervisor" section has the options, the known
 * bugs of the original and what became of each, and the extensions.
 *
 * @module
 */

import type { Ini } from "../../lib/mod.ts";
import { settingsOf } from "./event_supervisor/settings.ts";

export { parseAlert } from "./event_supervisor/parse.ts";
export { CheckItem, CheckTask } from "./event_supervisor/task.ts";
export { CollectResults, ResultsItem } from "./event_supervisor/collector.ts";

/** Reads the whole childConfig at start: a problem stops the listener with `file:line` (exit 78). */
export function validateConfig(config: Ini): void {
  settingsOf(config);
}
