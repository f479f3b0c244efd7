/**
 * A site's own checks, written in the childConfig without code: any
 * section that is not a built-in check and has a `check` option.
 *
 * ```ini
 * [gwcelery sky map]
 * created by = new                       ; new | fits | update TEXT | update ~ REGEX
 * check      = file bayestar.multiorder.fits
 *              log sky localization complete
 * tags       = sky_loc                   ; optional
 * dt         = 120
 * email on success   =
 * email on failure   = ops@example.org
 * email on exception = ops@example.org
 * ```
 *
 * Each `check` line is one task, due `dt` seconds after the alert that
 * created the item: `log TEXT` (a log comment contains TEXT), `logrx
 * REGEX` (a comment matches REGEX from its start), `file NAME` (the file
 * exists), `filerx REGEX` (a file whose name matches exists). With
 * `tags`, the matching log entry (for a file: the file's latest entry)
 * must carry at least those tags. Texts may name `{graceid}`, and for
 * `created by = fits` also `{fits}`, `{fitsBase}`, `{fitsStem}`,
 * `{fitsCut}`.
 *
 * @module
 */

import { ConfigError, type Ini } from "../../../lib/mod.ts";
import type { CheckSpec, RuleTemplate, TaskTemplate } from "./catalog_types.ts";
import { templateNames, words } from "./format.ts";

const FITS_NAMES = ["fits", "fitsBase", "fitsStem", "fitsCut"];

function fail(config: Ini, section: string, option: string, message: string): never {
  throw new ConfigError(config.file, `[${section}] ${message}`, {
    line: config.line(section, option),
  });
}

function checkRegex(config: Ini, section: string, option: string, pattern: string): void {
  try {
    new RegExp(pattern);
  } catch (error) {
    fail(
      config,
      section,
      option,
      `${option}: not a regular expression: ${(error as Error).message}`,
    );
  }
}

function trigger(config: Ini, section: string): Pick<CheckSpec, "on" | "match"> {
  const raw = config.get(section, "created by", "new").trim();
  if (raw === "new" || raw === "fits") return { on: raw };
  const m = /^update\s+(~\s+)?(.+)$/.exec(raw);
  if (!m) {
    fail(
      config,
      section,
      "created by",
      `created by must be new, fits, "update TEXT" or "update ~ REGEX", got "${raw}"`,
    );
  }
  const regex = m[1] !== undefined;
  if (regex) checkRegex(config, section, "created by", m[2]!);
  return { on: "update", match: { text: m[2]!, regex } };
}

function rule(line: string, tags: string[] | undefined): RuleTemplate {
  const [kind = "", ...rest] = line.split(/\s+/);
  const what = rest.join(" ");
  const tagged = tags ? ` tagged ${tags.join(",")}` : "";
  const withTags = tags ? { tags } : {};
  switch (kind) {
    case "log":
      return {
        kind: "log",
        texts: [what],
        found: `found log message "${what}"${tagged}`,
        missing: `could not find log message "${what}"${tagged}`,
        ...withTags,
      };
    case "logrx":
      return {
        kind: "logrx",
        pattern: what,
        found: `found a log message matching "${what}"${tagged}`,
        missing: `could not find a log message matching "${what}"${tagged}`,
        ...withTags,
      };
    default:
      return {
        kind: "file",
        name: what,
        regex: kind === "filerx",
        ...(tags ? { tags, tagMatch: "all" as const } : {}),
      };
  }
}

/** The catalog entry for a site's check section (see the module doc). */
export function customCheck(config: Ini, section: string): CheckSpec {
  const when = trigger(config, section);
  const lines = config.get(section, "check").split("\n").map((l) => l.trim()).filter(Boolean);
  if (lines.length === 0) fail(config, section, "check", "check names no expectation");
  const tags = config.has(section, "tags") ? words(config.get(section, "tags")) : undefined;
  const allowed = new Set(["graceid", ...(when.on === "fits" ? FITS_NAMES : [])]);
  const tasks: TaskTemplate[] = lines.map((line, i) => {
    const [kind = "", ...rest] = line.split(/\s+/);
    if (!["log", "logrx", "file", "filerx"].includes(kind) || rest.length === 0) {
      fail(
        config,
        section,
        "check",
        `check: "${line}" is not "log TEXT", "logrx REGEX", "file NAME" or "filerx REGEX"`,
      );
    }
    if (kind.endsWith("rx")) checkRegex(config, section, "check", rest.join(" "));
    for (const name of templateNames(line)) {
      if (!allowed.has(name)) fail(config, section, "check", `check: {${name}} is not known here`);
    }
    return {
      name: lines.length === 1 ? section : `${section} ${i + 1}`,
      description: config.get(section, "description", `a check for ${line}`),
      dt: "dt",
      rule: rule(line, tags),
    };
  });
  return {
    section,
    ...when,
    inputs: when.on === "fits" ? ["fits"] : [],
    options: { "created by": "text?", description: "text?", tags: "words?", check: "text" },
    ...(when.on === "fits" ? { key: "{fits}" } : {}),
    tasks,
  };
}
