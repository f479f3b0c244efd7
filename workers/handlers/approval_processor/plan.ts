/**
 * What deciding does: the once-only gate, local log lines, and effects
 * (GraceDB writes, VOEvent requests, mails) queued in the event's outbox.
 * Deciding is synchronous and touches only the record; the outbox is
 * carried out afterwards, and an effect leaves it only once done, so a
 * GraceDB outage delays actions but never drops or half-applies them.
 *
 * @module
 */

import type { ChildContext } from "../../../lib/mod.ts";
import type { ApSettings } from "./config.ts";
import type { EventRecord, State } from "./record.ts";

/** A VOEvent type as the original names them. */
export type VoType = "preliminary" | "initial" | "update" | "retraction";

/** Something to do outside the record. */
export type Effect =
  | {
    type: "log";
    /** The event whose log gets the entry. */
    id: string;
    comment: string;
    /** Tags of the entry (`em_follow` unless said otherwise). */
    tags: string[];
    file?: { name: string; text: string };
    /**
     * Set when a request for it failed (no answer, or a transient error):
     * GraceDB may have taken it, so the next request comes only after
     * looking for the entry.
     */
    uncertain?: true;
  }
  | { type: "label"; id: string; name: string }
  | { type: "voevent"; voType: VoType }
  | { type: "mail"; to: string[]; subject: string; body: string }
  /** The record moves on only after the actions decided before it are done. */
  | { type: "state"; to: State };

/** The record being decided on, and where decisions go. */
export class Plan {
  readonly ctx: ChildContext;
  readonly rec: EventRecord;
  readonly s: ApSettings;
  readonly outbox: Effect[];
  /** Another tracked event's record (RAVEN coincidences name one). */
  readonly lookup: (graceid: string) => EventRecord | undefined;

  constructor(
    ctx: ChildContext,
    rec: EventRecord,
    s: ApSettings,
    outbox: Effect[],
    lookup: (graceid: string) => EventRecord | undefined = () => undefined,
  ) {
    this.ctx = ctx;
    this.rec = rec;
    this.s = s;
    this.outbox = outbox;
    this.lookup = lookup;
  }

  get graceid(): string {
    return this.rec.graceid;
  }

  /** A line of the local log (not gated). */
  note(text: string): void {
    this.ctx.log.event("info", "ap", { graceid: this.graceid }, `${this.graceid} -- ${text}`);
  }

  /**
   * The once-only gate: true (and the text is logged and remembered) the
   * first time `text` comes up for this record; false after.
   */
  once(text: string): boolean {
    if (this.rec.loggermessages.includes(text)) return false;
    this.rec.loggermessages.push(text);
    this.note(text);
    return true;
  }

  /** A GraceDB log entry (tag `em_follow` unless `tags` says otherwise). */
  log(comment: string, tags: string[] = ["em_follow"], id = this.graceid): void {
    this.outbox.push({ type: "log", id, comment, tags });
  }

  /** A GraceDB log entry with a JSON file. */
  upload(id: string, comment: string, name: string, text: string): void {
    this.outbox.push({ type: "log", id, comment, tags: ["em_follow"], file: { name, text } });
  }

  /** Applies a label in GraceDB. */
  label(name: string, id = this.graceid): void {
    this.outbox.push({ type: "label", id, name });
  }

  /** Asks GraceDB for a VOEvent (flags and de-duplication when it is carried out). */
  voevent(voType: VoType): void {
    this.outbox.push({ type: "voevent", voType });
  }

  /** Moves the record to `to` once the actions queued before are done. */
  state(to: State): void {
    this.outbox.push({ type: "state", to });
  }

  /** Sends mail. */
  mail(to: string[], subject: string, body: string): void {
    if (to.length > 0) this.outbox.push({ type: "mail", to, subject, body });
  }

  /** Once-only `text`, with the GraceDB log `AP: <text>`. */
  onceLogged(text: string, comment = `AP: ${text}`): boolean {
    if (!this.once(text)) return false;
    this.log(comment);
    return true;
  }
}
