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

/**
 * Writes a log entry, never sending it again without first looking for it
 * in the event's log (`writeLogOnce`): in this run after a failure GraceDB
 * answered (a 5xx: it is done with the request), in the next run after one
 * it did not answer (the effect is marked `uncertain`).
 *
 * @throws {Deferred} when GraceDB fails or the run is out of time
 */
async function writeLog(p: Plan, effect: LogEffect): Promise<void> {
  const file = effect.file
    ? { name: effect.file.name, data: effect.file.text, contentType: "application/json" }
    : undefined;
  try {
    const how = await attempt(
      `writing a ${describe(effect)}`,
      () =>
        client(p.ctx).writeLogOnce(effect.id, effect.comment, {
          ...callOptions(p.s),
          tags: effect.tags,
          ...(file ? { file } : {}),
          lookFirst: effect.uncertain === true,
        }),
    );
    if (how === "found") {
      p.note(`${describe(effect)} was taken by a try that failed; not written again.`);
    }
  } catch (error) {
    // Out of time before the request went out: nothing was sent.
    if (error instanceof Deferred && !(error instanceof OutOfTime)) effect.uncertain = true;
    throw error;
  }
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
