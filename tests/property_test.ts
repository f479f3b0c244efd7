/** Property tests: random input never crashes the listener's parts. */

import assert from "node:assert/strict";
import { join } from "node:path";
import fc from "fast-check";
import { loadListenerConfig } from "../lib/config/config.ts";
import { ConfigError } from "../lib/core/config_error.ts";
import { Logger, type LogRecord } from "../lib/core/log.ts";
import { Router } from "../lib/listener/router.ts";
import { tempDir } from "./helpers.ts";

const alertish = fc.oneof(
  fc.jsonValue(),
  fc.record({
    uid: fc.oneof(fc.string(), fc.constantFrom("command", "heartbeat", "G1", ""), fc.integer()),
    alert_type: fc.oneof(
      fc.string(),
      fc.constantFrom("new", "update", "label_added", "printMessage", "clearGraceID"),
    ),
    object: fc.jsonValue(),
  }, { requiredKeys: [] }),
  fc.string(),
  fc.string().map((s) => `{"uid":${JSON.stringify(s)}`),
);

Deno.test("random payloads never crash the router; every refusal carries a message", () => {
  let runs = 0;
  fc.assert(
    fc.property(
      fc.array(fc.tuple(fc.constantFrom("a", "b", "nobody"), alertish), { maxLength: 30 }),
      (inputs) => {
        const records: LogRecord[] = [];
        const delivered: unknown[] = [];
        const router = new Router({
          owners: new Map([["a", "kid"], ["b", "kid"]]),
          deliver: (d) => delivered.push(d),
          log: new Logger({ child: null, format: "json", sinks: [(_l, r) => records.push(r)] }),
        });
        inputs.forEach(([node, payload], i) => {
          const outcome = router.route({
            node,
            id: String(i),
            payload: typeof payload === "string" ? payload : payload,
            t0: i,
          });
          if (outcome === "rejected" || outcome === "unrouted") {
            const last = records.at(-1)!;
            assert.ok(
              typeof last.msg === "string" && last.msg.length > 10,
              `a message for ${JSON.stringify(payload)}`,
            );
          }
        });
        const c = router.counts;
        assert.equal(c.received, inputs.length);
        assert.equal(c.routed + c.rejected + c.unrouted + c.duplicates + c.ignored, c.received);
        assert.equal(delivered.length, c.routed);
        runs++;
      },
    ),
    { numRuns: 300 },
  );
  assert.equal(runs, 300);
});

const iniLine = fc.oneof(
  fc.constantFrom(
    "[gstlal watcher]",
    "[DEFAULT]",
    "[burst]",
    "nodes = a b",
    "nodes: c",
    "  continued",
    "childConfig = c.ini",
    "childConfig = missing.ini",
    "warnThr = 1e3",
    "warnThr = lots",
    "verbose = maybe",
    "maxFrac = 2",
    "x = %(nodes)s",
    "y = 5%",
    "; comment",
    "# comment",
    "rem note",
    "",
    "just words",
    "on_child_death = restart",
  ),
  fc.string({ maxLength: 40 }),
);

Deno.test("random config files either load or fail with a ConfigError naming the file", async () => {
  await using dir = await tempDir({ "c.ini": "[general]\nprocess_type = test\n" });
  let runs = 0;
  await fc.assert(
    fc.asyncProperty(fc.array(iniLine, { maxLength: 12, size: "large" }), async (lines) => {
      const path = join(dir.path, "l.ini");
      await Deno.writeTextFile(path, lines.join("\n"));
      try {
        const config = await loadListenerConfig(path);
        assert.ok(config.sections.length > 0);
      } catch (error) {
        assert.ok(error instanceof ConfigError, `not a ConfigError: ${error}`);
        assert.match(error.message, /l\.ini|c\.ini|missing\.ini/);
      }
      runs++;
    }),
    { numRuns: 200 },
  );
  assert.equal(runs, 200);
});
