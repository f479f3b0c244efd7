/**
 * The `test` handler: for each alert, one item keyed by the alert's uid
 * that logs the alert once per `[test] delays` entry, plus one task that
 * runs `[test] repeats` times every `[test] interval` seconds. It exercises
 * multi-task and repeating items, with either GraceDB schema.
 *
 * ```ini
 * [test]
 * delays   = 5 10   ; seconds after the alert
 * repeats  = 2      ; runs of the repeating task (0: none)
 * interval = 1      ; seconds between them
 * ```
 *
 * @module
 */

import {
  type Alert,
  type ChildContext,
  ConfigError,
  describeAlert,
  type Ini,
  QueueItem,
  Task,
} from "../../lib/mod.ts";

/** The handler's settings, from `[test]`. */
export interface TestSettings {
  delays: number[];
  repeats: number;
  interval: number;
}

/** Reads `[test]`; every problem names the file and line. */
export function readSettings(config: Ini): TestSettings {
  const section = "test";
  const delays = config.get(section, "delays", "5 10").split(/\s+/).filter(
    Boolean,
  ).map((word) => {
    const value = Number(word);
    if (!Number.isFinite(value) || value < 0) {
      throw new ConfigError(
        config.file,
        `[test] delays must be numbers of seconds >= 0, got "${word}"`,
        { line: config.line(section, "delays") },
      );
    }
    return value;
  });
  const repeats = config.getInt(section, "repeats", 2);
  if (repeats < 0) {
    throw new ConfigError(config.file, "[test] repeats must be >= 0", {
      line: config.line(section, "repeats"),
    });
  }
  const interval = config.getFloat(section, "interval", 1);
  if (!(interval > 0) || !Number.isFinite(interval)) {
    throw new ConfigError(config.file, "[test] interval must be a number > 0", {
      line: config.line(section, "interval"),
    });
  }
  return { delays, repeats, interval };
}

/** Logs (a summary of) the alert it was made for. */
export class PrintAlertTask extends Task {
  uid: string;
  alertType: string;
  summary: string;

  constructor(timeout: number, alert: Alert) {
    super(timeout, `print@${timeout}s`);
    // A summary, not the alert: items stay small in memory and snapshots.
    this.uid = alert.uid;
    this.alertType = alert.alert_type;
    this.summary = describeAlert(alert);
  }

  execute(ctx: ChildContext, item: QueueItem): void {
    ctx.log.event("info", "alert_printed", {
      graceid: item.graceid ?? null,
      alert_type: this.alertType,
      delay: this.timeout,
    }, `${this.uid} : ${this.summary}`);
  }
}

/** Runs `repeats` times, `interval` seconds apart, then is done. */
export class RepeatTask extends Task {
  repeats: number;
  interval: number;
  runs = 0;

  constructor(repeats: number, interval: number) {
    super(interval, "repeat");
    this.repeats = repeats;
    this.interval = interval;
  }

  execute(ctx: ChildContext, item: QueueItem): void {
    this.runs++;
    ctx.log.event("info", "repeat", {
      graceid: item.graceid ?? null,
      run: this.runs,
      of: this.repeats,
    });
    if (this.runs < this.repeats) this.expiration += this.interval;
  }
}

/** One alert's follow-up. */
export class TestItem extends QueueItem {}

export function validateConfig(config: Ini): void {
  readSettings(config);
}

const settings = new WeakMap<Ini, TestSettings>();

export function parseAlert(
  ctx: ChildContext,
  alert: Alert,
  t0: number,
  config: Ini,
): void {
  let s = settings.get(config);
  if (!s) settings.set(config, s = readSettings(config));
  const { delays, repeats, interval } = s;
  const tasks: Task[] = delays.map((delay) => new PrintAlertTask(delay, alert));
  if (repeats > 0) tasks.push(new RepeatTask(repeats, interval));
  ctx.queue.insert(new TestItem(t0, tasks, { graceid: alert.uid }));
}
