/**
 * Queue-length warnings: mail when a child's queue grows past `warnThr`,
 * at most every `warnDelay` seconds and at most `maxWarn` times, and a
 * recovery notice once it shrinks again.
 *
 * @module
 */

import type { ChildLog } from "../core/log.ts";

/** Settings of {@linkcode QueueWatch}, from the listener section. */
export interface QueueWatchOptions {
  warnThr: number;
  recipients: readonly string[];
  warnDelay: number;
  maxWarn: number;
  /** Shown in the mail: where the child runs. */
  hostname: string;
  username: string;
  config: string;
}

/** Where warnings go. */
export interface QueueWatchOutlets {
  log: ChildLog;
  notify(subject: string, body: string, recipients: readonly string[]): void;
}

/** Tracks one queue's length against its threshold. */
export class QueueWatch {
  #options: QueueWatchOptions;
  #sent = 0;
  #warned = false;
  #nextAt = -Infinity;

  constructor(options: QueueWatchOptions) {
    this.#options = options;
  }

  /** Call after the queue changed; warns or recovers as needed. */
  check(length: number, now: number, out: QueueWatchOutlets): void {
    const o = this.#options;
    // Called on every change: only build texts when something is sent.
    if (length <= o.warnThr && !this.#warned) return;
    if (length > o.warnThr) {
      if (now < this.#nextAt) return;
      this.#warned = true;
      this.#nextAt = now + o.warnDelay;
      let mailed = false;
      if (o.recipients.length > 0 && this.#sent < o.maxWarn) {
        this.#sent++;
        const final = this.#sent === o.maxWarn;
        const subject = `${final ? "FINAL " : ""}WARNING: queue is too long on ${o.hostname}`;
        const body = `WARNING:\nthe queue holds more than ${o.warnThr} items ` +
          `(len(queue)=${length})\n${this.#where()}This is warning number : ${this.#sent}\n` +
          (final ? "This is the final warning!\n" : "");
        out.notify(subject, body, o.recipients);
        mailed = true;
      }
      out.log.event("warning", "warning", {
        reason: "queue_long",
        queue: length,
        warnThr: o.warnThr,
        warning: this.#sent,
        mailed,
      }, `len(queue)=${length} > ${o.warnThr}=warnThr`);
      return;
    }
    if (!this.#warned) return;
    const silenced = this.#sent >= o.maxWarn;
    this.#warned = false;
    this.#sent = 0;
    this.#nextAt = -Infinity;
    if (o.recipients.length > 0) {
      const body = `RECOVERY:\nthe queue holds no more than ${o.warnThr} items ` +
        `(len(queue)=${length})\n${this.#where()}` +
        (silenced ? "Recovery has un-silenced warnings.\n" : "");
      out.notify(
        `RECOVERY: queue has shortened on ${o.hostname}`,
        body,
        o.recipients,
      );
    }
    out.log.event("info", "warning", {
      reason: "queue_recovered",
      queue: length,
      warnThr: o.warnThr,
    }, `len(queue)=${length} <= ${o.warnThr}=warnThr`);
  }

  #where(): string {
    const o = this.#options;
    return `    username : ${o.username}\n    hostname : ${o.hostname}\n` +
      `    config   : ${o.config}\n`;
  }
}
