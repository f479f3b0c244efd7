/**
 * The shapes of the check catalog (see `catalog.ts`) and small builders
 * for its entries.
 *
 * @module
 */

import type { Rule } from "./rules.ts";

/** What an item reads from its alert or its section, to fill its templates. */
export type Input =
  | "event" // group, pipeline, search of the new event
  | "fits" // the uploaded FITS file
  | "fitsTags" // the tags of that upload
  | "snglFits" // the FITS file a snglFITS message names
  | "multFits" // the FITS files a multFITS message names
  | "ifo" // the IFO an iDQ start message names
  | "alertChansets" // the channel sets an omega-scan start message names
  | "chansets" // `chansets` of the section
  | "ifos" // `ifos` of the section
  | "classifiers" // `classifiers` of the section
  | "flags"; // `flags` of the section

/**
 * How an option is read: `seconds` a number >= 0, `number` any number,
 * `words` a whitespace-split list, `strtobool` Python's strtobool, `empty`
 * must be empty (the original raised "not implemented" otherwise), `text`
 * as written. A trailing `?` makes it optional.
 */
export type OptionKind = `${"seconds" | "number" | "words" | "strtobool" | "empty" | "text"}${
  | ""
  | "?"}`;

/** Rule templates: a rule whose strings may hold `{name}` places, or what fills it from options. */
export type RuleTemplate =
  | Exclude<Rule, { kind: "file" | "far" | "rate" | "notify" | "ifVirgo" }>
  | FileTemplate
  | { kind: "far" }
  | { kind: "rate"; by: "gpstime" | "created" }
  | { kind: "notify" }
  | { kind: "ifVirgo"; file: FileTemplate };

/**
 * A file rule template; tags come from nowhere, the `skymap tagnames`
 * option (`option`), the upload's tags (`upload`), or are listed.
 */
export interface FileTemplate {
  kind: "file";
  name: string;
  regex?: boolean;
  tags?: "option" | "upload" | string[];
  /** @default {"exact"} */
  tagMatch?: "exact" | "all";
  log?: { text: string; regex: boolean };
  minBytes?: number;
}

/** One task of a check. */
export interface TaskTemplate {
  /** The task's name (mail subjects). */
  name: string;
  /** What it checks (mail bodies). */
  description: string;
  /** The option holding its timeout, in seconds after the item's t0. */
  dt: string;
  /** Only made when this option is set and not empty (segdb2grcdb's `any dt`, notify's `by email`). */
  ifOption?: string;
  /** The log texts a start check accepts, from this option when set. */
  textsOption?: string;
  rule: RuleTemplate;
}

/** Tasks, repeated for each value of a list, or chosen by the event's pipeline. */
export type TaskEntry =
  | TaskTemplate
  | { forEach: "ifo" | "classifier" | "chanset" | "flag"; tasks: TaskEntry[] }
  | { byPipeline: Record<string, TaskTemplate[]> };

/** One check: a childConfig section of that name enables it. */
export interface CheckSpec {
  section: string;
  /** `new`, `fits`, or the update name (`classifyUpdate`) that creates it. */
  on: string;
  inputs: Input[];
  /** Options beyond the three `email on ...`, `far thr` and the tasks' `dt`s. */
  options?: Record<string, OptionKind>;
  /** For `on: "update"` (a site's check): the text (or regex) the update must hold. */
  match?: { text: string; regex: boolean };
  /** Deduplication key within (graceid, section). */
  key?: string;
  /** The item's description, for logs. */
  description?: string;
  tasks: TaskEntry[];
}

export const log = (texts: string | string[], found: string, missing: string): RuleTemplate => ({
  kind: "log",
  texts: Array.isArray(texts) ? texts : [texts],
  found,
  missing,
});
export const logrx = (pattern: string, found: string, missing: string): RuleTemplate => ({
  kind: "logrx",
  pattern,
  found,
  missing,
});
export const file = (
  name: string,
  more: Omit<FileTemplate, "kind" | "name"> = {},
): FileTemplate => ({
  kind: "file",
  name,
  ...more,
});

/** A log check whose texts are `found`/`missing` around one subject. */
export const simpleLog = (
  name: string,
  description: string,
  dt: string,
  text: string | string[],
  found: string,
  missing: string,
): TaskTemplate => ({ name, description, dt, rule: log(text, found, missing) });

export const omegaScan = (section: string): CheckSpec => ({
  section,
  on: `${section} start`,
  inputs: ["alertChansets"],
  key: "{chansets}",
  tasks: [
    {
      forEach: "chanset",
      tasks: [{
        name: "omegaScanData",
        description: "a check that OmegaScans posted data for {chanset}",
        dt: "data dt",
        rule: file("{chanset}.json"),
      }],
    },
    {
      name: "omegaScanFinish",
      description: "a check that OmegaScans finished for {chansets}",
      dt: "finish dt",
      rule: log(
        "automatic OmegaScans finished for: {chansets}",
        "found OmegaScan start message for {chansets}",
        "could not find OmegaScan finished message for {chansets}",
      ),
    },
  ],
});
