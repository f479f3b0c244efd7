/**
 * Texts as the original wrote them: numbers as Python 2 printed floats
 * (they appear in GraceDB log comments that people and scripts read, and
 * that reconstruction parses back), times, and `str.format` templates.
 *
 * @module
 */

/**
 * A float as Python 2's `str()` printed it: 12 significant digits, `.0`
 * on integral values, exponents with a sign and at least two digits.
 *
 * @example
 * ```ts
 * pyFloat(1.9e-7); // "1.9e-07"
 * pyFloat(2); // "2.0"
 * pyFloat(1175388553.42); // "1175388553.42"
 * ```
 */
export function pyFloat(x: number): string {
  if (Number.isNaN(x)) return "nan";
  if (!Number.isFinite(x)) return x > 0 ? "inf" : "-inf";
  if (x === 0) return Object.is(x, -0) ? "-0.0" : "0.0";
  const [mantissa = "", power = "0"] = x.toExponential(11).split("e");
  const exponent = Number(power);
  if (exponent < -4 || exponent >= 12) {
    const digits = mantissa.replace(/\.?0+$/, "");
    const sign = exponent < 0 ? "-" : "+";
    return `${digits}e${sign}${String(Math.abs(exponent)).padStart(2, "0")}`;
  }
  let fixed = x.toFixed(Math.max(0, 11 - exponent));
  if (fixed.includes(".")) fixed = fixed.replace(/0+$/, "").replace(/\.$/, "");
  return /[.e]/.test(fixed) ? fixed : `${fixed}.0`;
}

/** A value as it reads in a log comment: floats as Python 2 printed them. */
export function pyText(value: number | string | null): string {
  if (value === null) return "None";
  return typeof value === "number" ? pyFloat(value) : value;
}

/**
 * `YYYY-mm-dd HH:MM:SS` in UTC (the original used the host's local time;
 * UTC reads the same on every host).
 */
export function stamp(seconds: number): string {
  return new Date(seconds * 1000).toISOString().replace("T", " ").replace(/\.\d+Z$/, "");
}

/**
 * Fills `{0}`, `{1}`, ... as Python's `str.format` does for positional
 * fields; `{{` and `}}` are literal braces.
 *
 * @example
 * ```ts
 * format("{0} from {1}", ["E1", "Fermi"]); // "E1 from Fermi"
 * ```
 */
export function format(template: string, args: readonly string[]): string {
  return template.replace(/\{\{|\}\}|\{(\d+)\}/g, (whole, index?: string) => {
    if (whole === "{{") return "{";
    if (whole === "}}") return "}";
    return args[Number(index)] ?? whole;
  });
}

/** Addresses in a config value (space- or comma-separated). */
export function addresses(text: string): string[] {
  return text.split(/[\s,]+/).filter(Boolean);
}

/** A comma-separated list, spaces removed (as the original split its lists). */
export function commaList(text: string): string[] {
  return text.replace(/\s+/g, "").split(",").filter(Boolean);
}
