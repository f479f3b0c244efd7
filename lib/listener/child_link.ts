/**
 * The listener's side of one child: its journal, its worker (restartable),
 * and the alerts on their way to it. The link owns the child's state
 * machine and announces what happens on the listener's {@linkcode ChildBus}.
 *
 * An alert is journaled (group commit) before it is posted; it stays
 * "unacked" until the worker reports it applied. A new worker recovers
 * from snapshot + journal and says how far it got; only alerts after that
 * are posted again, so none is lost and none applied twice.
 *
 * @module
 */

import { join } from "node:path";
import type { ChildLog } from "../core/log.ts";
import type { ChildSection } from "../config/config.ts";
import { GroupCommit } from "../durability/group_commit.ts";
import { Journal, type JournalRead } from "../durability/journal.ts";
import { readSnapshotSeq } from "../durability/snapshot.ts";
import { openStateDir, readIfExists, removeStaleTemps } from "../durability/state_dir.ts";
import {
  type AlertDelivery,
  type ChildSettings,
  type FromChild,
  readFromChild,
  type ToChild,
  unreachable,
} from "../child/messages.ts";
import type { ChildBus } from "./child_events.ts";
import { type ChildHandle, type HandleEvents, processChild, workerChild } from "./child_handle.ts";

/** A child's life, as the listener sees it. */
export type ChildState =
  | "new"
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
  /** Journal writes are failing (the disk is full or gone): alerts are held. */
  journalFailing: boolean;
  /** What may have been lost, until an operator acknowledges it (`ctl --acknowledge`). */
  losses: string[];
  /** Alerts set aside for killing the child (`poison.jsonl`). */
  quarantined: number;
}

/** A file-system-safe folder name for a child (names may hold spaces). */
export function childDirName(name: string): string {
  const safe = name.replace(/[^A-Za-z0-9._-]+/g, "_").slice(0, 60);
  let hash = 0;
  for (const c of name) hash = (Math.imul(hash, 31) + c.codePointAt(0)!) >>> 0;
  return `${safe}-${hash.toString(36)}`;
}

/** The journal positions `poison.jsonl` sets aside. */
async function readPoison(path: string): Promise<number[]> {
  const text = await readIfExists(path) ?? "";
  const seqs: number[] = [];
  for (const line of text.split("\n")) {
    try {
      const seq = JSON.parse(line)?.seq;
      if (typeof seq === "number") seqs.push(seq);
    } catch {
      // A torn last line: the rest stands.
    }
  }
  return seqs;
}

/** Options for {@linkcode ChildLink}. */
export interface ChildLinkOptions {
  section: ChildSection;
  /** The listener's state folder (the child's is below it). */
  stateDir: string;
  /** Builds the worker's settings for its state folder. */
  settings(dir: string): ChildSettings;
  bus: ChildBus;
  log: ChildLog;
  /**
   * Alerts held in memory while the journal cannot take them, at most;
   * beyond it the child takes no more (the server keeps them).
   *
   * @default {10000}
   */
  maxHeld?: number;
}

/**
 * How long a child's journal gathers a stream of alerts into one batch
 * (milliseconds). Under a stream of alerts a sync serves 15 ms' worth,
 * about 40 alerts a batch in the XMPP benchmark's bursts: a batch's fixed
 * costs (sync, message to the child, its answer, the wake-ups of three
 * threads) weigh on each alert a third as much as with 5 ms. Two alternating
 * pairs of `deno task bench xmpp`: 241-265 µs of CPU per alert against
 * 324-410, burst ratio 0.85-0.91 against 0.66-0.89; a 20,000-alert
 * replay at 3000/s: 184-207 µs against 220-230 (30 ms: 164-168). An
 * alert of a stream is journaled up to 15 ms later; a lone alert, or a
 * trickle, is written at once.
 */
export const STREAM_GATHER_MS = 15;

/** One child: journal, worker, alerts in flight. */
export class ChildLink implements AsyncDisposable {
  readonly section: ChildSection;
  readonly dir: string;
  /** performance.now() of the last answer to a liveness ping. */
  lastPong = 0;
  #o: ChildLinkOptions;
  #status: ChildStatus;
  #ping = 0;
  #journal: Journal | undefined;
  #worker: ChildHandle | undefined;
  /** Alerts on their way into the journal (group commit), then to the worker. */
  #outbox = new GroupCommit<AlertDelivery>({
    write: (batch) => this.#journal!.append(batch),
    gatherMs: STREAM_GATHER_MS,
    committed: (batch) => this.#committed(batch),
    failed: (error) => {
      const message = (error as Error).message;
      const held = this.#outbox.pending;
      if (!this.#status.journalFailing) {
        this.#status.journalFailing = true;
        this.#o.bus.emit("journal_state", {
          child: this.section.name,
          failing: true,
          error: message,
        });
      }
      this.#o.log.event("error", "journal_failed", {
        child: this.section.name,
        error: message,
        held,
      }, `journal write failed (${message}); ${held} alert(s) held, retrying`);
    },
    recovered: () => {
      this.#status.journalFailing = false;
      this.#o.log.event("info", "journal_recovered", { child: this.section.name });
      this.#o.bus.emit("journal_state", { child: this.section.name, failing: false, error: null });
    },
  });
  #unacked = new Map<number, AlertDelivery & { at: number }>();
  /** Where the worker shows the journal position it is applying. */
  #applying: Float64Array | undefined;
  /** Journal positions set aside for killing the child. */
  #quarantined = new Set<number>();
  /** The alert at work, as a child process last reported it. */
  #marker = 0;
  /** Who wants to hear that an alert is on disk, by seq. */
  #onJournaled = new Map<number, () => void>();
  #stopped: PromiseWithResolvers<void> = Promise.withResolvers();
  /** Stopping a ready worker: what the journal commits still goes to it, before the stop. */
  #lastPosts = false;

  constructor(options: ChildLinkOptions) {
    this.#o = options;
    this.section = options.section;
    this.dir = join(options.stateDir, "children", childDirName(options.section.name));
    this.#status = {
      child: options.section.name,
      state: "new",
      queue: 0,
      next: null,
      inFlight: 0,
      oldestInFlight: 0,
      deaths: 0,
      checkpointSeq: 0,
      journalSeq: 0,
      commands: [],
      journalFailing: false,
      losses: [],
      quarantined: 0,
    };
  }

  /** The child's state. */
  get state(): ChildState {
    return this.#status.state;
  }

  /** What the listener knows of the child now (a copy). */
  status(): ChildStatus {
    const now = performance.now();
    const oldest = this.#unacked.values().next().value;
    // An alert still waiting for the journal counts from when it arrived.
    const waited = Math.max(oldest ? now - oldest.at : 0, this.#outbox.oldestWait(now));
    return {
      ...this.#status,
      losses: [...this.#status.losses],
      inFlight: this.#unacked.size + this.#outbox.pending,
      oldestInFlight: waited / 1000,
    };
  }

  /** Whether the child takes more alerts (it holds fewer than `maxHeld` unjournaled). */
  get accepting(): boolean {
    return this.#outbox.pending < (this.#o.maxHeld ?? 10_000);
  }

  /** Clears the loss and quarantine reports (an operator has seen them); returns how many. */
  acknowledge(): number {
    const n = this.#status.losses.length + this.#status.quarantined;
    this.#status.losses = [];
    this.#status.quarantined = 0;
    return n;
  }

  /** Records and announces a possible loss (logged as `event`). */
  #loss(message: string, event = "loss"): void {
    this.#status.losses.push(message);
    this.#o.log.event("error", event, { child: this.section.name }, message);
    this.#o.bus.emit("loss", { child: this.section.name, message });
  }

  /**
   * Opens (and checks) the journal; returns what it holds. Its numbering
   * continues above the newest snapshot's position; a journal that ends
   * below it, or damage, is reported.
   */
  async openJournal(): Promise<JournalRead> {
    await openStateDir(this.dir);
    // The worker writes snapshots here, and nowhere else in the state folder.
    const snapshots = await openStateDir(join(this.dir, "snapshots"));
    for (const dir of [this.dir, snapshots]) await removeStaleTemps(dir);
    const floor = Math.max(
      await readSnapshotSeq(join(snapshots, "snapshot.json")) ?? 0,
      await readSnapshotSeq(join(snapshots, "snapshot.prev.json")) ?? 0,
    );
    const { journal, read, lost, movedAside } = await Journal.open(
      join(this.dir, "journal.log"),
      { floor },
    );
    this.#journal = journal;
    this.#status.journalSeq = journal.lastSeq;
    for (const seq of await readPoison(this.#poisonPath)) this.#quarantined.add(seq);
    this.#status.quarantined = this.#quarantined.size;
    if (lost) {
      this.#loss(
        `${journal.path} ends at record ${lost.last}, but the snapshot covers up to ` +
          `${lost.floor}: alerts journaled after ${lost.floor} before the last stop are lost; ` +
          `numbering continues above ${lost.floor}`,
        "journal_lost",
      );
    }
    if (movedAside) {
      const lines = read.damaged.map((d) => `${d.line} (${d.reason})`).join(", ");
      this.#o.log.event(
        "warning",
        "journal_damaged",
        {
          child: this.section.name,
          damaged: read.damaged.length,
          kept: read.records.length,
          header: read.header,
          moved_to: movedAside,
        },
        `${journal.path}: damaged line(s) ${lines || "none"} skipped` +
          (read.header === "rebuilt" ? ", header rebuilt" : "") +
          `; ${read.records.length} record(s) kept; the original is at ${movedAside}`,
      );
    }
    if (read.cut) {
      this.#o.log.event(
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

  /**
   * Starts the worker: the first time (`starting`), or again after a death
   * (`restarting`); it recovers from snapshot and journal.
   *
   * @throws {Error} from any other state
   */
  spawn(checkOnly = false): void {
    const from = this.#status.state;
    if (from !== "new" && from !== "dead") {
      throw new Error(`Child [${this.section.name}] cannot start while ${from}`);
    }
    this.#status.state = from === "new" ? "starting" : "restarting";
    this.lastPong = performance.now();
    this.#stopped = Promise.withResolvers();
    const stateDir = checkOnly ? undefined : this.dir;
    const inProcess = this.section.isolation === "process";
    // A Web Worker shows the position it is applying in shared memory.
    const applying = inProcess ? null : new SharedArrayBuffer(8);
    this.#applying = applying ? new Float64Array(applying) : undefined;
    const events: HandleEvents = {
      message: (data) => {
        if (handle !== this.#worker) return;
        const read = readFromChild(data);
        if (read.ok) return this.#receive(read.message);
        this.#o.log.event("error", "bad_message", {
          child: this.section.name,
          reason: read.reason,
          data: JSON.stringify(data)?.slice(0, 500) ?? String(data),
        });
      },
      ended: (reason) => {
        if (handle === this.#worker) this.die(reason);
      },
      output: (line) => this.#o.bus.emit("line", { child: this.section.name, text: line }),
    };
    const handle: ChildHandle = inProcess
      ? processChild(this.section, stateDir, events)
      : workerChild(this.section, stateDir, events);
    this.#worker = handle;
    const settings = { ...this.#o.settings(this.dir), quarantined: [...this.#quarantined] };
    this.#post({ type: "init", settings, applying, doorbell: handle.doorbell });
  }

  /**
   * Journals an alert and hands it over once it is on disk (then
   * `onJournaled` is called); returns its seq.
   */
  deliver(d: Omit<AlertDelivery, "seq">, onJournaled?: () => void): number {
    const seq = ++this.#status.journalSeq;
    if (onJournaled) this.#onJournaled.set(seq, onJournaled);
    this.#outbox.push({ ...d, seq });
    return seq;
  }

  /** Ends the worker after a death (terminates it) and marks the child dead. */
  die(reason: string): void {
    const from = this.#status.state;
    if (from === "dead" || from === "stopped" || from === "given_up" || from === "new") return;
    this.#status.state = "dead";
    this.#status.deaths++;
    this.#worker?.terminate();
    this.#worker = undefined;
    this.#stopped.resolve();
    const child = this.section.name;
    if (from === "starting" || from === "restarting") {
      this.#o.bus.emit("start_failed", { child, message: reason });
    } else this.#o.bus.emit("died", { child, reason });
  }

  /**
   * The journal position the worker was applying when it last died (0:
   * none): the alert that may have killed it.
   */
  suspect(): number {
    return this.#applying?.[0] ?? this.#marker;
  }

  get #poisonPath(): string {
    return join(this.dir, "poison.jsonl");
  }

  /**
   * Sets an alert aside for good: written to `poison.jsonl`, refused, and
   * skipped by every later start of the child.
   */
  async quarantine(seq: number, reason: string): Promise<void> {
    if (this.#quarantined.has(seq)) return;
    this.#quarantined.add(seq);
    this.#status.quarantined = this.#quarantined.size;
    const d = this.#unacked.get(seq);
    this.#unacked.delete(seq);
    const record = await this.#journal?.record(seq);
    const line = JSON.stringify({
      seq,
      node: record?.node ?? d?.node ?? null,
      id: record?.id ?? d?.id ?? null,
      t0: record?.t0 ?? d?.t0 ?? null,
      alert: record?.alert ?? (d ? JSON.parse(d.text) : null),
      reason,
      at: new Date().toISOString(),
    });
    await Deno.writeTextFile(this.#poisonPath, line + "\n", { append: true, mode: 0o600 });
    const child = this.section.name;
    const where = record ?? d;
    const message =
      `Alert ${seq}${where ? ` (node ${where.node}, id ${where.id ?? "-"})` : ""} killed child ` +
      `[${child}] twice in a row (${reason}); it is set aside in ${this.#poisonPath} and never applied`;
    this.#o.bus.emit("ack", {
      child,
      seq,
      ok: false,
      reason: "quarantined",
      duplicate: false,
      token: d?.token ?? null,
    });
    this.#o.bus.emit("quarantined", { child, seq, file: this.#poisonPath, message });
  }

  /** A dead child is not restarted any more; its alerts stay in its journal. */
  giveUp(): void {
    if (this.#status.state === "dead") this.#status.state = "given_up";
  }

  /**
   * Asks the worker to finish what it holds, checkpoint and stop. Alerts
   * still on their way into the journal (its sync runs on an I/O thread)
   * reach a ready worker first, for up to 5 s of a failing disk; after
   * that they wait in the journal for the next start.
   */
  requestStop(): Promise<void> {
    const s = this.#status.state;
    if (s === "ready" || s === "starting" || s === "restarting") {
      this.#status.state = "stopping";
      this.#lastPosts = s === "ready";
      void this.#drain(5000).then(() => {
        this.#lastPosts = false;
        if (this.#status.state === "stopping") this.#post({ type: "shutdown" });
      });
    } else this.#stopped.resolve();
    return this.#stopped.promise;
  }

  /** Waits until the outbox is empty, or `ms` have passed. */
  async #drain(ms: number): Promise<void> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([this.#outbox.drain(), new Promise((r) => timer = setTimeout(r, ms))]);
    clearTimeout(timer);
  }

  /** Kills the worker and closes the journal. */
  async close(): Promise<void> {
    this.#worker?.terminate();
    this.#worker = undefined;
    if (this.#status.state !== "dead" && this.#status.state !== "given_up") {
      this.#status.state = "stopped";
    }
    // A disk that keeps failing must not hold up the exit for ever.
    await this.#drain(5000);
    await this.#journal?.close();
  }

  /** Closes, for `await using`. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  /** Sends a liveness ping (only to a ready worker). */
  sendPing(): void {
    if (this.#status.state === "ready") this.#post({ type: "ping", n: ++this.#ping });
  }

  #committed(batch: AlertDelivery[]): void {
    const at = performance.now();
    // A child given up on gets no more alerts: they stay in its journal for
    // the next start, not in memory.
    const track = this.#status.state !== "given_up";
    const child = this.section.name;
    for (const d of batch) {
      if (track) this.#unacked.set(d.seq, { ...d, at });
      if (d.id !== null) this.#o.bus.emit("journaled", { child, node: d.node, id: d.id });
      const heard = this.#onJournaled.get(d.seq);
      if (heard) {
        this.#onJournaled.delete(d.seq);
        heard();
      }
    }
    if (this.#status.state === "ready" || this.#lastPosts) {
      this.#post({ type: "alerts", alerts: batch });
    }
  }

  #ready(message: Extract<FromChild, { type: "ready" }>): void {
    const child = this.section.name;
    // A stop asked for while it started stays asked for.
    if (this.#status.state !== "stopping") this.#status.state = "ready";
    this.#status.commands = message.commands;
    this.#status.checkpointSeq = message.snapshotSeq;
    this.lastPong = performance.now();
    for (const problem of message.problems) this.#loss(problem);
    // What the new worker replayed from the journal is applied.
    const resend: AlertDelivery[] = [];
    for (const [seq, d] of this.#unacked) {
      if (this.#quarantined.has(seq)) continue;
      if (seq <= message.replayedTo) {
        this.#unacked.delete(seq);
        this.#o.bus.emit("ack", {
          child,
          seq,
          ok: true,
          reason: null,
          duplicate: false,
          token: d.token,
        });
      } else resend.push(d);
    }
    if (resend.length > 0) this.#post({ type: "alerts", alerts: resend });
    this.#o.bus.emit("ready", { child });
  }

  #receive(message: FromChild): void {
    const child = this.section.name;
    const bus = this.#o.bus;
    switch (message.type) {
      case "ready":
        return this.#ready(message);
      case "init_failed":
      case "fatal":
        return this.die(message.message);
      case "acks":
        // The queue as it stands after these alerts, before anyone hears of them.
        this.#status.queue = message.queue;
        this.#status.next = message.next;
        for (const ack of message.acks) {
          const d = this.#unacked.get(ack.seq);
          this.#unacked.delete(ack.seq);
          bus.emit("ack", { child, ...ack, token: d?.token ?? null });
        }
        return bus.emit("changed", { child });
      case "state":
        this.#status.queue = message.queue;
        this.#status.next = message.next;
        return bus.emit("changed", { child });
      case "checkpointed":
        this.#status.checkpointSeq = message.seq;
        // Keep the records since the snapshot before, in case this one is damaged.
        this.#journal?.trim(message.previous).catch((error) =>
          this.#o.log.event("warning", "journal_trim_failed", {
            child,
            error: (error as Error).message,
          })
        );
        return bus.emit("checkpointed", { child, seq: message.seq, seconds: message.seconds });
      case "report":
        return bus.emit("report", {
          child,
          due: message.due,
          tally: message.tally,
          failures: message.failures,
        });
      case "command_result":
        return bus.emit("command_result", { child, ...message });
      case "log":
        return bus.emit("line", { child, text: message.line });
      case "notify":
        return bus.emit("notify", { child, ...message });
      case "publish":
        return bus.emit("publish", { child, node: message.node, payload: message.payload });
      case "pong":
        this.lastPong = performance.now();
        return;
      case "marker":
        this.#marker = message.seq;
        return;
      case "stopped":
        this.#status.state = "stopped";
        this.#stopped.resolve();
        return;
      default:
        unreachable(message);
    }
  }

  #post(message: ToChild): void {
    this.#worker?.post(message);
  }
}
