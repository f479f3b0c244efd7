/**
 * The error every configuration problem becomes. Callers branch on it: a
 * `ConfigError` before start-up means exit code 78 (EX_CONFIG) and nothing
 * started.
 *
 * @module
 */

/** Where a configuration problem is: a file and, when known, a line. */
export interface ConfigErrorOptions extends ErrorOptions {
  /** 1-based line number in `file`. */
  line?: number | undefined;
}

/** A configuration problem that names the file and line it comes from. */
export class ConfigError extends Error {
  /** The file the problem is in. */
  readonly file: string;
  /** The 1-based line, when the problem is on one line. */
  readonly line: number | undefined;

  /** A problem in `file` (at `options.line`), with `message` after the place. */
  constructor(file: string, message: string, options: ConfigErrorOptions = {}) {
    const where = options.line === undefined ? file : `${file}:${options.line}`;
    super(`${where}: ${message}`, options);
    this.name = "ConfigError";
    this.file = file;
    this.line = options.line;
  }
}
