/**
 * The check catalog, as data: every check section the original knows,
 * what creates it, what it reads from the alert and the childConfig, and
 * its tasks (name, description, timeout option, rule, messages). Strings
 * hold `{name}` places filled when an item is made (see `build.ts` for
 * the names). A site adds checks of its own in the childConfig
 * (`custom.ts`); they become entries of this same shape.
 *
 * Order matters: items an alert creates are made in catalog order, which
 * is the original's NEW list, FITS list and PARENT_CHILD order.
 *
 * @module
 */

import { type CheckSpec, file, log, logrx, simpleLog } from "./catalog_types.ts";
import { FITS_LIST, PARENT_CHILD } from "./catalog_followups.ts";

const CBC = [
  {
    name: "cbcCoinc",
    description: "check coinc.xml file for CBC events",
    dt: "dt",
    rule: file("coinc.xml"),
  },
  {
    name: "cbcPSD",
    description: "check psd.xml.gz file for CBC events",
    dt: "dt",
    rule: file("psd.xml.gz", { minBytes: 100 }),
  },
];
const CWB = [{
  name: "cWBTrigger",
  description: "a check of the trigger.txt file for cWB events",
  dt: "dt",
  rule: { kind: "trigger", format: "cwb" } as const,
}];
const OLIB = [{
  name: "oLIBTrigger",
  description: "a check of the trigger.json file for oLIB events",
  dt: "dt",
  rule: { kind: "trigger", format: "olib" } as const,
}];

const omegaStart = (section: string): CheckSpec => ({
  section,
  on: "new",
  inputs: ["chansets"],
  options: { chansets: "words" },
  tasks: [{
    name: "omegaScanStart",
    description: "a check that OmegaScans were started for {chansets}",
    dt: "dt",
    rule: log(
      "automatic OmegaScans begun for: {chansets}",
      "found OmegaScan start message for {chansets}",
      "could not find OmegaScan start message for {chansets}",
    ),
  }],
});

const NEW_LIST: CheckSpec[] = [
  {
    section: "event creation",
    on: "new",
    inputs: ["event"],
    description: "check {pipeline} event creation and trigger files",
    tasks: [{
      byPipeline: {
        CWB,
        LIB: OLIB,
        oLIB: OLIB,
        gstlal: CBC,
        MBTAOnline: CBC,
        "gstlal-spiir": CBC,
        pycbc: CBC,
        MBTA: CBC,
        spiir: CBC,
      },
    }],
  },
  {
    section: "far",
    on: "new",
    inputs: [],
    options: { "min far": "number", "max far": "number" },
    tasks: [{
      name: "far",
      description: "a check for propper FAR",
      dt: "dt",
      rule: { kind: "far" },
    }],
  },
  {
    section: "local rate",
    on: "new",
    inputs: ["event"],
    options: { "win+": "number", "win-": "number", "max rate": "number" },
    tasks: [{
      name: "localRate",
      description: "a check of local rates for {group}_{pipeline}{searchSuffix}",
      dt: "dt",
      rule: { kind: "rate", by: "gpstime" },
    }],
  },
  {
    section: "creation rate",
    on: "new",
    inputs: ["event"],
    options: { "win+": "number", "win-": "number", "max rate": "number" },
    tasks: [{
      name: "createRate",
      description: "a check of creation rate for {group}_{pipeline}{searchSuffix}",
      dt: "dt",
      rule: { kind: "rate", by: "created" },
    }],
  },
  {
    section: "external triggers",
    on: "new",
    inputs: [],
    tasks: [simpleLog(
      "externalTriggers",
      "a check that the external triggers search was completed",
      "dt",
      "Coincidence search complete",
      "found external triggers coinc search completion message",
      "could not find external triggers search completion message",
    )],
  },
  {
    section: "unblind injections",
    on: "new",
    inputs: [],
    // PASS iff the statement is there (the original had it the wrong way round).
    tasks: [simpleLog(
      "unblindInjections",
      "a check that the unblind injections search was completed",
      "dt",
      "No unblind injections in window",
      "process reported that no unblind injections were found",
      "could not find a statement about unblind injections",
    )],
  },
  {
    section: "lldqReport",
    on: "new",
    inputs: [],
    tasks: [simpleLog(
      "lldqReport",
      "a check that the lldq-report page was posted",
      "dt",
      "Automatic Data-quality report posted",
      "found lldq-report post",
      "could not find a lldq-report post",
    )],
  },
  {
    section: "idq start",
    on: "new",
    inputs: ["ifos"],
    options: { ifos: "words" },
    description: "a check that iDQ GraceDB follow-up started as expected at ({ifos})",
    tasks: [{
      forEach: "ifo",
      tasks: [{
        name: "idqStart",
        description: "a check that iDQ GraceDB follow-up started as expected at {ifo}",
        dt: "dt",
        rule: logrx(
          "Started searching for iDQ information within \\[(.*), (.*)\\] at {ifo}",
          "found iDQ starting message at {ifo}",
          "could not find iDQ starting message at {ifo}",
        ),
      }],
    }],
  },
  omegaStart("h1 omega scan start"),
  omegaStart("l1 omega scan start"),
  omegaStart("cit omega scan start"),
  {
    section: "segdb2grcdb start",
    on: "new",
    inputs: [],
    tasks: [simpleLog(
      "segDB2grcDBStart",
      "check that segDB2grcDB started",
      "dt",
      "began searching for segments in : ",
      "found segDB2grcDB starting message",
      "could not find segDB2grcDB starting message",
    )],
  },
  {
    section: "notify",
    on: "new",
    inputs: ["event"],
    options: {
      "ignore inj": "strtobool",
      "by email": "words?",
      "by sms": "empty?",
      "by phone": "empty?",
    },
    tasks: [{
      name: "notifyByEmail",
      description: "notify folks by email that a new event was created",
      dt: "dt",
      // With nobody to notify there is no item (the original left a task-less one behind).
      ifOption: "by email",
      rule: { kind: "notify" },
    }],
  },
  {
    section: "bayeswave pe start",
    on: "new",
    inputs: [],
    options: { "start messages": "text?" },
    tasks: [{
      ...simpleLog(
        "bayeswavePEStart",
        "a check that BayesWave PE started",
        "dt",
        ["BayesWave launched", "BayesWaveBurst launched"],
        "found BayesWave PE starting message",
        "could not find BayesWave PE starting message",
      ),
      textsOption: "start messages",
    }],
  },
  {
    section: "cwb pe",
    on: "new",
    inputs: [],
    options: { "skymap tagnames": "words?" },
    tasks: [
      simpleLog(
        "cWBPECED",
        "a check that cWB PE posted a link to a CED page",
        "ced dt",
        "cWB CED",
        "found link to cWB CED page",
        "could not find link to cWB CED page",
      ),
      simpleLog(
        "cWBPEEstimate",
        "a check that cWB PE posted estimates of parameters",
        "estimate dt",
        "cWB parameter estimation",
        "found cWB estimates of parameters",
        "could not find cWB estimates of parameters",
      ),
      {
        name: "cWBPESkymap",
        description: "a check that cWB PE posted a skymap",
        dt: "skymap dt",
        rule: file("skyprobcc_cWB.fits", { tags: "option" }),
      },
    ],
  },
  {
    section: "lalinf start",
    on: "new",
    inputs: [],
    options: { "start messages": "text?" },
    tasks: [{
      ...simpleLog(
        "lalinfStart",
        "a check that LALInference started",
        "dt",
        [
          "LALInference online parameter estimation started",
          "LALInference online estimation started",
        ],
        "found LALInference starting message",
        "could not find LALInference starting message",
      ),
      textsOption: "start messages",
    }],
  },
  {
    section: "lib pe start",
    on: "new",
    inputs: [],
    tasks: [simpleLog(
      "libPEStart",
      "a check that LIB PE started",
      "dt",
      "LIB Parameter estimation started.",
      "found LIB PE starting message",
      "could not find LIB PE starting message",
    )],
  },
];

/** Every built-in check, in creation order. */
export const CATALOG: readonly CheckSpec[] = [...NEW_LIST, ...FITS_LIST, ...PARENT_CHILD];

/** Sections the original registered but never created: accepted and not read. */
export const UNREACHABLE: readonly string[] = [
  "omega scan start",
  "omega scan",
  "cwb pe start",
  "idq omega scan start",
  "approval processor prelim dq",
  "approval processor segdb",
  "approval processor idq",
  "approval processor voevent",
  "approval processor gcn",
  "skymap summary start",
  "skymap summary",
  "dq summary",
];
