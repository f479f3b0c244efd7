/**
 * Helpers for the event_supervisor tests and demo: a HEALPix FITS writer,
 * childConfigs with short timeouts, the follow-up of a healthy CBC event
 * (what each process writes to GraceDB, as log entries and as the alerts
 * GraceDB publishes for them), and a scenario runner: the GraceDB test
 * server, the listener as a real process replaying the alerts, and mail
 * written to files.
 */

import { join } from "node:path";
import { GraceDbTestServer } from "./gracedb_server.ts";
import { ListenerProcess, tempDir } from "./helpers.ts";

/** Options for {@linkcode skymapFits}. */
export interface SkymapOptions {
  /** Total probability. @default {1} */
  sum?: number;
  /** The COORDSYS keyword; null leaves it out. @default {"C"} */
  coordsys?: string | null;
  /** @default {true} */
  gzip?: boolean;
  /** A multi-order map (UNIQ, PROBDENSITY), as today's `*.multiorder.fits`. @default {false} */
  multiorder?: boolean;
}

function fitsCard(key: string, value: string | number | boolean): string {
  const v = typeof value === "string"
    ? `'${value.padEnd(8)}'`.padEnd(20)
    : typeof value === "boolean"
    ? (value ? "T" : "F").padStart(20)
    : String(value).padStart(20);
  return `${key.padEnd(8)}= ${v}`.padEnd(80);
}

function fitsBlock(cards: string[]): Uint8Array {
  const text = [...cards, "END".padEnd(80)].join("");
  return new TextEncoder().encode(text.padEnd(Math.ceil(text.length / 2880) * 2880));
}

/** A HEALPix map for `skymap sanity`: NSIDE 1 (12 pixels), the given total and frame. */
export async function skymapFits(options: SkymapOptions = {}): Promise<Uint8Array> {
  const { sum = 1, coordsys = "C", gzip = true, multiorder = false } = options;
  const card = fitsCard;
  const primary = fitsBlock([
    card("SIMPLE", true),
    card("BITPIX", 8),
    card("NAXIS", 0),
    card("EXTEND", true),
  ]);
  const columns = multiorder
    ? [
      card("TTYPE1", "UNIQ"),
      card("TFORM1", "K"),
      card("TTYPE2", "PROBDENSITY"),
      card("TFORM2", "D"),
    ]
    : [card("TTYPE1", "PROB"), card("TFORM1", "D")];
  const width = multiorder ? 16 : 8;
  const table = fitsBlock([
    card("XTENSION", "BINTABLE"),
    card("BITPIX", 8),
    card("NAXIS", 2),
    card("NAXIS1", width),
    card("NAXIS2", 12),
    card("PCOUNT", 0),
    card("GCOUNT", 1),
    card("TFIELDS", multiorder ? 2 : 1),
    ...columns,
    card("PIXTYPE", "HEALPIX"),
    card("ORDERING", multiorder ? "NUNIQ" : "NESTED"),
    ...(coordsys === null ? [] : [card("COORDSYS", coordsys)]),
    ...(multiorder ? [] : [card("NSIDE", 1)]),
  ]);
  const data = new Uint8Array(2880);
  const view = new DataView(data.buffer);
  for (let i = 0; i < 12; i++) {
    if (multiorder) {
      // Order 0: UNIQ = 4 + pixel; each pixel covers pi/3 steradians.
      view.setBigInt64(i * 16, BigInt(4 + i));
      view.setFloat64(i * 16 + 8, sum / 12 / (Math.PI / 3));
    } else {
      view.setFloat64(i * 8, sum / 12);
    }
  }
  const whole = new Uint8Array([...primary, ...table, ...data]);
  if (!gzip) return whole;
  const stream = new Blob([whole]).stream().pipeThrough(new CompressionStream("gzip"));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

/** `[general]` of a test childConfig. */
export function general(url: string, more: Record<string, string | number | boolean> = {}): string {
  const options = { annotate: true, warnings: true, check_timeout: 3, ...more };
  return `[general]\nprocess_type = event_supervisor\ngracedb = ${url}\n` +
    Object.entries(options).map(([k, v]) => `${k} = ${v}`).join("\n") + "\n";
}

/** One check section with mail to `ops@example.org` on failure and exception. */
export function section(name: string, options: Record<string, string | number> = {}): string {
  const all = {
    "email on success": "",
    "email on failure": "ops@example.org",
    "email on exception": "ops@example.org",
    ...options,
  };
  return `\n[${name}]\n` + Object.entries(all).map(([k, v]) => `${k} = ${v}`).join("\n") + "\n";
}

/** Every CBC check of the O2 configs, with timeouts of about a second. */
export function cbcSections(): string {
  const dt = { dt: 1 };
  return [
    section("event creation", dt),
    section("far", { dt: 0.2, "min far": 0, "max far": 1e-3 }),
    section("local rate", { dt: 0.2, "win+": 0, "win-": 100, "max rate": 0.02 }),
    section("creation rate", { dt: 0.2, "win+": 0, "win-": 100, "max rate": 0.02 }),
    section("external triggers", dt),
    section("unblind injections", dt),
    section("skymap sanity", { dt: 0.2 }),
    section("plot skymap", dt),
    section("snglFITS start", dt),
    section("snglFITS", { "html dt": 1.2, "finish dt": 1.2 }),
    section("multFITS start", dt),
    section("multFITS", { "html dt": 1.2, "finish dt": 1.2 }),
    section("lldqReport", dt),
    section("idq start", { dt: 1, ifos: "H1" }),
    section("idq", {
      classifiers: "ovl",
      ...Object.fromEntries(
        [
          "glitch fap",
          "fap frame",
          "rank frame",
          "timeseries plot",
          "active chan",
          "active chan plot",
          "tables",
          "calib",
          "calib plot",
          "roc",
          "roc plot",
          "calib stats",
          "train stats",
          "finish",
        ].map((n) => [`${n} dt`, 1.2]),
      ),
    }),
    section("segdb2grcdb start", dt),
    section("segdb2grcdb", {
      "flags dt": 1.2,
      "veto def dt": 1.2,
      "finish dt": 1.2,
      "any dt": 1.2,
      flags: "H1:DMT-ANALYSIS_READY:1 L1:DMT-ANALYSIS_READY:1",
      "veto defs": "",
    }),
    section("h1 omega scan start", { dt: 1, chansets: "h1_r-reduced h1_r-standard" }),
    section("h1 omega scan", { "data dt": 1.2, "finish dt": 1.2 }),
    section("bayestar start", dt),
    section("bayestar", { "skymap dt": 1.2, "skymap tagnames": "sky_loc lvem" }),
    section("bayestarNoVirgo", { "skymap dt": 1.2, "skymap tagnames": "sky_loc lvem" }),
    section("bayestar finish", { "finish dt": 1.2 }),
    section("em bright", dt),
    section("lalinf start", { dt: 1, "far thr": 1.65343e-6 }),
  ].join("");
}

/** One follow-up write to GraceDB: a log entry, maybe with a file. */
export interface Followup {
  comment: string;
  file?: { name: string; data: Uint8Array | string };
  tags?: string[];
}

/** What the follow-up processes of a healthy gstlal event write, in order. */
export async function healthyFollowups(graceid: string, skymap = true): Promise<Followup[]> {
  const within = "within [1187008881.000, 1187008883.000]";
  const idq = (name: string, comment: string): Followup => ({
    comment,
    file: { name, data: "{}" },
  });
  const psd = "<LIGO_LW>" + "x".repeat(200) + "</LIGO_LW>";
  const anchor = (name: string) => `<a href="https://example.org/${name}">${name}</a>`;
  const out: Followup[] = [
    { comment: "Uploaded coinc.xml", file: { name: "coinc.xml", data: "<LIGO_LW/>" } },
    { comment: "Uploaded psd", file: { name: "psd.xml.gz", data: psd } },
    { comment: "INFO:BAYESTAR:starting sky localization" },
    { comment: "Coincidence search complete" },
    { comment: "No unblind injections in window" },
    { comment: "Automatic Data-quality report posted" },
    { comment: `Started searching for iDQ information ${within} at H1` },
    idq(
      `H1_ovl_minFAP_${graceid}-1187008881-2.json`,
      `minimum glitch-FAP for ovl at H1 ${within} is 1.000e+00`,
    ),
    idq(
      `H1_ovl_maxRANK_${graceid}-1187008881-2.json`,
      `maximum glitch-RANK for ovl at H1 ${within} is 0.5`,
    ),
    idq("H1_idq_ovl_fap-1187008881-2.gwf", `iDQ fap timeseries for ovl at H1 ${within} :`),
    idq("H1_idq_ovl_rank-1187008881-2.gwf", `iDQ glitch-rank frame for ovl at H1 ${within} :`),
    idq(
      "H1_ovl_timeseries-1187008881-2.png",
      "iDQ fap and glitch-rank timeseries plot for ovl at H1:",
    ),
    idq("H1_ovl_chanlist-1187008881-2.json", "iDQ (possible) active channels for ovl at H1"),
    idq("H1_ovl_chanstrip-1187008881-2.png", "iDQ channel strip chart for ovl at H1"),
    idq("H1_ovl_calib-1187008881-2.json", "iDQ calibration sanity check for ovl at H1"),
    idq("H1_ovl_calib-1187008881-2.png", "iDQ calibration sanity check figure for ovl at H1"),
    idq("H1_ovl_ROC-1187008881-2.json", "iDQ local ROC curves for ovl at H1"),
    idq("H1_ovl_ROC-1187008881-2.png", "iDQ local ROC figure for ovl at H1"),
    idq(
      "H1_ovl_calibStats-1187008881-2.json",
      "iDQ local calibration vital statistics for ovl at H1",
    ),
    idq("H1_ovl_trainStats-1187008881-2.json", "iDQ local training vital statistics for ovl at H1"),
    { comment: `Finished searching for iDQ information ${within} at H1` },
    {
      comment:
        "automatic OmegaScans begun for: h1_r-reduced, h1_r-standard. WARNING: we will not " +
        "track the individual OmegaScan processes to ensure completion",
    },
    { comment: "OmegaScan data", file: { name: "h1_r-reduced.json", data: "{}" } },
    { comment: "OmegaScan data", file: { name: "h1_r-standard.json", data: "{}" } },
    { comment: "automatic OmegaScans finished for: h1_r-reduced, h1_r-standard" },
    { comment: "began searching for segments in : https://segments.ligo.org" },
    {
      comment: "H1 flag",
      file: { name: "H1-DMT_ANALYSIS_READY_1-1187008872-20.xml.gz", data: "x" },
    },
    {
      comment: "L1 flag",
      file: { name: "L1-DMT_ANALYSIS_READY_1-1187008872-20.xml.gz", data: "x" },
    },
    { comment: "all active flags", file: { name: "allActive-1187008872-20.json", data: "{}" } },
    { comment: "finished searching for segments in : https://segments.ligo.org" },
  ];
  if (skymap) {
    out.push(
      {
        comment: "INFO:BAYESTAR:uploaded sky map",
        file: { name: "bayestar.fits.gz", data: await skymapFits() },
        tags: ["sky_loc", "lvem"],
      },
      { comment: "INFO:BAYESTAR:sky localization complete" },
      {
        comment: "Mollweide projection",
        file: { name: "bayestar.png", data: "png" },
        tags: ["sky_loc", "lvem"],
      },
      { comment: `started skymap summary for ${anchor("bayestar.fits.gz")}` },
      {
        comment: "skymap summary for bayestar.fits.gz can be found here",
        file: { name: "bayestar-skymapSummary.html", data: "<html/>" },
      },
      { comment: `finished skymap summary for ${anchor("bayestar.fits.gz")}` },
      { comment: `started skymap comparison for ${anchor("bayestar.fits.gz")}` },
      {
        comment: 'comparison of skymaps can be found <a href="https://example.org/c">here</a>',
        file: { name: `${graceid}-skymapComparison.html`, data: "<html/>" },
      },
      { comment: "finished skymap comparison for bayestar.fits.gz" },
    );
  }
  out.push(
    { comment: "EM bright", file: { name: `Source_Classification_${graceid}.json`, data: "{}" } },
    { comment: "LALInference online estimation started" },
    { comment: "LALInference online estimation finished" },
  );
  return out;
}

/** The legacy-schema alert GraceDB publishes for a follow-up log entry. */
export function legacyUpdate(graceid: string, f: Followup, n: number): Record<string, unknown> {
  return {
    uid: graceid,
    alert_type: "update",
    description: f.comment,
    file: f.file?.name ?? "",
    object: { N: n, comment: f.comment, filename: f.file?.name ?? "", tag_names: f.tags ?? [] },
  };
}

/** The current-schema alert for the same entry. */
export function currentLog(graceid: string, f: Followup, n: number): Record<string, unknown> {
  return {
    uid: graceid,
    alert_type: "log",
    data: { N: n, comment: f.comment, filename: f.file?.name ?? "", tag_names: f.tags ?? [] },
    object: { graceid },
  };
}

/** A replay line. */
export interface ReplayLine {
  node?: string;
  t?: number;
  id: string;
  payload: Record<string, unknown>;
}

/** A running scenario: its folder, GraceDB, and the listener (once started). */
export interface Scenario extends AsyncDisposable {
  dir: string;
  gdb: GraceDbTestServer;
  /** Starts the listener replaying `lines`; again after a kill resumes from the state folder. */
  start(lines: ReplayLine[], extra?: string[]): ListenerProcess;
  /** Every mail sent so far, parsed. */
  mails(): Promise<Mail[]>;
  writeConfig(text: string): Promise<void>;
}

/** One mail the test mail command wrote. */
export interface Mail {
  recipients: string[];
  subject: string;
  body: string;
}

const MAIL_SH =
  '#!/bin/sh\n{ printf "%s|" "$@"; echo; cat; } > "$(mktemp "$(dirname "$0")/mail.XXXXXX")"\n';

/** A scenario folder with a listener config (child `es`, nodes `cbc` and `superevent`). */
export async function scenario(listenerExtra = ""): Promise<Scenario> {
  const folder = await tempDir({
    "l.ini": "[es]\nnodes = cbc superevent\nchildConfig = c.ini\nmail_command = ./mail.sh\n" +
      `recipients = listener@example.org\ncheckpoint_interval = 0.05\n${listenerExtra}`,
    "mail.sh": MAIL_SH,
  });
  await Deno.chmod(join(folder.path, "mail.sh"), 0o755);
  const gdb = await GraceDbTestServer.start();
  let listener: ListenerProcess | undefined;
  return {
    dir: folder.path,
    gdb,
    start(lines, extra = []) {
      Deno.writeTextFileSync(
        join(folder.path, "r.jsonl"),
        lines.map((l) => JSON.stringify({ node: "cbc", ...l })).join("\n") + "\n",
      );
      listener = new ListenerProcess([
        "-c",
        "l.ini",
        "--replay",
        "r.jsonl",
        "--state-dir",
        "state",
        "--log-format",
        "json",
        ...extra,
      ], { cwd: folder.path });
      return listener;
    },
    async mails() {
      const out: Mail[] = [];
      for await (const entry of Deno.readDir(folder.path)) {
        if (!entry.name.startsWith("mail.") || entry.name === "mail.sh") continue;
        const text = await Deno.readTextFile(join(folder.path, entry.name));
        const newline = text.indexOf("\n");
        const args = text.slice(0, newline).split("|").slice(0, -1);
        const s = args.indexOf("-s");
        out.push({
          subject: args[s + 1] ?? "",
          recipients: args.filter((_, i) => i !== s && i !== s + 1),
          body: text.slice(newline + 1),
        });
      }
      return out;
    },
    writeConfig: (text) => Deno.writeTextFile(join(folder.path, "c.ini"), text),
    async [Symbol.asyncDispose]() {
      await listener?.stop("SIGKILL");
      await gdb.close();
      await folder[Symbol.asyncDispose]();
    },
  };
}

/** Adds follow-ups to GraceDB and returns the alerts for them (legacy or current schema). */
export function publish(
  gdb: GraceDbTestServer,
  graceid: string,
  followups: Followup[],
  schema: "legacy" | "current" = "legacy",
): ReplayLine[] {
  return followups.map((f, i) => {
    const n = gdb.addLog(graceid, f.comment, {
      ...(f.tags ? { tags: f.tags } : {}),
      ...(f.file ? { file: f.file } : {}),
    });
    const payload = schema === "legacy" ? legacyUpdate(graceid, f, n) : currentLog(graceid, f, n);
    return { id: `${graceid}-log-${i}`, payload };
  });
}

/** The `new` alert of an event (or superevent) the server holds, with GraceDB's own dict. */
export async function newAlert(
  gdb: GraceDbTestServer,
  graceid: string,
  schema: "legacy" | "current" = "legacy",
): Promise<ReplayLine> {
  const path = /^[GEHMT]\d+$/.test(graceid) ? `events/${graceid}` : `superevents/${graceid}/`;
  const response = await fetch(gdb.url + path, { headers: { "User-Agent": "test" } });
  const object = await response.json() as Record<string, unknown>;
  const payload = schema === "legacy"
    ? { uid: graceid, alert_type: "new", description: "", file: "", object }
    : { uid: graceid, alert_type: "new", data: object, object };
  return { id: `${graceid}-new`, payload };
}
