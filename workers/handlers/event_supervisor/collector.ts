/**
 * One queue item per child that brings finished GraceDB work back into the
 * child's line. While checks' jobs run, it comes due every few
 * milliseconds, wakes the task of each job that settled (moves it due
 * now) and goes back to sleep; with no job left it completes. Its tick
 * starts at 10 ms and doubles, up to 200 ms, while nothing settles.
 *
 * Restored from a snapshot (the listener restarted while checks ran), its
 * first run wakes every parked task whose job died with the old worker,
 * so those checks start again at once rather than when their parking
 * time ends.
 *
 * The engine has no way for work finished outside the line to ask for a
 * turn in it, so something in the queue has to look; one looker for all
 * checks costs far less than every check looking for itself (each look
 * is a task run the engine logs and may snapshot).
 *
 * @module
 */

import { type ChildContext, QueueItem, Task } from "../../../lib/mod.ts";
import { knownJob, runningJobs, wakeReady } from "./job.ts";

const MIN_TICK = 0.01;
const MAX_TICK = 0.2;

/** Wakes the tasks whose GraceDB work settled; repeats while work runs. */
export class CollectResults extends Task {
  /** Seconds until the next look. */
  tick = MIN_TICK;

  constructor() {
    super(MIN_TICK, "collect GraceDB results");
  }

  execute(ctx: ChildContext): void {
    if (!recovered) wakeLost(ctx);
    const woken = wakeReady();
    if (runningJobs() === 0) return;
    this.tick = woken > 0 ? MIN_TICK : Math.min(MAX_TICK, this.tick * 2);
    this.expiration = ctx.now() + this.tick;
  }
}

/** Whether this worker looked for tasks whose jobs an earlier worker ran. */
let recovered = false;

/** Moves due every queued task that waits on a job this worker never started. */
function wakeLost(ctx: ChildContext): void {
  recovered = true;
  for (const item of ctx.queue.items()) {
    let moved = false;
    for (const task of item.tasks) {
      const job = (task as { job?: unknown }).job;
      if (typeof job === "string" && !knownJob(job) && task.expiration > ctx.now()) {
        task.expiration = ctx.now();
        moved = true;
      }
    }
    if (moved) item.sortTasks();
  }
}

/** The item holding the child's {@linkcode CollectResults}. */
export class ResultsItem extends QueueItem {}

/** Per queue: the collector now pending. */
const current = new WeakMap<object, ResultsItem>();

/** Makes sure a collector is pending (call after starting a job). */
export function ensureCollector(ctx: ChildContext): void {
  if (!recovered) wakeLost(ctx);
  const pending = current.get(ctx.queue);
  if (pending && !pending.complete) {
    const task = pending.tasks[0] as CollectResults | undefined;
    // Work just started: look soon again, whatever the tick had grown to.
    if (task && task.expiration > ctx.now() + MIN_TICK) {
      task.tick = MIN_TICK;
      task.expiration = ctx.now() + MIN_TICK;
      pending.sortTasks();
    }
    return;
  }
  const item = new ResultsItem(ctx.now(), [new CollectResults()], {
    name: "event_supervisor results",
  });
  current.set(ctx.queue, item);
  ctx.queue.insert(item);
}
