/**
 * JSON as Python's `json` module writes and reads it: besides standard
 * JSON, the bare tokens `NaN`, `Infinity` and `-Infinity` (Python's
 * `json.dumps` writes them for float values; its `json.loads` reads them).
 * Payloads from the original's tools and pipelines may hold them.
 *
 * @module
 */

const TOKENS = ["-Infinity", "Infinity", "NaN"] as const;
const VALUES: Record<(typeof TOKENS)[number], number> = {
  "-Infinity": -Infinity,
  "Infinity": Infinity,
  "NaN": NaN,
};
/** A key no JSON text from outside can hold (it carries a NUL). */
const MARK = "\u0000py";

/**
 * Parses JSON text the way Python's `json.loads` does: standard JSON, plus
 * `NaN`, `Infinity` and `-Infinity` outside strings.
 *
 * @throws {SyntaxError} for text that is neither
 *
 * @example
 * ```ts
 * const alert = parsePythonJson('{"far": NaN, "snr": Infinity}') as { far: number };
 * Number.isNaN(alert.far); // true
 * ```
 */
export function parsePythonJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch (error) {
    const rewritten = rewrite(text);
    if (rewritten === undefined) throw error;
    return JSON.parse(
      rewritten,
      (_key, value) =>
        value !== null && typeof value === "object" && typeof value[MARK] === "string"
          ? VALUES[value[MARK] as (typeof TOKENS)[number]]
          : value,
    );
  }
}

/** The text with Python's special numbers outside strings replaced by marked objects. */
function rewrite(text: string): string | undefined {
  let out = "";
  let changed = false;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (inString) {
      out += c;
      if (c === "\\") out += text[++i] ?? "";
      else if (c === '"') inString = false;
      continue;
    }
    if (c === '"') {
      inString = true;
      out += c;
      continue;
    }
    const token = TOKENS.find((t) => text.startsWith(t, i));
    if (token) {
      out += `{${JSON.stringify(MARK)}:"${token}"}`;
      i += token.length - 1;
      changed = true;
      continue;
    }
    out += c;
  }
  return changed ? out : undefined;
}
