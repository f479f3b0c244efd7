/**
 * Texts as the original wrote them: Python `%` number formats, `re.match`
 * patterns, the GraceDB web address of an event, and template expansion
 * for the check catalog.
 *
 * @module
 */

/**
 * Python's `%.<digits>e`: the exponent has a sign and at least two digits.
 *
 * @example
 * ```ts
 * pyExp(1e-3, 3); // "1.000e-03"
 * pyExp(0, 3); // "0.000e+00"
 * ```
 */
export function pyExp(value: number, digits: number): string {
  if (Number.isNaN(value)) return "nan";
  if (!Number.isFinite(value)) return value > 0 ? "inf" : "-inf";
  const [mantissa, exponent = "0"] = value.toExponential(digits).split("e");
  const sign = exponent.startsWith("-") ? "-" : "+";
  const digitsOnly = exponent.replace(/^[-+]/, "");
  return `${mantissa}e${sign}${digitsOnly.padStart(2, "0")}`;
}

/** Python's `%.<digits>f`. */
export function pyFixed(value: number, digits: number): string {
  if (Number.isNaN(value)) return "nan";
  if (!Number.isFinite(value)) return value > 0 ? "inf" : "-inf";
  return value.toFixed(digits);
}

const compiled = new Map<string, RegExp>();

/**
 * A pattern with Python `re.match` semantics: anchored at the start only.
 * Values pasted into it are not escaped (a `.` in a file name is a
 * wildcard), as in the original.
 *
 * @example
 * ```ts
 * rx("bayestar.png").test("bayestar.png,0"); // true
 * rx("a.png").test("xa.png"); // false
 * ```
 */
export function rx(pattern: string): RegExp {
  let re = compiled.get(pattern);
  if (!re) {
    re = new RegExp(`^(?:${pattern})`);
    if (compiled.size > 10_000) compiled.clear();
    compiled.set(pattern, re);
  }
  return re;
}

/** Whether two lists of tags hold the same names the same number of times. */
export function sameTags(a: readonly string[], b: readonly string[]): boolean {
  if (a.length !== b.length) return false;
  const x = [...a].sort();
  const y = [...b].sort();
  return x.every((t, i) => t === y[i]);
}

/** Whether `have` holds every tag of `want`. */
export function hasTags(have: readonly string[], want: readonly string[]): boolean {
  return want.every((t) => have.includes(t));
}

/**
 * The web page of an event or superevent: the API root without its `api/`
 * segment (not the characters a, p, i, / stripped from both ends, as the
 * original did), then `events/view/<id>` or `superevents/<id>/view/`.
 *
 * @example
 * ```ts
 * eventUrl("https://gracedb.ligo.org/api/", "G123"); // "https://gracedb.ligo.org/events/view/G123"
 * ```
 */
export function eventUrl(api: string, id: string): string {
  const root = api.replace(/\/+$/, "").replace(/\/api(\/v\d+)?$/, "") + "/";
  return isSupereventId(id) ? `${root}superevents/${id}/view/` : `${root}events/view/${id}`;
}

/** Whether an id names a superevent (`S190425z`, `TS190425a`, `GW170817A`, ...). */
export function isSupereventId(id: string): boolean {
  return /^(T|M)?S\d{6}[a-z]+$|^(T|M)?GW\d{6}[A-Z]+$/.test(id);
}

/** Values a catalog template may name as `{name}`. */
export type Vars = Record<string, string>;

/**
 * Fills `{name}` places of a template; an unknown name is an error (a
 * catalog bug, or a site's check naming a value that does not exist).
 *
 * @example
 * ```ts
 * expand("could not find {fits}", { fits: "bayestar.fits.gz" });
 * ```
 */
export function expand(template: string, vars: Vars): string {
  return template.replace(/\{([A-Za-z]+)\}/g, (_, name: string) => {
    const value = vars[name];
    if (value === undefined) throw new RangeError(`No value for {${name}} in "${template}"`);
    return value;
  });
}

/** The names a template uses. */
export function templateNames(template: string): string[] {
  return [...template.matchAll(/\{([A-Za-z]+)\}/g)].map((m) => m[1]!);
}

/** Whitespace-split words of an option (multi-line lists work). */
export function words(text: string): string[] {
  return text.split(/\s+/).filter(Boolean);
}

/** Python's `strtobool`, case-insensitive; undefined when it is none of the words. */
export function strtobool(text: string): boolean | undefined {
  const t = text.trim().toLowerCase();
  if (["y", "yes", "t", "true", "on", "1"].includes(t)) return true;
  if (["n", "no", "f", "false", "off", "0"].includes(t)) return false;
  return undefined;
}

/** `YYYY-MM-DD HH:MM:SS` in UTC, from epoch seconds. */
export function utcText(seconds: number): string {
  return new Date(seconds * 1000).toISOString().replace("T", " ").replace(/\.\d+Z$/, "");
}

/** Epoch seconds of GraceDB's `created` (`YYYY-MM-DD HH:MM:SS UTC`); NaN when unreadable. */
export function parseCreated(text: string): number {
  const m = /^(\d{4}-\d\d-\d\d)[ T](\d\d:\d\d:\d\d(?:\.\d+)?)/.exec(text.trim());
  return m ? Date.parse(`${m[1]}T${m[2]}Z`) / 1000 : NaN;
}
