/**
 * Carrying out an event's outbox, in order: an effect leaves it only once
 * done. A transient GraceDB failure stops the run (the effect and those
 * after it wait for the next try); a refusal (a 4xx) is reported and the
 * effect dropped, since sending it again would be refused again.
 *
 * Writes are carried out at least once and, as far as GraceDB lets us
 * tell, at most once: labels are idempotent, VOEvents are checked against
 * GraceDB's list (`voevent.ts`), and a log entry whose write failed is
 * looked for before it is written again.
 *
 * @module
 */

import { GraceDbError, type GraceDbLogEntry } from "../../../lib/gracedb/mod.ts";
import { attempt, callOptions, client, Deferred, OutOfTime } from "./gracedb.ts";
import type { Effect, Plan } from "./plan.ts";
import { sendVoEvent } from "./voevent.ts";

function describe(effect: Effect): string {
  switch (effect.type) {
    case "log":
      return `log entry "${effect.comment}" on ${effect.id}`;
    case "label":
      return `label ${effect.name} on ${effect.id}`;
    case "voevent":
      return `${effect.voType} VOEvent`;
    case "mail":
      return `mail "${effect.subject}"`;
    case "state":
      return `move to ${effect.to}`;
  }
}

async function carryOut(p: Plan, effect: Effect): Promise<void> {
  const s = p.s;
  switch (effect.type) {
    case "log":
      return await writeLog(p, effect);
    case "label": {
      const change = await attempt(
        `applying ${describe(effect)}`,
        () => client(p.ctx).addLabel(effect.id, effect.name, callOptions(s)),
      );
      if (!change.changed) p.note(`${effect.name} was already applied to ${effect.id}.`);
      return;
    }
    case "voevent":
      return await sendVoEvent(p, effect.voType);
    case "mail":
      p.ctx.notify(effect.subject, effect.body, effect.to);
      return;
    case "state":
      p.rec.currentstate = effect.to;
      return;
  }
}

type LogEffect = Extract<Effect, { type: "log" }>;

/** Requests for one log entry in a run: each alone, the log looked at after a failure. */
const LOG_TRIES = 3;

/**
 * Writes a log entry, never sending it again without first looking for it
 * in the event's log: each request is made once (the transport's own
 * retries would re-send a POST GraceDB may have taken), and after a
 * transient failure the entry is looked for before the next request: in
 * this run after an answer (a 5xx: GraceDB is done with the request), in
 * the next run after none.
 *
 * @throws {Deferred} when GraceDB fails {@linkcode LOG_TRIES} times or the
 * run is out of time (the effect stays marked for the next run)
 */
async function writeLog(p: Plan, effect: LogEffect): Promise<void> {
  const file = effect.file
    ? { name: effect.file.name, data: effect.file.text, contentType: "application/json" }
    : undefined;
  for (let tried = 1;; tried++) {
    if (effect.uncertain && await written(p, effect)) {
      p.note(`${describe(effect)} was taken by a try that failed; not written again.`);
      return;
    }
    try {
      await attempt(
        `writing a ${describe(effect)}`,
        () =>
          client(p.ctx).writeLog(effect.id, effect.comment, {
            ...callOptions(p.s),
            maxAttempts: 1,
            tags: effect.tags,
            ...(file ? { file } : {}),
          }),
      );
      return;
    } catch (error) {
      // Out of time before the request went out: nothing was sent.
      if (!(error instanceof Deferred) || error instanceof OutOfTime) throw error;
      effect.uncertain = true;
      // Without an answer the request may still be on its way in: looking
      // now could miss it, so the next look is the next run's.
      const answered = error.cause instanceof GraceDbError && error.cause.status !== undefined;
      if (!answered || tried >= LOG_TRIES) throw error;
    }
  }
}

/**
 * Whether the event's log already holds the entry: the same comment and
 * file name. The handler's entries are unique per event (its once-only
 * gates), so such an entry is the one a failed write made.
 *
 * @throws {Deferred} when GraceDB does not answer the listing either
 */
async function written(p: Plan, effect: LogEffect): Promise<boolean> {
  const entries: GraceDbLogEntry[] = await attempt(
    `looking for a ${describe(effect)}`,
    () => client(p.ctx).logs(effect.id, callOptions(p.s)),
  );
  const name = effect.file?.name ?? "";
  return entries.some((e) => e.comment === effect.comment && e.filename === name);
}

/**
 * Carries out the outbox, oldest first.
 *
 * @throws {Deferred} when GraceDB did not answer; the rest stays queued
 */
export async function runOutbox(p: Plan): Promise<void> {
  const outbox = p.outbox;
  while (outbox.length > 0) {
    const effect = outbox[0]!;
    try {
      await carryOut(p, effect);
    } catch (error) {
      if (error instanceof Deferred) throw error;
      const message = (error as Error)?.message ?? String(error);
      p.ctx.log.event("error", "ap_action_failed", {
        graceid: p.graceid,
        action: describe(effect),
        error: message,
      }, `${p.graceid}: ${describe(effect)} failed and is dropped: ${message}`);
      p.ctx.notify(
        `approval_processor: ${describe(effect)} failed for ${p.graceid}`,
        `GraceDB refused it, so it is not retried:\n\n${message}\n`,
      );
    }
    outbox.shift();
  }
}
