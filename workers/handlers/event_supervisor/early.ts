/**
 * Early completion (an extension; the original always waited for each
 * deadline and read GraceDB then): a log or upload alert that by itself
 * shows a pending check's expectation met completes that check at once,
 * as a PASS, without reading GraceDB. Only rules an alert can prove
 * take part: log texts and patterns, and files (with their tags and log
 * text when the alert carries them). A FAIL is never decided early.
 *
 * @module
 */

import type { ChildContext } from "../../../lib/mod.ts";
import type { GraceDbLogEntry } from "../../../lib/gracedb/mod.ts";
import type { Change } from "./alerts.ts";
import { findFile, judgeFileEntry, logMatches, type Rule, type Verdict, verdict } from "./rules.ts";
import { CheckItem, CheckTask } from "./task.ts";

/** The log entry an update alert announces. */
export function announcedEntry(change: Extract<Change, { kind: "update" }>): GraceDbLogEntry {
  return {
    N: 0,
    comment: change.comment,
    filename: change.file.slice(change.file.lastIndexOf("/") + 1),
    file_version: null,
    tag_names: change.tags ?? [],
  };
}

/** The PASS an announced log entry proves for `rule`, or null when it proves nothing. */
export function prove(rule: Rule, entry: GraceDbLogEntry, tagsKnown: boolean): Verdict | null {
  switch (rule.kind) {
    case "log":
    case "logrx":
      if (rule.tags && !tagsKnown) return null;
      return logMatches(rule, entry) ? verdict(true, rule.found) : null;
    case "file": {
      if (entry.filename === "" || rule.minBytes !== null) return null;
      if (rule.tags && !tagsKnown) return null;
      const found = findFile(rule, [entry.filename]);
      if (found === undefined) return null;
      const v = judgeFileEntry(rule, found, entry);
      return v.pass ? v : null;
    }
    default:
      return null;
  }
}

/** Completes the pending checks of `graceid` this update proves; returns how many. */
export function completeEarly(
  ctx: ChildContext,
  graceid: string,
  change: Extract<Change, { kind: "update" }>,
): number {
  const entry = announcedEntry(change);
  const now = ctx.now();
  let proved = 0;
  for (const item of ctx.queue.byGraceId(graceid)) {
    if (!(item instanceof CheckItem)) continue;
    let moved = false;
    for (const task of item.tasks) {
      if (!(task instanceof CheckTask) || task.job !== null || task.proof !== null) continue;
      const v = prove(task.rule, entry, change.tags !== null);
      if (!v) continue;
      task.proof = v;
      task.expiration = Math.min(task.expiration, now);
      moved = true;
      proved++;
      ctx.log.event("info", "check_proved", {
        graceid,
        item: item.name,
        task: task.name,
        message: v.message,
      }, `${graceid} : ${item.name} : ${task.name} : proved by an alert: ${v.message}`);
    }
    if (moved) item.sortTasks();
  }
  return proved;
}
