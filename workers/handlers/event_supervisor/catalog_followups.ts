/**
 * The checks sky-map uploads (the FITS list) and follow-up messages (the
 * original's PARENT_CHILD table) create. Each entry's `on` is the update
 * name that creates it; see `catalog.ts` for the whole catalog.
 *
 * @module
 */

import { type CheckSpec, file, logrx, omegaScan, simpleLog } from "./catalog_types.ts";
import { IDQ } from "./catalog_idq.ts";

const sanityText = "check sanity and formatting of {fits}";

/** Created by every upload of a `.fits` or `.fits.gz` file, in this order. */
export const FITS_LIST: CheckSpec[] = [
  {
    section: "skymap sanity",
    on: "fits",
    inputs: ["fits"],
    key: "{fits}",
    tasks: [{
      name: "skymapSanity",
      description: sanityText,
      dt: "dt",
      rule: { kind: "sanity", fits: "{fits}" },
    }],
  },
  {
    section: "plot skymap",
    on: "fits",
    inputs: ["fits", "fitsTags"],
    key: "{fits}",
    tasks: [{
      name: "plotSkymap",
      description: sanityText,
      dt: "dt",
      rule: file("{fitsBase}.png", { tags: "upload" }),
    }],
  },
  {
    section: "skyviewer",
    on: "fits",
    inputs: ["fits", "fitsTags"],
    key: "{fits}",
    tasks: [{
      name: "skyviewer",
      description: sanityText,
      dt: "dt",
      rule: file("{fitsStem}.json", { tags: "upload" }),
    }],
  },
  {
    section: "snglFITS start",
    on: "fits",
    inputs: ["fits"],
    key: "{fits}",
    tasks: [{
      name: "snglFITSStart",
      description: "check that snglFITS started processing {fits}",
      dt: "dt",
      rule: logrx(
        "started skymap summary for .*{fits}.*",
        "found snglFITS start message for {fits}",
        "could not find snglFITS start message for {fits}",
      ),
    }],
  },
];

const BAYESWAVE_FACTORS = [
  "found Bayeswave BayesFactors message",
  "could not find Bayeswave BayesFactors message",
] as const;

/** Created by the follow-up messages the original's PARENT_CHILD table names, in its order. */
export const PARENT_CHILD: CheckSpec[] = [
  IDQ,
  omegaScan("h1 omega scan"),
  omegaScan("l1 omega scan"),
  omegaScan("cit omega scan"),
  {
    section: "segdb2grcdb",
    on: "segdb2grcdb start",
    inputs: ["flags"],
    options: { flags: "words", "veto defs": "empty?", "veto def dt": "seconds?" },
    tasks: [
      {
        forEach: "flag",
        tasks: [{
          name: "segDB2grcDBFlag",
          description: "check that segDB2grcDB posted the expected individual flags",
          dt: "flags dt",
          rule: file("{flagPattern}", { regex: true }),
        }],
      },
      {
        name: "segDB2grcDBAny",
        description: "check that segDB2grcDB posted the expected summaries of all active flags",
        dt: "any dt",
        ifOption: "any dt",
        rule: file("allActive-(.*)-(.*).json", { regex: true }),
      },
      simpleLog(
        "segDB2grcDBFinish",
        "check that segDB2grcDB finished",
        "finish dt",
        "finished searching for segments in : ",
        "found segDB2grcDB finish message",
        "could not find segDB2grcDB finish message",
      ),
    ],
  },
  {
    section: "bayestar start",
    on: "psd",
    inputs: [],
    tasks: [simpleLog(
      "bayestarStart",
      "a check that bayestar started as expected",
      "dt",
      "INFO:BAYESTAR:starting sky localization",
      "found BAYESTAR starting message",
      "could not find a BAYESTAR starting message",
    )],
  },
  {
    section: "bayestarNoVirgo",
    on: "psd",
    inputs: [],
    options: { "skymap tagnames": "words?" },
    tasks: [{
      name: "bayestarNoVirgoSkymap",
      description: "a check that bayestar produced a skymap which excludes virgo",
      dt: "skymap dt",
      rule: { kind: "ifVirgo", file: file("bayestar_no_virgo.fits.gz", { tags: "option" }) },
    }],
  },
  {
    section: "em bright",
    on: "psd",
    inputs: [],
    tasks: [{
      name: "emBright",
      description: "a check that EM bright classifier posted a result",
      dt: "dt",
      rule: file("Source_Classification_{graceid}.json"),
    }],
  },
  {
    section: "bayestar",
    on: "bayestar start",
    inputs: [],
    options: { "skymap tagnames": "words?" },
    tasks: [{
      name: "bayestarSkymap",
      description: "a check that bayestar produced a skymap",
      dt: "skymap dt",
      rule: file("bayestar.fits.gz", { tags: "option" }),
    }],
  },
  {
    section: "bayestar finish",
    on: "bayestar skymap",
    inputs: [],
    tasks: [simpleLog(
      "bayestarFinish",
      "a check that bayestar finished as expected",
      "finish dt",
      "INFO:BAYESTAR:sky localization complete",
      "found BAYESTAR completion message",
      "could not find a BAYESTAR completion message",
    )],
  },
  {
    section: "bayeswave pe",
    on: "bayeswave pe start",
    inputs: [],
    options: { "skymap tagnames": "words?" },
    tasks: [
      simpleLog(
        "bayeswavePEPostSamp",
        "a check that BayesWave PE posted posterior samples",
        "post samp dt",
        "BWB Follow-up results",
        "found Bayeswave link to follow-up results",
        "could not find Bayeswave link to follow-up results",
      ),
      simpleLog(
        "bayeswavePEEstimate",
        "a check that BayesWave PE posted estimates of parameters",
        "estimate dt",
        "BWB parameter estimation",
        ...BAYESWAVE_FACTORS,
      ),
      simpleLog(
        "bayeswavePEBayesFactors",
        "a check that BayesWave PE posted Bayes Factors",
        "bayes factor dt",
        "BWB Bayes Factors",
        ...BAYESWAVE_FACTORS,
      ),
      {
        name: "bayeswavePESkymap",
        description: "a check that BayesWave PE posted a skymap",
        dt: "skymap dt",
        rule: file("BayesWave.fits.gz", { tags: "option" }),
      },
    ],
  },
  {
    section: "lalinf",
    on: "lalinf start",
    inputs: [],
    options: { "skymap tagnames": "words?", "post samp dt": "seconds?" },
    tasks: [
      {
        name: "lalinfSkymap",
        description: "a check that LALInference posted a skymap",
        dt: "skymap dt",
        rule: file("LALInference.fits.gz", { tags: "option" }),
      },
      simpleLog(
        "lalinfFinish",
        "a check that LALInference finished",
        "finish dt",
        "LALInference online estimation finished",
        "found LALInference completion message",
        "could not find LALInference completion message",
      ),
    ],
  },
  {
    section: "lib pe",
    on: "lib pe start",
    inputs: [],
    options: { "skymap tagnames": "words?" },
    tasks: [
      {
        name: "libPEPostSamp",
        description: "a check that LIB PE posted posterior samples",
        dt: "post samp dt",
        rule: file("posterior_samples.dat"),
      },
      simpleLog(
        "libPEBayesFactors",
        "a check that LIB PE posted Bayes Factors",
        "bayes factor dt",
        "LIB PE summary",
        "found LIB PE BayesFactors message",
        "could not find LIB PE BayesFactors message",
      ),
      {
        name: "libPESkymap",
        description: "a check that LIB PE posted a skymap",
        dt: "skymap dt",
        rule: file("LIB.fits.gz", { tags: "option" }),
      },
      simpleLog(
        "libPEFinish",
        "a check that LIB PE finished",
        "finish dt",
        "LIB Parameter estimation finished.",
        "found LIB PE completion message",
        "could not find LIB PE completion message",
      ),
    ],
  },
  {
    section: "snglFITS",
    on: "snglFITS start",
    inputs: ["snglFits"],
    key: "{fits}",
    tasks: [
      {
        name: "snglFITShtml",
        description: "check that snglFITS posted an html for {fits}",
        dt: "html dt",
        rule: file("{fitsCut}-skymapSummary.html", {
          log: { text: "skymap summary for .*{fits}.*can be found.*here.*", regex: true },
        }),
      },
      {
        name: "snglFITSFinish",
        description: "check that snglFITS finished processing {fits}",
        dt: "finish dt",
        rule: logrx(
          "finished skymap summary for .*{fits}.*",
          "found snglFITS finish message for {fits}",
          "could not find snglFITS finish message for {fits}",
        ),
      },
    ],
  },
  {
    section: "multFITS start",
    on: "snglFITSFinish",
    inputs: [],
    tasks: [{
      name: "multFITSStart",
      description: "check that multFITS started processing",
      dt: "dt",
      rule: { kind: "multFitsStart" },
    }],
  },
  {
    section: "multFITS",
    on: "multFITS start",
    inputs: ["multFits"],
    key: "{names}",
    tasks: [
      {
        name: "multFITShtml",
        description: "check that multFITS posted an html",
        dt: "html dt",
        rule: file("{graceid}-skymapComparison.html", {
          log: { text: 'comparison of skymaps can be found <a href="(.*)">here</a>', regex: true },
        }),
      },
      {
        name: "multFITSFinish",
        description: "check that multFITS fimished processing {names}",
        dt: "finish dt",
        rule: logrx(
          "finished skymap comparison for .*{namesRx}.*",
          "found multFITS finish message for {names}",
          "could not find multFITS finish message for {names}",
        ),
      },
    ],
  },
];
