/**
 * The listener's outgoing mail: every notification a child asks for (and
 * the listener's own warnings) goes through one mailer, which runs the
 * section's mail command, logs the outcome, and lets a stop wait for mail
 * still being sent.
 *
 * @module
 */

import type { ChildLog } from "../core/log.ts";
import { sendMail } from "./notifier.ts";

/** One message to send. */
export interface Mail {
  /** The child it is about, for logs. */
  child: string;
  /** argv of a `mail`-compatible command. */
  command: readonly string[];
  subject: string;
  body: string;
  recipients: readonly string[];
}

/**
 * Sends mail in the background and keeps track of it.
 *
 * @example
 * ```ts
 * import { Logger } from "../core/log.ts";
 *
 * await using mailer = new Mailer(new Logger({ child: null, format: "text", sinks: [] }));
 * mailer.send({ child: "cbc", command: ["true"], subject: "hi", body: "", recipients: ["a@b.c"] });
 * ```
 */
export class Mailer implements AsyncDisposable {
  #log: ChildLog;
  #inFlight = new Set<Promise<void>>();

  /** A mailer logging to `log`. */
  constructor(log: ChildLog) {
    this.#log = log;
  }

  /** Mail being sent right now. */
  get inFlight(): number {
    return this.#inFlight.size;
  }

  /** Starts sending `mail`; its outcome is logged. */
  send(mail: Mail): void {
    const { child, subject, recipients } = mail;
    this.#log.event("info", "notify", { child, subject, recipients: [...recipients] });
    const sending = sendMail(mail.command, subject, recipients, mail.body).then((r) => {
      if (!r.ok) {
        this.#log.event("warning", "notify_failed", { child, subject, reason: r.reason }, r.reason);
      }
    }).finally(() => this.#inFlight.delete(sending));
    this.#inFlight.add(sending);
  }

  /** Resolves once every mail started so far has been handed over (or failed). */
  async drain(): Promise<void> {
    while (this.#inFlight.size > 0) await Promise.all(this.#inFlight);
  }

  /** Drains, for `await using`. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.drain();
  }
}
