/**
 * The listener's outgoing mail: every notification a child asks for (and
 * the listener's own warnings) goes through one mailer, which runs the
 * section's mail command, logs the outcome, and lets a stop wait for mail
 * still being sent.
 *
 * Mail is bounded, because a command from the network can ask for it: each
 * child may send `perChild` messages per `window` seconds, and what is
 * beyond that is logged and summed up in one digest at the end of the
 * window; at most `concurrency` mail commands run at once, and at most
 * `maxQueued` wait.
 *
 * @module
 */

import type { ChildLog } from "../core/log.ts";
import { sendMail } from "./notifier.ts";

/** One message to send. */
export interface Mail {
  /** The child it is about, for logs and limits. */
  child: string;
  /** argv of a `mail`-compatible command. */
  command: readonly string[];
  subject: string;
  body: string;
  recipients: readonly string[];
}

/** Options for {@linkcode Mailer}. */
export interface MailerOptions {
  /** Messages a child may send per window. @default {10} */
  perChild?: number;
  /** The window, in seconds. @default {60} */
  window?: number;
  /** Mail commands running at once, at most. @default {4} */
  concurrency?: number;
  /** Messages waiting for a free slot, at most (more are dropped, logged). @default {200} */
  maxQueued?: number;
}

interface Window {
  sent: number;
  suppressed: Mail[];
  timer: ReturnType<typeof setTimeout>;
}

/**
 * Sends mail in the background, within limits, and keeps track of it.
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
  #o: Required<MailerOptions>;
  #windows = new Map<string, Window>();
  #waiting: Mail[] = [];
  #running = new Set<Promise<void>>();

  /** A mailer logging to `log`. */
  constructor(log: ChildLog, options: MailerOptions = {}) {
    this.#log = log;
    this.#o = { perChild: 10, window: 60, concurrency: 4, maxQueued: 200, ...options };
  }

  /** Mail being sent or waiting to be. */
  get inFlight(): number {
    return this.#running.size + this.#waiting.length;
  }

  /** Sends `mail` (or holds it for the child's digest, past its limit); the outcome is logged. */
  send(mail: Mail): void {
    let w = this.#windows.get(mail.child);
    if (!w) {
      w = {
        sent: 0,
        suppressed: [],
        timer: setTimeout(() => this.#close(mail.child), this.#o.window * 1000),
      };
      this.#windows.set(mail.child, w);
    }
    if (w.sent >= this.#o.perChild) {
      w.suppressed.push(mail);
      this.#log.event("warning", "notify_suppressed", {
        child: mail.child,
        subject: mail.subject,
        suppressed: w.suppressed.length,
      }, `more than ${this.#o.perChild} mails within ${this.#o.window} s; held for the digest`);
      return;
    }
    w.sent++;
    this.#enqueue(mail);
  }

  /** Resolves once every mail started or held so far has been handed over (or failed). */
  async drain(): Promise<void> {
    for (const child of [...this.#windows.keys()]) this.#close(child);
    while (this.#running.size > 0 || this.#waiting.length > 0) await Promise.all(this.#running);
  }

  /** Drains, for `await using`. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.drain();
  }

  /** Ends a child's window: one digest of what was held. */
  #close(child: string): void {
    const w = this.#windows.get(child);
    if (!w) return;
    clearTimeout(w.timer);
    this.#windows.delete(child);
    if (w.suppressed.length === 0) return;
    const first = w.suppressed[0]!;
    const recipients = [...new Set(w.suppressed.flatMap((m) => m.recipients))];
    const lines = w.suppressed.slice(0, 50).map((m) => `  ${m.subject}`);
    if (w.suppressed.length > 50) lines.push(`  ... and ${w.suppressed.length - 50} more`);
    this.#enqueue({
      child,
      command: first.command,
      subject: `lvalertMP: ${w.suppressed.length} more message(s) from ${child} (digest)`,
      body: `Child ${child} asked for more than ${this.#o.perChild} mails within ` +
        `${this.#o.window} s. These were not sent one by one (the log has each):\n\n` +
        `${lines.join("\n")}\n`,
      recipients,
    });
  }

  #enqueue(mail: Mail): void {
    if (this.#running.size < this.#o.concurrency) return this.#start(mail);
    if (this.#waiting.length >= this.#o.maxQueued) {
      this.#log.event("error", "notify_dropped", {
        child: mail.child,
        subject: mail.subject,
        reason: `${this.#o.maxQueued} mails already waiting`,
      });
      return;
    }
    this.#waiting.push(mail);
  }

  #start(mail: Mail): void {
    const { child, subject, recipients } = mail;
    this.#log.event("info", "notify", { child, subject, recipients: [...recipients] });
    const sending = sendMail(mail.command, subject, recipients, mail.body).then((r) => {
      if (!r.ok) {
        this.#log.event("warning", "notify_failed", { child, subject, reason: r.reason }, r.reason);
      }
    }).finally(() => {
      this.#running.delete(sending);
      const next = this.#waiting.shift();
      if (next) this.#start(next);
    });
    this.#running.add(sending);
  }
}
