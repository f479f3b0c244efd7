/**
 * The state machine of a GW candidate (§1.7 step 4 and 5, §1.8): what a
 * label, log entry or signoff does, which checks the state runs, and the
 * pass and fail actions. Synchronous: it changes the record and queues
 * effects; nothing here waits for GraceDB.
 *
 * @module
 */

import type { Entry } from "./alerts.ts";
import { checkList, type CheckName, injectionCheck, runCheck } from "./checks.ts";
import type { Plan } from "./plan.ts";
import { badLabels, type State } from "./record.ts";
import { recordSignoff, recordUpdate } from "./recorders.ts";

/** States past the Grouper's selection: a repeated EM_Selected there is a stale alert. */
const SELECTED_ALREADY: readonly State[] = [
  "preliminary_to_initial",
  "initial_to_update",
  "complete",
];

/** Moves the record to `to` (after the actions before it), logging `State: from --> to.` once. */
export function transition(p: Plan, from: State, to: State): void {
  if (from !== to) p.onceLogged(`State: ${from} --> ${to}.`);
  p.state(to);
}

/** Runs injectionCheck first when a VOEvent needs its result and it has none (§2.10). */
function voevent(p: Plan, type: "preliminary" | "initial" | "update" | "retraction"): void {
  if (p.rec.injectionsfound === null) injectionCheck(p);
  p.voevent(type);
}

function retractIfSent(p: Plan): void {
  const sent = p.rec.voevents;
  if (sent.length > 0 && !sent.some((v) => v.endsWith("-retraction"))) voevent(p, "retraction");
}

/**
 * The label cases of §1.7, in any state. Returns whether the checks of
 * `selected_to_preliminary` are to run now (an `EM_Selected` label).
 */
function onLabel(p: Plan, label: string, start: State): boolean {
  const rec = p.rec;
  rec.labels.push(label);
  p.once(`Got ${label} label.`);
  if (label === "PE_READY") {
    if (p.once("Sending update VOEvent.")) {
      p.log("AP: Received PE_READY label. Sending update VOEvent.");
      voevent(p, "update");
    }
    transition(p, start, "complete");
  } else if (label === "EM_READY") {
    if (p.once("Sending initial VOEvent.")) {
      p.log("AP: Received EM_READY label. Sending initial VOEvent.");
      voevent(p, "initial");
    }
    transition(p, start, "initial_to_update");
  } else if (label === "EM_Throttled") {
    p.state("throttled");
    retractIfSent(p);
  } else if (label === "EM_Superseded") {
    p.state("superseded");
  } else if (badLabels(p.s).includes(label)) {
    p.state("rejected");
    retractIfSent(p);
  }
  if (label !== "EM_Selected") return false;
  if (SELECTED_ALREADY.includes(start)) {
    p.note(`Ignoring EM_Selected in state ${start}: the selection was acted on already.`);
    return false;
  }
  p.state("selected_to_preliminary");
  return true;
}

/** Whether the master flow still waits for an INJ label before the first checks. */
function waitingForInjections(p: Plan, state: State): boolean {
  const until = p.rec.injWaitUntil;
  return state === "new_to_preliminary" && until !== null && p.ctx.now() < until;
}

/** Runs the checks of `state` and their pass or fail actions (§1.7 step 5). */
export function runChecks(p: Plan, state: State): void {
  const list = checkList(state, p);
  if (list.length === 0 || waitingForInjections(p, state)) return;
  let passed = 0;
  for (const name of list) {
    const verdict = runCheck(name, p, state);
    if (
      name === "have_lvem_skymapCheck" && verdict === true && state === "preliminary_to_initial"
    ) {
      // De-duplication sends it only when the lvem sky map is new.
      voevent(p, "preliminary");
    }
    if (verdict === null) continue;
    if (verdict === false) return fail(p, state, name);
    passed++;
  }
  if (passed === list.length) pass(p, state);
}

function fail(p: Plan, state: State, check: CheckName): void {
  p.onceLogged(`Failed ${check} in currentstate: ${state}.`);
  transition(p, state, "rejected");
  const dqv = () => {
    if (p.onceLogged("Labeling DQV.")) p.label("DQV");
  };
  if (state === "preliminary_to_initial") {
    if (check.includes("signoffCheck")) {
      p.onceLogged(
        "Not labeling DQV because signoffCheck is separate from explicit data quality checks.",
      );
    } else dqv();
  } else if (state === "initial_to_update") dqv();
}

function pass(p: Plan, state: State): void {
  const rec = p.rec;
  if (state === "preliminary_to_initial") {
    p.onceLogged("Passed all preliminary_to_initial checks.");
    if (p.onceLogged("Labeling EM_READY.")) p.label("EM_READY");
    return;
  }
  if (state === "initial_to_update") {
    p.onceLogged("Passed all initial_to_update checks.");
    if (p.onceLogged("Labeling PE_READY.")) p.label("PE_READY");
    return;
  }
  // selected_to_preliminary, or the master flow's new_to_preliminary: pass-1.
  p.onceLogged(`Passed all ${state} checks.`);
  if (p.onceLogged("Sending preliminary VOEvent.")) voevent(p, "preliminary");
  transition(p, state, "preliminary_to_initial");
  const labelText = rec.labels.join(" ");
  for (const ifo of rec.instruments) {
    if (ifo && !labelText.includes(ifo) && p.onceLogged(`Labeling ${ifo}OPS.`)) {
      p.label(`${ifo}OPS`);
    }
  }
  if (!rec.labels.some((label) => label.includes("ADV")) && p.onceLogged("Labeling ADVREQ.")) {
    p.label("ADVREQ");
    p.mail(p.s.advocateEmail, `${rec.graceid} passed criteria for follow-up`, p.s.advocateText);
  }
}

/**
 * Decides on one alert (not `new`) for a GW candidate: the label cases,
 * the recorders, then the checks of the state it was in.
 */
export function decide(p: Plan, entry: Entry): void {
  const rec = p.rec;
  const start = rec.currentstate;
  switch (entry.kind) {
    case "label":
      if (onLabel(p, entry.label ?? "", start)) runChecks(p, "selected_to_preliminary");
      return;
    case "label_removed":
      rec.labels = rec.labels.filter((label) => label !== entry.label);
      p.note(`Label ${entry.label} was removed.`);
      break;
    case "update":
      if (entry.log) recordUpdate(p, entry.log);
      break;
    case "signoff":
      if (entry.signoff) recordSignoff(p, entry.signoff);
      break;
    case "new":
    case "other":
      break;
  }
  runChecks(p, start);
}
