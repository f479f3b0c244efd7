/**
 * Carrying out an event's outbox, in order: an effect leaves it only once
 * done. A transient GraceDB failure stops the run (the effect and those
 * after it wait for the next try); a refusal (a 4xx) is reported and the
 * effect dropped, since sending it again would be refused again.
 *
 * @module
 */

import { attempt, callOptions, client, Deferred } from "./gracedb.ts";
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
    case "log": {
      const file = effect.file
        ? { name: effect.file.name, data: effect.file.text, contentType: "application/json" }
        : undefined;
      await attempt(
        `writing a ${describe(effect)}`,
        () =>
          client(p.ctx).writeLog(effect.id, effect.comment, {
            ...callOptions(s),
            tags: effect.tags,
            ...(file ? { file } : {}),
          }),
      );
      return;
    }
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
