/**
 * A reader for the INI dialect of Python 2.7's `ConfigParser` and
 * `SafeConfigParser`, which the files users bring were written for.
 *
 * Quirks kept on purpose, because the old files rely on them:
 * - the first `=` or `:` splits a line; option names may hold spaces and signs;
 * - option names are case-insensitive, section names are not;
 * - whole-line comments start with `#` or `;` in the first column, or with
 *   the word `rem`; inside a value, only the first `;` is looked at, and it
 *   starts a comment when whitespace precedes it;
 * - an indented line continues the previous value (joined with a newline),
 *   and is taken as written: no comment is stripped from it;
 * - a value of exactly `""` is empty; other quotes are kept;
 * - `[DEFAULT]` shows through in every section; `%(name)s` interpolates and
 *   `%%` is a literal percent sign, when a value is read.
 *
 * The two classes differ in one thing, interpolation: `SafeConfigParser`
 * (childConfigs) refuses a `%` not followed by `%` or `(`, while
 * `ConfigParser` (the original's listener config) leaves a value without
 * `%(` exactly as written (a lone `%` kept, `%%` kept as two) and formats a
 * value with `%(` as Python's `%` operator does, pass after pass.
 *
 * @module
 */

import { ConfigError } from "../core/config_error.ts";

/** One option's raw value and the line it started on. */
export interface IniEntry {
  /** The value as written (continuation lines joined), before interpolation. */
  readonly value: string;
  /** The 1-based line the option starts on. */
  readonly line: number;
}

/** One `[section]`: where it first appeared and its options (lower-case names). */
export interface IniSectionData {
  /** The 1-based line of the section header. */
  readonly line: number;
  /** Options by lower-case name. */
  readonly entries: Map<string, IniEntry>;
}

/**
 * A parsed file as plain data, so it can cross `postMessage`. Wrap it in
 * {@linkcode Ini} to read values.
 */
export interface IniData {
  /** The file the data was read from. */
  readonly file: string;
  /** The `[DEFAULT]` options, which show through in every section. */
  readonly defaults: Map<string, IniEntry>;
  /** Sections by name (case-sensitive), in file order. */
  readonly sections: Map<string, IniSectionData>;
  /** Whose interpolation rules apply; `SafeConfigParser` when absent. */
  readonly dialect?: IniDialect;
}

/** The Python 2.7 class whose interpolation rules a file is read with. */
export type IniDialect = "ConfigParser" | "SafeConfigParser";

const SECTION_RE = /^\[([^\]]+)\]/;
const OPTION_RE = /^([^:=\s][^:=]*?)\s*([:=])\s*(.*)$/;
const VARIABLE_RE = /^%\(([^)]+)\)s/;
const MAX_INTERPOLATION_DEPTH = 10;
const TRUE_WORDS = new Set(["1", "yes", "true", "on"]);
const FALSE_WORDS = new Set(["0", "no", "false", "off"]);
const FLOAT_RE = /^[+-]?(?:(?:\d+\.?\d*|\.\d+)(?:e[+-]?\d+)?|inf(?:inity)?|nan)$/i;
const INT_RE = /^[+-]?\d+$/;

/** Strips what `ConfigParser` treats as an inline comment from a value. */
function stripInlineComment(value: string): string {
  const pos = value.indexOf(";");
  if (pos === -1) return value;
  // Python checks optval[pos-1], which for pos 0 is the last character.
  const before = pos === 0 ? value.at(-1) : value[pos - 1];
  return before !== undefined && /\s/.test(before) ? value.slice(0, pos) : value;
}

function isCommentLine(line: string): boolean {
  if (line.trim() === "" || line[0] === "#" || line[0] === ";") return true;
  const first = line.trim().split(/\s+/, 1)[0] ?? "";
  return (line[0] === "r" || line[0] === "R") && first.toLowerCase() === "rem";
}

/**
 * Parses INI text the way Python 2.7's `ConfigParser.read` does.
 *
 * @example
 * ```ts
 * const data = parseIni("[a b]\nKey = 1 ; note\n", "x.ini");
 * new Ini(data).get("a b", "key"); // "1"
 * ```
 *
 * @throws {ConfigError} naming `file:line` for a line that is neither a
 * section, an option, a continuation nor a comment.
 */
export function parseIni(
  text: string,
  file: string,
  dialect: IniDialect = "SafeConfigParser",
): IniData {
  type Draft = Map<string, { line: number; parts: string[] }>;
  const defaults: Draft = new Map();
  const sections = new Map<string, { line: number; draft: Draft }>();
  const lines = text.replace(/^\uFEFF/, "").split("\n");
  let current: Draft | undefined;
  let option: string | undefined;

  for (let i = 0; i < lines.length; i++) {
    const line = (lines[i] ?? "").replace(/\r$/, "");
    const lineNo = i + 1;
    if (isCommentLine(line)) continue;
    if (/^\s/.test(line) && current && option !== undefined) {
      const value = line.trim();
      if (value) current.get(option)?.parts.push(value);
      continue;
    }
    const header = SECTION_RE.exec(line);
    if (header) {
      const name = header[1] ?? "";
      if (name === "DEFAULT") current = defaults;
      else {
        let section = sections.get(name);
        if (!section) {
          sections.set(name, section = { line: lineNo, draft: new Map() });
        }
        current = section.draft;
      }
      option = undefined;
      continue;
    }
    if (!current) {
      throw new ConfigError(
        file,
        `File contains no section headers: ${JSON.stringify(line)}`,
        { line: lineNo },
      );
    }
    const match = OPTION_RE.exec(line);
    if (!match) {
      throw new ConfigError(
        file,
        `Cannot parse line: ${
          JSON.stringify(line)
        } (expected "name = value", "[section]" or a comment)`,
        { line: lineNo },
      );
    }
    option = (match[1] ?? "").trimEnd().toLowerCase();
    let value = stripInlineComment(match[3] ?? "").trim();
    if (value === '""') value = "";
    current.set(option, { line: lineNo, parts: [value] });
  }
  const finish = (draft: Draft) =>
    new Map(
      [...draft].map((
        [name, { line, parts }],
      ) => [name, { line, value: parts.join("\n") }]),
    );
  return {
    file,
    dialect,
    defaults: finish(defaults),
    sections: new Map(
      [...sections].map((
        [name, { line, draft }],
      ) => [name, { line, entries: finish(draft) }]),
    ),
  };
}

/** Reads values out of {@linkcode IniData} with `ConfigParser`'s getters. */
export class Ini {
  /** The parsed file, as plain data (it crosses `postMessage`). */
  readonly data: IniData;

  /** Wraps parsed data; read a file with {@linkcode readIni}. */
  constructor(data: IniData) {
    this.data = data;
  }

  /** The file these values came from. */
  get file(): string {
    return this.data.file;
  }

  /** Section names in file order, without `DEFAULT`. */
  sections(): string[] {
    return [...this.data.sections.keys()];
  }

  /** Whether the file has `[section]`. */
  hasSection(section: string): boolean {
    return this.data.sections.has(section);
  }

  /** Option names visible in a section, `DEFAULT` ones included. */
  options(section: string): string[] {
    const own = this.data.sections.get(section)?.entries.keys() ?? [];
    return [...new Set([...own, ...this.data.defaults.keys()])];
  }

  /** Whether `option` is set in `section` (or in `[DEFAULT]`). */
  has(section: string, option: string): boolean {
    return this.#entry(section, option.toLowerCase()) !== undefined;
  }

  /** The line an option starts on (its section's line when absent). */
  line(section: string, option?: string): number | undefined {
    if (option !== undefined) {
      const entry = this.#entry(section, option.toLowerCase());
      if (entry) return entry.line;
    }
    return this.data.sections.get(section)?.line;
  }

  /**
   * The interpolated value of an option; `fallback` when absent.
   *
   * @throws {ConfigError} when the section or option is missing and there is
   * no fallback, or when interpolation fails.
   */
  get(section: string, option: string, fallback?: string): string {
    const name = option.toLowerCase();
    const entry = this.#entry(section, name);
    if (!entry) {
      if (fallback !== undefined) return fallback;
      if (!this.data.sections.has(section)) {
        throw new ConfigError(this.file, `No section [${section}]`);
      }
      throw new ConfigError(
        this.file,
        `Missing required option "${name}" in [${section}]`,
        { line: this.data.sections.get(section)?.line },
      );
    }
    return this.data.dialect === "ConfigParser"
      ? this.#format(section, name, entry)
      : this.#interpolate(section, name, entry, entry.value, 1);
  }

  /** A float as Python's `float()` reads it (`1e3`, `inf`, ` 2.5 `). */
  getFloat(section: string, option: string, fallback?: number): number {
    if (fallback !== undefined && !this.has(section, option)) return fallback;
    const text = this.get(section, option).trim();
    if (!FLOAT_RE.test(text)) {
      throw this.#valueError(section, option, `is not a number: "${text}"`);
    }
    const lower = text.toLowerCase().replace(/^\+/, "");
    if (lower.endsWith("nan")) return NaN;
    if (lower.includes("inf")) {
      return lower.startsWith("-") ? -Infinity : Infinity;
    }
    return Number(text);
  }

  /** An integer as Python's `int()` reads it. */
  getInt(section: string, option: string, fallback?: number): number {
    if (fallback !== undefined && !this.has(section, option)) return fallback;
    const text = this.get(section, option).trim();
    if (!INT_RE.test(text)) {
      throw this.#valueError(section, option, `is not an integer: "${text}"`);
    }
    return Number(text);
  }

  /** A boolean as `getboolean`: 1/yes/true/on, 0/no/false/off, any case. */
  getBoolean(section: string, option: string, fallback?: boolean): boolean {
    if (fallback !== undefined && !this.has(section, option)) return fallback;
    const text = this.get(section, option).toLowerCase();
    if (TRUE_WORDS.has(text)) return true;
    if (FALSE_WORDS.has(text)) return false;
    throw this.#valueError(
      section,
      option,
      `is not a boolean: "${text}" (use 1/yes/true/on or 0/no/false/off)`,
    );
  }

  #valueError(section: string, option: string, what: string): ConfigError {
    return new ConfigError(
      this.file,
      `[${section}] ${option.toLowerCase()} ${what}`,
      { line: this.line(section, option) },
    );
  }

  #entry(section: string, name: string): IniEntry | undefined {
    if (name === "__name__" && this.data.sections.has(section)) {
      return { value: section, line: this.data.sections.get(section)!.line };
    }
    return this.data.sections.get(section)?.entries.get(name) ??
      this.data.defaults.get(name);
  }

  /**
   * `ConfigParser._interpolate` (Python 2.7): nothing happens to a value
   * without `%(`; otherwise it goes through Python's `value % vars` until
   * no `%(` is left, at most ten times.
   */
  #format(section: string, option: string, origin: IniEntry): string {
    const fail = (why: string) =>
      new ConfigError(this.file, `[${section}] ${option}: ${why}`, { line: origin.line });
    let value = origin.value;
    for (let pass = 0; pass < MAX_INTERPOLATION_DEPTH && value.includes("%("); pass++) {
      value = value.replace(/%(?:\(([^)]*)\))?(.?)/g, (whole, name, conversion) => {
        if (name === undefined && conversion === "%") return "%";
        if (name !== undefined && conversion === "s") {
          const ref = this.#entry(section, name.toLowerCase());
          if (!ref) throw fail(`"%(${name})s" names no option in [${section}]`);
          return ref.value;
        }
        throw fail(
          `${
            JSON.stringify(whole)
          } cannot be formatted (this value holds "%(", so Python's ConfigParser formats it with %: write a lone percent sign as "%%")`,
        );
      });
    }
    if (value.includes("%(")) {
      throw fail(`interpolation nested deeper than ${MAX_INTERPOLATION_DEPTH}`);
    }
    return value;
  }

  #interpolate(
    section: string,
    option: string,
    origin: IniEntry,
    value: string,
    depth: number,
  ): string {
    const fail = (why: string) =>
      new ConfigError(this.file, `[${section}] ${option}: ${why}`, {
        line: origin.line,
      });
    if (depth > MAX_INTERPOLATION_DEPTH) {
      throw fail(`interpolation nested deeper than ${MAX_INTERPOLATION_DEPTH}`);
    }
    let out = "";
    let rest = value;
    while (rest) {
      const p = rest.indexOf("%");
      if (p < 0) return out + rest;
      out += rest.slice(0, p);
      rest = rest.slice(p);
      const next = rest[1];
      if (next === "%") {
        out += "%";
        rest = rest.slice(2);
      } else if (next === "(") {
        const m = VARIABLE_RE.exec(rest);
        if (!m) {
          throw fail(`bad interpolation reference ${JSON.stringify(rest)}`);
        }
        const name = (m[1] ?? "").toLowerCase();
        rest = rest.slice(m[0].length);
        const ref = this.#entry(section, name);
        if (!ref) throw fail(`"%(${name})s" names no option in [${section}]`);
        out += ref.value.includes("%")
          ? this.#interpolate(section, option, origin, ref.value, depth + 1)
          : ref.value;
      } else {
        throw fail(
          `"%" must be followed by "%" or "(", found ${JSON.stringify(rest)}`,
        );
      }
    }
    return out;
  }
}

/** Reads and parses a file; read errors become a `ConfigError` for it. */
export async function readIni(
  path: string,
  dialect: IniDialect = "SafeConfigParser",
): Promise<Ini> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (error) {
    const why = error instanceof Deno.errors.NotFound
      ? "No such file"
      : error instanceof Deno.errors.PermissionDenied ||
          error instanceof Deno.errors.NotCapable
      ? "Not readable"
      : error instanceof Deno.errors.IsADirectory
      ? "Is a directory"
      : "Cannot read";
    throw new ConfigError(path, `${why}: ${(error as Error).message}`, {
      cause: error,
    });
  }
  return new Ini(parseIni(text, path, dialect));
}
