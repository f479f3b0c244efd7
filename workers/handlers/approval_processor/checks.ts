/**
 * The checks of §2: each returns true (passed), false (failed) or null
 * (not decidable yet), writes its GraceDB log texts and local messages,
 * and stores its result; cached checks return a stored result at once.
 *
 * @module
 */

import { threshold } from "./config.ts";
import type { Plan } from "./plan.ts";
import { badLabels, currentSkymap, type State, type Verdict } from "./record.ts";
import { pyFloat } from "./text.ts";

/** A check's name, as the GraceDB texts spell it. */
export type CheckName =
  | "ifosCheck"
  | "farCheck"
  | "labelCheck"
  | "injectionCheck"
  | "have_lvem_skymapCheck"
  | "idq_joint_fapCheck"
  | "operator_signoffCheck"
  | "advocate_signoffCheck"
  | "virgo_dqCheck";

/** The checks a state runs, in order (§1.8); none for the other states. */
export function checkList(state: State, p: Plan): CheckName[] {
  switch (state) {
    case "new_to_preliminary":
    case "selected_to_preliminary":
      return ["ifosCheck", "farCheck", "labelCheck", "injectionCheck"];
    case "preliminary_to_initial":
      return [
        "farCheck",
        "labelCheck",
        "have_lvem_skymapCheck",
        "idq_joint_fapCheck",
        ...(p.s.humanscimons ? ["operator_signoffCheck" as const] : []),
        ...(p.s.advocates ? ["advocate_signoffCheck" as const] : []),
        ...(p.s.useVirgoDQComment ? ["virgo_dqCheck" as const] : []),
      ];
    case "initial_to_update":
      return ["farCheck", "labelCheck", "have_lvem_skymapCheck"];
    default:
      return [];
  }
}

/** Runs one check. */
export function runCheck(name: CheckName, p: Plan, state: State): Verdict {
  switch (name) {
    case "ifosCheck":
      return ifosCheck(p);
    case "farCheck":
      return farCheck(p);
    case "labelCheck":
      return labelCheck(p);
    case "injectionCheck":
      return injectionCheck(p);
    case "have_lvem_skymapCheck":
      return skymapCheck(p, state);
    case "idq_joint_fapCheck":
      return idqCheck(p);
    case "operator_signoffCheck":
      return operatorCheck(p);
    case "advocate_signoffCheck":
      return advocateCheck(p);
    case "virgo_dqCheck":
      return virgoCheck(p);
  }
}

function ifosCheck(p: Plan): Verdict {
  const ifos = p.rec.instruments;
  const ok = ifos.length >= 3 || (ifos.length === 2 && !ifos.includes("V1"));
  p.rec.ifosCheckresult = ok;
  if (!ok) {
    p.log("AP: Candidate event rejected due to single ifo OR V1 in two-ifo coinc", []);
    p.rec.ifoslogkey = "yes";
    p.once(`Rejecting due to single ifo OR presence of V1 in two-ifo coinc: ${ifos.join(",")}`);
  }
  return ok;
}

function farCheck(p: Plan): Verdict {
  const rec = p.rec;
  if (rec.farCheckresult !== null) return rec.farCheckresult;
  const thr = threshold(p.s, "farCheck", "farthresh", rec.pipeline, rec.search, p.s.farThresh);
  rec.farlogkey = "yes";
  if (rec.far === null) {
    p.log("AP: Candidate event is missing FAR.");
    p.once("Candidate event is missing FAR.");
    return rec.farCheckresult = false;
  }
  const far = pyFloat(rec.far);
  if (rec.far >= thr) {
    p.log(`AP: Candidate event rejected due to large FAR. ${far} >= ${pyFloat(thr)}`);
    p.once(`Rejected due to large FAR. ${far} >= ${pyFloat(thr)}`);
    return rec.farCheckresult = false;
  }
  p.log(`AP: Candidate event has low enough FAR. ${far} < ${pyFloat(thr)}`);
  p.once(`Low enough FAR. ${far} < ${pyFloat(thr)}`);
  return rec.farCheckresult = true;
}

function labelCheck(p: Plan): Verdict {
  const bad = badLabels(p.s);
  const ok = !p.rec.labels.some((label) => bad.includes(label));
  if (!ok) p.once("Ignoring event due to bad label.");
  return p.rec.labelCheckresult = ok;
}

function virgoWording(p: Plan): string | undefined {
  if (!p.s.virgo) return undefined;
  if (!p.rec.instruments.includes("V1")) return "Performing hardware injection check.";
  return p.s.useVirgoInjComment
    ? "Performing hardware injection check. Did wait for Virgo injection statement. "
    : "Performing hardware injection check. Did not wait for Virgo injection statement. ";
}

/** Runs injectionCheck (cached); `null` while a Virgo statement or the query is awaited. */
export function injectionCheck(p: Plan): Verdict {
  const rec = p.rec;
  if (rec.injectionCheckresult !== null) return rec.injectionCheckresult;
  const v1 = rec.instruments.includes("V1");
  if (v1 && rec.virgoInjections === null) {
    p.once("Have not received Virgo injection statement yet.");
    return null;
  }
  if (rec.injectionHits === null) return null;
  const found = (v1 && p.s.useVirgoInjComment ? rec.virgoInjections ?? 0 : 0) + rec.injectionHits;
  rec.injectionsfound = found;
  rec.injectionlogkey = "yes";
  const t = pyFloat(p.s.injectionWindow);
  const v = virgoWording(p);
  if (found > 0) {
    if (!rec.labels.includes("INJ")) {
      if (v !== undefined) p.log("AP: Labeling INJ.");
      p.label("INJ");
    }
    if (!p.s.hardwareInj) {
      const text = "Ignoring new event because we found a hardware injection +/- " +
        `${t} seconds of event gpstime or from Virgo injections statement if V1 is involved.`;
      p.log(v === undefined ? `AP: ${text}` : `AP: ${v}Hardware injection found. Ignoring.`);
      p.once(text);
      return rec.injectionCheckresult = false;
    }
    p.log(
      v === undefined
        ? `AP: Found hardware injection +/- ${t} seconds of event gpstime or from Virgo ` +
          "injections statement if V1 is involved but treating as real event in config."
        : `AP: ${v}Hardware injection found but treating as a real event in config setting.`,
    );
    return rec.injectionCheckresult = true;
  }
  p.log(
    v === undefined
      ? `AP: No hardware injection found near event gpstime +/- ${t} seconds or from Virgo ` +
        "injections statement if V1 is involved."
      : `AP: ${v}No hardware injection found.`,
  );
  return rec.injectionCheckresult = true;
}

function skymapCheck(p: Plan, state: State): Verdict {
  const rec = p.rec;
  const count = Object.keys(rec.lvemskymaps).length;
  const current = currentSkymap(rec);
  let ok: Verdict = null;
  if (state === "preliminary_to_initial") {
    if (count >= 1) {
      p.once(`Initial skymap tagged lvem ${current} available.`);
      ok = true;
    }
  } else if (count >= 2 && current !== rec.lastsentskymap) {
    p.once(`Update skymap tagged lvem ${current} available.`);
    ok = true;
  }
  return rec.have_lvem_skymapCheckresult = ok;
}

function idqCheck(p: Plan): Verdict {
  const rec = p.rec;
  if (rec.idq_joint_fapCheckresult !== null) return rec.idq_joint_fapCheckresult;
  if (p.s.ignoreIdq.includes(rec.group)) return rec.idq_joint_fapCheckresult = true;
  const thr = threshold(
    p.s,
    "idq_joint_fapCheck",
    "idqthresh",
    rec.pipeline,
    rec.search,
    p.s.idqThresh,
  );
  const pipelines = p.s.idqPipelines;
  const ifos = rec.instruments.filter((ifo) => ifo === "H1" || ifo === "L1");
  const expected = pipelines.length * ifos.length;
  const values = Object.entries(rec.idqvalues);
  for (const pipeline of pipelines) {
    rec.jointfapvalues[pipeline] = values
      .filter(([key]) => key.includes(pipeline))
      .reduce((product, [, value]) => product * value, 1);
  }
  const joint = Math.min(...pipelines.map((q) => rec.jointfapvalues[q] ?? 1));
  if (values.length < expected || values.length === 0) {
    p.once("Have not gotten all the minfap values yet.");
    return values.length > 0 && joint < thr ? idqVerdict(p, joint, thr, "early") : null;
  }
  if (values.length > expected) {
    p.once("Too many minfap values in idqvalues dictionary.");
    return null;
  }
  p.once("Ready to run iDQ checks.");
  for (const pipeline of pipelines) {
    p.once(
      `Got joint_fap = ${pyFloat(rec.jointfapvalues[pipeline] ?? 1)} for iDQ pipeline ${pipeline}.`,
    );
  }
  return idqVerdict(p, joint, thr, joint > thr ? "pass" : "fail");
}

/** The iDQ verdict, with its GraceDB log once (idqlogkey) and its local message. */
function idqVerdict(p: Plan, joint: number, thr: number, how: "early" | "pass" | "fail"): Verdict {
  const rec = p.rec;
  const v = pyFloat(joint);
  const t = pyFloat(thr);
  const done = "AP: Finished running iDQ checks. Candidate event";
  const comment = how === "early"
    ? `${done} rejected because incomplete joint min-FAP value already less than iDQ threshold. ${v} < ${t}`
    : how === "pass"
    ? `${done} passed iDQ checks. ${v} > ${t}`
    : `${done} rejected due to low iDQ FAP value. ${v} < ${t}`;
  if (rec.idqlogkey === "no") p.log(comment);
  rec.idqlogkey = "yes";
  p.once(how === "pass" ? `Passed iDQ check: ${v} > ${t}.` : `iDQ check result: ${v} < ${t}`);
  return rec.idq_joint_fapCheckresult = how === "pass";
}

function operatorCheck(p: Plan): Verdict {
  const rec = p.rec;
  if (rec.operator_signoffCheckresult !== null) return rec.operator_signoffCheckresult;
  const statuses = Object.values(rec.operatorsignoffs);
  if (statuses.includes("NO")) {
    if (rec.operatorlogkey === "no") p.onceLogged("Candidate event failed operator signoff check.");
    rec.operatorlogkey = "yes";
    return rec.operator_signoffCheckresult = false;
  }
  if (statuses.length < rec.instruments.length) {
    p.once("Not all operators have signed off yet.");
    return null;
  }
  if (rec.operatorlogkey === "no") p.onceLogged("Candidate event passed operator signoff check.");
  rec.operatorlogkey = "yes";
  return rec.operator_signoffCheckresult = true;
}

function advocateCheck(p: Plan): Verdict {
  const rec = p.rec;
  if (rec.advocate_signoffCheckresult !== null) return rec.advocate_signoffCheckresult;
  if (rec.advocatesignoffs.length === 0) {
    p.once("Advocates have not signed off yet.");
    return null;
  }
  const ok = !rec.advocatesignoffs.includes("NO");
  if (rec.advocatelogkey === "no") {
    p.onceLogged(`Candidate event ${ok ? "passed" : "failed"} advocate signoff check.`);
  }
  rec.advocatelogkey = "yes";
  return rec.advocate_signoffCheckresult = ok;
}

function virgoCheck(p: Plan): Verdict {
  const rec = p.rec;
  if (rec.virgo_dqCheckresult !== null) return rec.virgo_dqCheckresult;
  const say = (text: string, verdict: boolean) => {
    if (rec.virgo_dqlogkey === "no") p.onceLogged(text);
    rec.virgo_dqlogkey = "yes";
    return rec.virgo_dqCheckresult = verdict;
  };
  if (!rec.instruments.includes("V1")) {
    return say("Automatically passed Virgo DQ check -- V1 not involved.", true);
  }
  if (rec.virgo_dqIsVetoed === null) return null;
  return rec.virgo_dqIsVetoed
    ? say("Rejecting because of Virgo veto.", false)
    : say("Passed Virgo DQ check.", true);
}
