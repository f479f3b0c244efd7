/**
 * Items from catalog entries: the values an item reads from its alert
 * and its section (the `{name}` places of the catalog's templates), the
 * tasks they expand into, and each task's rule made concrete.
 *
 * Template names: `graceid`; with input `event`: `group`, `pipeline`,
 * `search`, `searchSuffix` (`_<search>` or empty); `fits`, `fitsBase` (up
 * to its first `.`), `fitsStem` (without `.fits.gz`/`.fits`), `fitsCut`
 * (before `.fits`); `ifo`, `ifos`; `classifier`, `classifiers`;
 * `chanset`, `chansets`; `flag`, `flagPattern`; `names`, `namesRx`.
 *
 * @module
 */

import type { Ini } from "../../../lib/mod.ts";
import {
  type Change,
  type EventFields,
  idqIfo,
  multFitsNames,
  omegaChansets,
  snglFitsName,
} from "./alerts.ts";
import type {
  CheckSpec,
  FileTemplate,
  RuleTemplate,
  TaskEntry,
  TaskTemplate,
} from "./catalog_types.ts";
import { expand, strtobool, type Vars, words } from "./format.ts";
import type { FileRule, Rule } from "./rules.ts";
import type { General } from "./settings.ts";
import { CheckItem, CheckTask } from "./task.ts";

/** What an item is made from. */
export interface Origin {
  graceid: string;
  t0: number;
  change: Extract<Change, { kind: "new" | "update" }>;
  config: Ini;
  general: General;
}

/** Lists a `forEach` walks. */
type Lists = Partial<Record<"ifo" | "classifier" | "chanset" | "flag", string[]>>;

const orNone = (v: string | null) => v ?? "None";

function fitsVars(fits: string): Vars {
  return {
    fits,
    fitsBase: fits.split(".")[0]!,
    fitsStem: fits.replace(/\.fits(\.gz)?$/, ""),
    fitsCut: fits.split(".fits")[0]!,
  };
}

/** The segdb2grcdb file pattern of a flag: `H1:DMT-ANALYSIS_READY:1` → `H1-DMT_ANALYSIS_READY_1-(.*)-(.*).xml.gz`. */
export function flagPattern(flag: string): string {
  const [ifo = "", ...rest] = flag.split(":");
  return `${ifo}-${rest.map((p) => p.replaceAll("-", "_")).join("_")}-(.*)-(.*).xml.gz`;
}

function eventVars(e: EventFields): Vars {
  return {
    group: orNone(e.group),
    pipeline: orNone(e.pipeline),
    search: e.search ?? "",
    searchSuffix: e.search ? `_${e.search}` : "",
  };
}

/** Reads the item's inputs; throws (failing this item only) when the alert lacks one. */
function inputs(spec: CheckSpec, o: Origin): { vars: Vars; lists: Lists; event: EventFields } {
  const c = o.change;
  const vars: Vars = { graceid: o.graceid };
  const lists: Lists = {};
  let event: EventFields = { group: null, pipeline: null, search: null };
  const option = (name: string) => words(o.config.get(spec.section, name));
  for (const input of spec.inputs) {
    switch (input) {
      case "event":
        if (c.kind === "new") event = c.event;
        Object.assign(vars, eventVars(event));
        break;
      case "fits": {
        if (c.kind !== "update") break;
        Object.assign(vars, fitsVars(c.file.slice(c.file.lastIndexOf("/") + 1)));
        break;
      }
      case "fitsTags":
        if (c.kind !== "update" || c.tags === null) {
          throw new Error("the upload alert has no tag_names");
        }
        break;
      case "snglFits":
        Object.assign(vars, fitsVars(snglFitsName(c.kind === "update" ? c.description : "")));
        break;
      case "multFits": {
        const names = multFitsNames(c.kind === "update" ? c.description : "");
        Object.assign(vars, { names: names.join(", "), namesRx: names.join(".*") });
        break;
      }
      case "ifo":
        vars.ifo = idqIfo(c.kind === "update" ? c.description : "");
        break;
      case "alertChansets":
        lists.chanset = omegaChansets(c.kind === "update" ? c.comment : "");
        vars.chansets = lists.chanset.join(", ");
        break;
      case "chansets":
        lists.chanset = option("chansets");
        vars.chansets = lists.chanset.join(", ");
        break;
      case "ifos":
        lists.ifo = option("ifos");
        vars.ifos = lists.ifo.join(",");
        break;
      case "classifiers":
        lists.classifier = option("classifiers");
        vars.classifiers = lists.classifier.join(",");
        break;
      case "flags":
        lists.flag = option("flags");
        break;
    }
  }
  return { vars, lists, event };
}

/** Task templates with the values each is made with, in order. */
function expandTasks(
  entries: readonly TaskEntry[],
  vars: Vars,
  lists: Lists,
  pipeline: string | null,
): { template: TaskTemplate; vars: Vars }[] {
  const out: { template: TaskTemplate; vars: Vars }[] = [];
  for (const entry of entries) {
    if ("forEach" in entry) {
      for (const value of lists[entry.forEach] ?? []) {
        const more: Vars = { ...vars, [entry.forEach]: value };
        if (entry.forEach === "flag") more.flagPattern = flagPattern(value);
        out.push(...expandTasks(entry.tasks, more, lists, pipeline));
      }
    } else if ("byPipeline" in entry) {
      const tasks = pipeline === null ? undefined : entry.byPipeline[pipeline];
      if (!tasks) throw new Error(`pipeline=${pipeline ?? "None"} not understood`);
      out.push(...expandTasks(tasks, vars, lists, pipeline));
    } else {
      out.push({ template: entry, vars });
    }
  }
  return out;
}

function fileRule(t: FileTemplate, vars: Vars, o: Origin, section: string): FileRule {
  let tags: string[] | null = null;
  if (Array.isArray(t.tags)) tags = t.tags;
  else if (t.tags === "upload" && o.change.kind === "update") tags = o.change.tags ?? [];
  else if (t.tags === "option" && o.config.has(section, "skymap tagnames")) {
    tags = words(o.config.get(section, "skymap tagnames"));
  }
  return {
    kind: "file",
    name: expand(t.name, vars),
    regex: t.regex ?? false,
    tags,
    tagMatch: t.tagMatch ?? "exact",
    log: t.log ? { text: expand(t.log.text, vars), regex: t.log.regex } : null,
    minBytes: t.minBytes ?? null,
  };
}

/** A concrete rule from a template. */
function makeRule(
  t: RuleTemplate,
  task: TaskTemplate,
  vars: Vars,
  o: Origin,
  spec: CheckSpec,
  event: EventFields,
): Rule {
  const section = spec.section;
  const num = (option: string) => o.config.getFloat(section, option);
  switch (t.kind) {
    case "log": {
      const texts = task.textsOption && o.config.has(section, task.textsOption)
        ? o.config.get(section, task.textsOption).split("\n").map((l) => l.trim()).filter(Boolean)
        : t.texts;
      return {
        ...t,
        texts: texts.map((x) => expand(x, vars)),
        found: expand(t.found, vars),
        missing: expand(t.missing, vars),
      };
    }
    case "logrx":
      return {
        ...t,
        pattern: expand(t.pattern, vars),
        found: expand(t.found, vars),
        missing: expand(t.missing, vars),
      };
    case "file":
      return fileRule(t, vars, o, section);
    case "ifVirgo":
      return { kind: "ifVirgo", file: fileRule(t.file, vars, o, section) };
    case "sanity":
      return { kind: "sanity", fits: expand(t.fits, vars) };
    case "far":
      return { kind: "far", min: num("min far"), max: num("max far") };
    case "rate":
      return {
        kind: "rate",
        by: t.by,
        group: event.group ?? "",
        pipeline: event.pipeline ?? "",
        search: event.search,
        pWin: num("win+"),
        mWin: num("win-"),
        maxRate: num("max rate"),
      };
    case "notify":
      return {
        kind: "notify",
        emails: words(o.config.get(section, "by email", "")),
        ignoreInj: strtobool(o.config.get(section, "ignore inj")) ?? false,
        group: orNone(event.group),
        pipeline: orNone(event.pipeline),
        search: event.search ?? "",
      };
    case "trigger":
    case "multFitsStart":
      return t;
  }
}

/** Makes the item of `spec` for this alert; throws when the alert lacks what the check reads. */
export function buildItem(spec: CheckSpec, o: Origin): CheckItem {
  const { vars, lists, event } = inputs(spec, o);
  const section = spec.section;
  const tasks = expandTasks(spec.tasks, vars, lists, event.pipeline)
    .filter(({ template }) =>
      !template.ifOption || o.config.get(section, template.ifOption, "").trim() !== ""
    )
    .map(({ template, vars }) =>
      new CheckTask(
        o.config.getFloat(section, template.dt),
        template.name,
        expand(template.description, vars),
        makeRule(template.rule, template, vars, o, spec, event),
      )
    );
  const list = (option: string) => words(o.config.get(section, option));
  return new CheckItem(o.t0, tasks, {
    graceid: o.graceid,
    section,
    key: spec.key ? expand(spec.key, vars) : "",
    description: expand(spec.description ?? `check ${section}`, vars),
    emails: {
      success: list("email on success"),
      failure: list("email on failure"),
      exception: list("email on exception"),
    },
    annotate: o.general.annotate,
    warnings: o.general.warnings,
  });
}
