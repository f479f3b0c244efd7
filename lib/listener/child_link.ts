/**
 * The listener's side of one child: its journal, its worker (restartable),
 * and the alerts on their way to it.
 *
 * An alert is journaled (group commit) before it is posted; it stays
 * "unacked" until the worker reports it applied. A new worker recovers
 * from snapshot + journal and says how far it got; only alerts after that
 * are posted again, so none is lost and none applied twice.
 *
 * @module
 */

import { join } from "node:path";
import type { JsonObject } from "../core/alert.ts";
import type { ChildSection } from "../config/config.ts";
import type { ChildLog } from "../core/log.ts";
import { GroupCommit } from "../durability/group_commit.ts";
import { Journal, type JournalRead } from "../durability/journal.ts";
import {
  type AlertDelivery,
  type ChildSettings,
  type FromChild,
  readFromChild,
  type ToChild,
  unreachable,
} from "../child/messages.ts";
import { childPermissions } from "../config/permissions.ts";
import { openStateDir } from "../durability/state_dir.ts";

/** A child's life, as the listener sees it. */
export type ChildState =
  | "starting"
  | "ready"
  | "restarting"
  | "stopping"
  | "stopped"
  | "dead"
  | "given_up";

/** What the listener knows of a child. */
export interface ChildStatus {
  child: string;
  state: ChildState;
  queue: number;
  next: number | null;
  /** Alerts journaled and not yet applied. */
  inFlight: number;
  /** Seconds the oldest of them has waited (0 when none). */
  oldestInFlight: number;
  /** Worker deaths since the listener started. */
  deaths: number;
  /** Last journal record a checkpoint covers. */
  checkpointSeq: number;
  journalSeq: number;
  commands: string[];
}

/** What a link reports to the supervisor. */
export interface LinkEvents {
  ready(link: ChildLink): void;
  startFailed(link: ChildLink, message: string): void;
  died(link: ChildLink, reason: string): void;
  ack(link: ChildLink, seq: number, ok: boolean, reason: string | null, token: string | null): void;
  changed(): void;
  /** An alert with an item id is durable in the journal. */
  journaled(node: string, id: string): void;
  line(text: string): void;
  notify(section: ChildSection, subject: string, body: string, recipients: string[]): void;
  publish(child: string, node: string, payload: JsonObject): void;
  commandResult(token: string, ok: boolean, output: string | null, error: string | null): void;
}

const WORKER_URL = new URL("../../workers/child.ts", import.meta.url);

/** A file-system-safe folder name for a child (names may hold spaces). */
export function childDirName(name: string): string {
  const safe = name.replace(/[^A-Za-z0-9._-]+/g, "_").slice(0, 60);
  let hash = 0;
  for (const c of name) hash = (Math.imul(hash, 31) + c.codePointAt(0)!) >>> 0;
  return `${safe}-${hash.toString(36)}`;
}

/** One child: journal, worker, alerts in flight. */
export class ChildLink {
  readonly section: ChildSection;
  readonly dir: string;
  readonly status: ChildStatus;
  lastPong = 0;
  ping = 0;
  #events: LinkEvents;
  #log: ChildLog;
  #settings: (dir: string) => ChildSettings;
  #journal: Journal | undefined;
  #worker: Worker | undefined;
  /** Alerts on their way into the journal (group commit), then to the worker. */
  #outbox = new GroupCommit<AlertDelivery>({
    write: (batch) =>
      this.#journal!.append(
        batch.map(({ seq, node, id, t0, text }) => ({ seq, node, id, t0, text })),
      ),
    committed: (batch) => this.#committed(batch),
    failed: (error, batch) => {
      const message = (error as Error).message;
      this.#log.event("error", "journal_failed", {
        child: this.section.name,
        error: message,
        waiting: batch.length,
      }, `journal write failed (${message}); ${batch.length} alert(s) held, retrying`);
    },
  });
  #unacked = new Map<number, AlertDelivery & { at: number }>();
  #stopped: PromiseWithResolvers<void> = Promise.withResolvers();

  constructor(
    section: ChildSection,
    stateDir: string,
    settings: (dir: string) => ChildSettings,
    events: LinkEvents,
    log: ChildLog,
  ) {
    this.section = section;
    this.dir = join(stateDir, "children", childDirName(section.name));
    this.#settings = settings;
    this.#events = events;
    this.#log = log;
    this.status = {
      child: section.name,
      state: "starting",
      queue: 0,
      next: null,
      inFlight: 0,
      oldestInFlight: 0,
      deaths: 0,
      checkpointSeq: 0,
      journalSeq: 0,
      commands: [],
    };
  }

  /** Opens (and checks) the journal; returns what it holds. */
  async openJournal(): Promise<JournalRead> {
    await openStateDir(this.dir);
    // The worker writes snapshots here, and nowhere else in the state folder.
    await openStateDir(join(this.dir, "snapshots"));
    const { journal, read } = await Journal.open(join(this.dir, "journal.log"));
    this.#journal = journal;
    this.status.journalSeq = journal.lastSeq;
    if (read.cut) {
      this.#log.event(
        "warning",
        "journal_cut",
        {
          child: this.section.name,
          line: read.cut.line,
          reason: read.cut.reason,
          kept: read.records.length,
        },
        `${journal.path}:${read.cut.line}: damaged tail (${read.cut.reason}) cut; ${read.records.length} record(s) kept`,
      );
    }
    return read;
  }

  /** Starts a worker (again); it recovers from snapshot and journal. */
  spawn(checkOnly = false): void {
    this.lastPong = performance.now();
    this.#stopped = Promise.withResolvers();
    const settings = this.#settings(this.dir);
    const worker = new Worker(WORKER_URL, {
      type: "module",
      name: this.section.name,
      deno: { permissions: childPermissions(this.section, checkOnly ? undefined : this.dir) },
    });
    this.#worker = worker;
    worker.onmessage = (event: MessageEvent<unknown>) => {
      if (worker !== this.#worker) return;
      const read = readFromChild(event.data);
      if (read.ok) this.#receive(read.message);
      else {
        this.#log.event("error", "bad_message", {
          child: this.section.name,
          reason: read.reason,
          data: JSON.stringify(event.data)?.slice(0, 500) ?? String(event.data),
        });
      }
    };
    worker.onerror = (event: ErrorEvent) => {
      event.preventDefault();
      if (worker === this.#worker) this.die(event.message || String(event.error));
    };
    worker.onmessageerror = () => {
      if (worker === this.#worker) this.die("a message from the worker could not be read");
    };
    this.#post({ type: "init", settings });
  }

  /** Journals an alert and hands it over once it is on disk; returns its seq. */
  deliver(d: Omit<AlertDelivery, "seq">): number {
    const seq = ++this.status.journalSeq;
    this.#outbox.push({ ...d, seq });
    return seq;
  }

  /** Ends the worker after a death (terminates it) and marks the child. */
  die(reason: string): void {
    const s = this.status.state;
    if (s === "dead" || s === "stopped" || s === "given_up") return;
    this.status.state = "dead";
    this.status.deaths++;
    this.#worker?.terminate();
    this.#worker = undefined;
    this.#stopped.resolve();
    if (s === "starting" || s === "restarting") this.#events.startFailed(this, reason);
    else this.#events.died(this, reason);
  }

  /** Asks the worker to finish, checkpoint and stop. */
  requestStop(): Promise<void> {
    if (
      this.status.state === "ready" || this.status.state === "starting" ||
      this.status.state === "restarting"
    ) {
      this.status.state = "stopping";
      this.#post({ type: "shutdown" });
    } else this.#stopped.resolve();
    return this.#stopped.promise;
  }

  /** Kills the worker and closes the journal. */
  async close(): Promise<void> {
    this.#worker?.terminate();
    this.#worker = undefined;
    if (this.status.state !== "dead" && this.status.state !== "given_up") {
      this.status.state = "stopped";
    }
    // A disk that keeps failing must not hold up the exit for ever.
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([this.#outbox.drain(), new Promise((r) => timer = setTimeout(r, 5000))]);
    clearTimeout(timer);
    await this.#journal?.close();
  }

  /** Sends a liveness ping (only to a ready worker). */
  sendPing(): void {
    if (this.status.state === "ready") this.#post({ type: "ping", n: ++this.ping });
  }

  /** Refreshes the in-flight figures of the status. */
  refresh(): ChildStatus {
    const oldest = this.#unacked.values().next().value;
    this.status.inFlight = this.#unacked.size + this.#outbox.pending;
    this.status.oldestInFlight = oldest ? Math.max(0, (performance.now() - oldest.at) / 1000) : 0;
    return this.status;
  }

  #committed(batch: AlertDelivery[]): void {
    const at = performance.now();
    // A child given up on gets no more alerts: they stay in its journal for
    // the next start, not in memory.
    const track = this.status.state !== "given_up";
    for (const d of batch) {
      if (track) this.#unacked.set(d.seq, { ...d, at });
      if (d.id !== null) this.#events.journaled(d.node, d.id);
    }
    if (this.status.state === "ready") this.#post({ type: "alerts", alerts: batch });
  }

  #receive(message: FromChild): void {
    const name = this.section.name;
    switch (message.type) {
      case "ready": {
        this.status.state = "ready";
        this.status.commands = message.commands;
        this.status.checkpointSeq = message.snapshotSeq;
        this.lastPong = performance.now();
        // What the new worker replayed from the journal is applied.
        const resend: AlertDelivery[] = [];
        for (const [seq, d] of this.#unacked) {
          if (seq <= message.replayedTo) {
            this.#unacked.delete(seq);
            this.#events.ack(this, seq, true, null, d.token);
          } else resend.push(d);
        }
        if (resend.length > 0) this.#post({ type: "alerts", alerts: resend });
        this.#events.ready(this);
        return;
      }
      case "init_failed":
        this.die(message.message);
        return;
      case "fatal":
        this.die(message.message);
        return;
      case "acks":
        for (const ack of message.acks) {
          const d = this.#unacked.get(ack.seq);
          this.#unacked.delete(ack.seq);
          this.#events.ack(this, ack.seq, ack.ok, ack.reason, d?.token ?? null);
        }
        this.status.queue = message.queue;
        this.status.next = message.next;
        this.#events.changed();
        return;
      case "state":
        this.status.queue = message.queue;
        this.status.next = message.next;
        this.#events.changed();
        return;
      case "checkpointed":
        this.status.checkpointSeq = message.seq;
        // Keep the records since the snapshot before, in case this one is damaged.
        this.#journal?.trim(message.previous).catch((error) =>
          this.#log.event("warning", "journal_trim_failed", {
            child: name,
            error: (error as Error).message,
          })
        );
        return;
      case "command_result":
        this.#events.commandResult(message.token, message.ok, message.output, message.error);
        return;
      case "log":
        this.#events.line(message.line);
        return;
      case "notify":
        this.#events.notify(this.section, message.subject, message.body, message.recipients);
        return;
      case "publish":
        this.#events.publish(name, message.node, message.payload);
        return;
      case "pong":
        this.lastPong = performance.now();
        return;
      case "stopped":
        this.status.state = "stopped";
        this.#stopped.resolve();
        return;
      default:
        unreachable(message);
    }
  }

  #post(message: ToChild): void {
    this.#worker?.postMessage(message);
  }
}
