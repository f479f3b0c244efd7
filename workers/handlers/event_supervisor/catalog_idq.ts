/**
 * The iDQ check the original's PARENT_CHILD table creates from an iDQ
 * start message: per classifier, 13 files found by pattern, each with its
 * log text, then the finish message (see `catalog.ts`).
 *
 * @module
 */

import { type CheckSpec, file, logrx, type TaskTemplate } from "./catalog_types.ts";

const idqTask = (
  name: string,
  what: string,
  dt: string,
  pattern: string,
  text: string,
  regex: boolean,
): TaskTemplate => ({
  name,
  description: `a check that iDQ ${what} for {classifier} at {ifo}`,
  dt,
  rule: file(pattern, { regex: true, log: { text, regex } }),
});

/** Per classifier, in run order for equal timeouts. */
const IDQ_TASKS: TaskTemplate[] = [
  idqTask(
    "idqGlitchFAP",
    "reported a glitch-FAP",
    "glitch fap dt",
    "{ifo}_{classifier}_minFAP_{graceid}-(.*)-(.*).json",
    "minimum glitch-FAP for {classifier} at {ifo} within \\[(.*), (.*)\\] is (.*)",
    true,
  ),
  // The original times the rank check with `glitch fap dt` too.
  idqTask(
    "idqRank",
    "reported a rank",
    "glitch fap dt",
    "{ifo}_{classifier}_maxRANK_{graceid}-(.*)-(.*).json",
    "maximum glitch-RANK for {classifier} at {ifo} within \\[(.*), (.*)\\] is (.*)",
    true,
  ),
  idqTask(
    "idqFAPFrame",
    "uploads fap timeseries frames",
    "fap frame dt",
    "{ifo}_idq_{classifier}_fap(.*)-(.*)-(.*).gwf",
    "iDQ fap timeseries for {classifier} at {ifo} within \\[(.*), (.*)\\] :",
    true,
  ),
  idqTask(
    "idqRankFrame",
    "uploads rank timeseries frames",
    "rank frame dt",
    "{ifo}_idq_{classifier}_rank(.*)-(.*)-(.*).gwf",
    "iDQ glitch-rank frame for {classifier} at {ifo} within \\[(.*), (.*)\\] :",
    true,
  ),
  idqTask(
    "idqTimeseriesPlot",
    "reproted timeseries information as expected",
    "timeseries plot dt",
    "{ifo}_{classifier}(.*)_timeseries-(.*)-(.*).png",
    "iDQ fap and glitch-rank timeseries plot for {classifier} at {ifo}:",
    true,
  ),
  idqTask(
    "idqActiveChan",
    "uploads a list of possible active channels",
    "active chan dt",
    "{ifo}_{classifier}_chanlist(.*)-(.*)-(.*).json",
    "iDQ (possible) active channels for {classifier} at {ifo}",
    false,
  ),
  idqTask(
    "idqActiveChanPlot",
    "uploads a plot of possible active channels",
    "active chan plot dt",
    "{ifo}_{classifier}(.*)_chanstrip-(.*)-(.*).png",
    "iDQ channel strip chart for {classifier} at {ifo}",
    false,
  ),
  idqTask(
    "idqCalibration",
    "reported the calibration data as expected",
    "calib dt",
    "{ifo}_{classifier}(.*)_calib-(.*)-(.*).json",
    "iDQ calibration sanity check for {classifier} at {ifo}",
    false,
  ),
  idqTask(
    "idqCalibrationPlot",
    "reported the calibration plot as expected",
    "calib plot dt",
    "{ifo}_{classifier}(.*)_calib-(.*)-(.*).png",
    "iDQ calibration sanity check figure for {classifier} at {ifo}",
    false,
  ),
  idqTask(
    "idqROC",
    "reported the ROC data as expected",
    "roc dt",
    "{ifo}_{classifier}(.*)_ROC-(.*)-(.*).json",
    "iDQ local ROC curves for {classifier} at {ifo}",
    false,
  ),
  idqTask(
    "idqROCPlot",
    "reported the ROC plot as expected",
    "roc plot dt",
    "{ifo}_{classifier}(.*)_ROC-(.*)-(.*).png",
    "iDQ local ROC figure for {classifier} at {ifo}",
    false,
  ),
  idqTask(
    "idqCalibStats",
    "reported the calibration statistics as expected",
    "calib stats dt",
    "{ifo}_{classifier}(.*)_calibStats-(.*)-(.*).json",
    "iDQ local calibration vital statistics for {classifier} at {ifo}",
    false,
  ),
  idqTask(
    "idqTrainStats",
    "reported the training statistics as expected",
    "train stats dt",
    "{ifo}_{classifier}(.*)_trainStats-(.*)-(.*).json",
    "iDQ local training vital statistics for {classifier} at {ifo}",
    false,
  ),
];

/** The `idq` check, made for the IFO an iDQ start message names. */
export const IDQ: CheckSpec = {
  section: "idq",
  on: "idq start",
  inputs: ["ifo", "classifiers"],
  key: "{ifo}",
  options: { classifiers: "words", "tables dt": "seconds?" },
  description: "a check that iDQ reported information as expected for ({classifiers}) at {ifo}",
  tasks: [
    { forEach: "classifier", tasks: IDQ_TASKS },
    {
      name: "idqFinish",
      description: "a check that iDQ finished reporting as expected at {ifo}",
      dt: "finish dt",
      rule: logrx(
        "Finished searching for iDQ information within \\[(.*), (.*)\\] at {ifo}",
        "found iDQ completion message at {ifo}",
        "could not find iDQ completion message at {ifo}",
      ),
    },
  ],
};
