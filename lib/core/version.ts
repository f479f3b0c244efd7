/**
 * The program's version, from `deno.json` (the one place it is written).
 *
 * @module
 */

import denoJson from "../../deno.json" with { type: "json" };

/** The version of lvalertMP, such as `0.1.0`. */
export const VERSION: string = denoJson.version;
