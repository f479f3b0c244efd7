/**
 * event_supervisor end to end: the listener as a real process replaying
 * alert streams of both schemas, the GraceDB test server answering (and
 * failing), mail written to files. Each scenario asserts which GraceDB
 * reads and writes and which mails happened.
 */

import assert from "node:assert/strict";
import {
  cbcSections,
  general,
  healthyFollowups,
  newAlert,
  publish,
  scenario,
  section,
} from "./event_supervisor_helpers.ts";
import type { RecordedRequest } from "./gracedb_server.ts";

type Event = Record<string, unknown>;

const outcomes = (events: Event[]) => events.filter((e) => e.event === "check_outcome");
const reads = (requests: readonly RecordedRequest[]) =>
  requests.filter((r) => r.method === "GET").map((r) => r.path);
const annotations = (requests: readonly RecordedRequest[]) =>
  requests.filter((r) => r.method === "POST" && r.path.endsWith("/log/")).map((r) =>
    r.body as { comment: string; tagname: string[] }
  );

async function healthy(schema: "legacy" | "current") {
  await using s = await scenario();
  const graceid = s.gdb.addEvent({
    graceid: "G1001",
    group: "CBC",
    pipeline: "gstlal",
    search: "AllSky",
    far: 1e-8,
    gpstime: 1187008882.43,
    instruments: "H1,L1",
  });
  await s.writeConfig(general(s.gdb.url) + cbcSections());
  const lines = [
    await newAlert(s.gdb, graceid, schema),
    ...publish(s.gdb, graceid, await healthyFollowups(graceid), schema),
  ];
  s.gdb.clearRequests();
  const listener = s.start(lines, ["--exit-when-idle", "--speed", "0"]);
  assert.equal(await listener.exited(), 0, listener.stderr);
  const results = outcomes(listener.events);
  const bad = results.filter((e) => e.result !== "pass");
  assert.deepEqual(bad, [], "every check passes");
  assert.deepEqual(await s.mails(), [], "nobody is mailed");
  // One ES: annotation per task, each tagged event_supervisor, all "no action required".
  const notes = annotations(s.gdb.requests);
  assert.equal(notes.length, results.length);
  for (const note of notes) {
    assert.match(note.comment, /^ES: (event_supervisor : )?no action required : /);
    assert.deepEqual(note.tagname, ["event_supervisor"]);
  }
  // Checks an alert proved read nothing; the others read what their rule needs.
  const early = results.filter((e) => e.early === true);
  assert.ok(early.length >= 20, `${early.length} checks completed early`);
  const items = new Set(listener.named("item_added").map((e) => e.item));
  for (
    const name of [
      "event creation",
      "far",
      "local rate",
      "creation rate",
      "idq",
      "h1 omega scan",
      "segdb2grcdb",
      "bayestar start",
      "bayestarNoVirgo",
      "em bright",
      "bayestar",
      "bayestar finish",
      "skymap sanity",
      "plot skymap",
      "snglFITS",
      "multFITS start",
      "multFITS",
      "lalinf start",
    ]
  ) assert.ok(items.has(name), `${name} was created`);
  return { results, reads: reads(s.gdb.requests) };
}

Deno.test("a healthy CBC event (legacy schema): every check passes, nobody is mailed, one ES: line per task", async () => {
  const { results, reads } = await healthy("legacy");
  const late = results.filter((e) => e.early !== true).map((e) => e.task);
  // What still reads GraceDB at its deadline: the event, the rate queries, sky map and files.
  assert.ok(reads.includes("/api/events/G1001"));
  assert.ok(reads.some((p) => p === "/api/events/"), "rate queries");
  assert.ok(
    reads.includes("/api/events/G1001/files/bayestar.fits.gz"),
    "sanity downloads the sky map",
  );
  assert.ok(late.includes("far") && late.includes("skymapSanity") && late.includes("cbcPSD"));
});

Deno.test("a healthy CBC event (current schema): the same outcome", async () => {
  await healthy("current");
});
