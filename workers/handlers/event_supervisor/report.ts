/**
 * What a check's outcome becomes: a log event (`check_outcome`), a line
 * in `<log_directory>/<graceid>.log`, and the mails of the original's
 * formats. The result mail goes out whatever became of the annotation (the
 * original let a failed annotation replace a FAIL by an exception mail);
 * a failed annotation is reported on its own.
 *
 * @module
 */

import { join } from "node:path";
import type { ChildContext, Level } from "../../../lib/mod.ts";
import type { JobResult } from "./job.ts";

/** The parts of an item and task a report names. */
export interface Subject {
  graceid: string;
  item: string;
  task: string;
  description: string;
  url: string;
  emails: { success: string[]; failure: string[]; exception: string[] };
  warnings: boolean;
  graceidLogs: boolean;
  /** Whether an alert proved the result (no GraceDB read). */
  early: boolean;
}

/** Mail subject and body lines, as the original wrote them (no final newline). */
export function resultMail(
  kind: "failure" | "success" | "exception",
  s: Pick<Subject, "graceid" | "task" | "url" | "description">,
  detail: string,
): { subject: string; body: string } {
  const { graceid, task, url, description } = s;
  switch (kind) {
    case "failure":
      return {
        subject: `${graceid}: ${task} requires attention`,
        body: [
          `${graceid}: ${task} requires attention`,
          url,
          `event_supervisor found suspicous behavior when performing ${description}`,
          `warning : ${detail}`,
        ].join("\n"),
      };
    case "success":
      return {
        subject: `${graceid}: ${task} succeeded`,
        body: [
          `${graceid}: ${task} succeeded`,
          url,
          `event_supervisor found only expected behavior when performing ${description}`,
          `notes : ${detail}`,
        ].join("\n"),
      };
    case "exception":
      return {
        subject: `${graceid}: ${task} FAILED`,
        body: [
          `${graceid}: ${task} check FAILED`,
          url,
          `event_supervisor caught an exception when performing ${description}`,
          detail,
        ].join("\n"),
      };
  }
}

const graceidLogWarned = new Set<string>();

/** Appends one line to `<log_directory>/<graceid>.log` (opened and closed each time). */
function graceidLog(ctx: ChildContext, s: Subject, level: Level, message: string): void {
  if (!s.graceidLogs) return;
  const name = s.graceid.replace(/[^A-Za-z0-9_.-]/g, "_");
  const line = `${
    new Date(ctx.now() * 1000).toISOString()
  } | ${s.item}.${s.task} : ${level.toUpperCase()} : ${message}\n`;
  try {
    Deno.writeTextFileSync(join(ctx.filesDirectory, `${name}.log`), line, { append: true });
  } catch (error) {
    if (graceidLogWarned.has(ctx.filesDirectory)) return;
    graceidLogWarned.add(ctx.filesDirectory);
    ctx.log.warning(`cannot write per-graceid logs in ${ctx.filesDirectory}: ${error}`);
  }
}

function send(
  ctx: ChildContext,
  s: Subject,
  kind: "failure" | "success" | "exception",
  detail: string,
): void {
  const to = s.emails[kind];
  if (!s.warnings || to.length === 0) return;
  const mail = resultMail(kind, s, detail);
  ctx.notify(mail.subject, mail.body, to);
}

/** Logs, mails and files a check's outcome. */
export function report(ctx: ChildContext, s: Subject, r: JobResult): void {
  const v = r.verdict;
  const result = v ? (v.pass ? "pass" : "fail") : "exception";
  const level: Level = result === "pass" ? "info" : result === "fail" ? "warning" : "error";
  const message = v ? v.message : `exception: ${r.error?.message}`;
  const annotation = typeof r.annotation === "string" ? r.annotation : "failed";
  const description = v?.description ?? s.description;
  ctx.log.event(level, "check_outcome", {
    graceid: s.graceid,
    item: s.item,
    task: s.task,
    result,
    message,
    early: s.early,
    annotation,
    ...(r.error?.status ? { status: r.error.status } : {}),
  }, `${s.graceid} : ${s.item} : ${s.task} : ${message}`);
  graceidLog(ctx, s, level, `${s.graceid} : ${description}`);
  graceidLog(ctx, s, level, message);
  const subject = { ...s, description };
  if (v?.mail) ctx.notify(v.mail.subject, v.mail.body, v.mail.to);
  if (v) send(ctx, subject, v.pass ? "success" : "failure", v.warning);
  else send(ctx, subject, "exception", r.error?.stack ?? "");
  if (typeof r.annotation !== "string") {
    const why = `could not annotate ${s.graceid} in GraceDB: ${r.annotation.error}`;
    ctx.log.event("warning", "annotation_failed", {
      graceid: s.graceid,
      item: s.item,
      task: s.task,
      reason: r.annotation.error,
    }, why);
    graceidLog(ctx, s, "warning", why);
    send(ctx, subject, "exception", why);
  }
}
