/**
 * What a VOEvent request carries: the type (short code or long name) and
 * the flags approval_processor decides, turned into GraceDB's field names.
 *
 * @module
 */

/** VOEvent type codes GraceDB takes. */
export type VoEventCode = "PR" | "IN" | "UP" | "RE" | "EW";

/** A VOEvent type: the code, or the long name approval_processor uses. */
export type VoEventType =
  | VoEventCode
  | "preliminary"
  | "initial"
  | "update"
  | "retraction"
  | "earlywarning";

const CODES: Record<VoEventType, VoEventCode> = {
  PR: "PR",
  IN: "IN",
  UP: "UP",
  RE: "RE",
  EW: "EW",
  preliminary: "PR",
  initial: "IN",
  update: "UP",
  retraction: "RE",
  earlywarning: "EW",
};

/**
 * The GraceDB code of a VOEvent type (`"preliminary"` → `"PR"`).
 *
 * @example
 * ```ts
 * voEventCode("retraction"); // "RE"
 * ```
 */
export function voEventCode(type: VoEventType): VoEventCode {
  const code = CODES[type];
  if (code === undefined) throw new RangeError(`Unknown VOEvent type: ${JSON.stringify(type)}`);
  return code;
}

/** The flags of a VOEvent request; unset ones are not sent (GraceDB's defaults apply). */
export interface VoEventFields {
  /** Internal only (not sent to the public GCN). GraceDB's default is internal. */
  internal?: boolean;
  /** Vetted by humans (initial, update, retraction). */
  vetted?: boolean;
  /** Open public alert. */
  openAlert?: boolean;
  /** A hardware injection. */
  hardwareInj?: boolean;
  /** The sky map file; must already be uploaded. Give it with `skymapType`. */
  skymapFilename?: string;
  /** The sky map's type, e.g. `bayestar-CBCLowMass`. */
  skymapType?: string;
  /** The sky map's image file. */
  skymapImageFilename?: string;
  /** A coincidence with an external trigger. */
  coincComment?: boolean;
  /** EM-Bright: probability that an object is a neutron star. */
  probHasNs?: number | null;
  /** EM-Bright: probability of remnant matter. */
  probHasRemnant?: number | null;
  /** Source classification: BNS probability. */
  bns?: number;
  /** Source classification: NSBH probability. */
  nsbh?: number;
  /** Source classification: BBH probability. */
  bbh?: number;
  /** Source classification: terrestrial probability. */
  terrestrial?: number;
  /** Probability of a mass-gap object (`HasMassGap` for events, `MassGap` for superevents). */
  hasMassGap?: number;
  /** Significant alert. */
  significant?: boolean;
  /** More GraceDB fields, sent as given (e.g. RAVEN's `ext_gcn`). */
  extra?: Record<string, string | number | boolean | null>;
}

/**
 * The JSON body of a VOEvent request for an event or a superevent:
 * booleans become 1/0, as the official client sends them.
 *
 * @example
 * ```ts
 * voEventBody("preliminary", { internal: false, openAlert: false }, "event");
 * // { voevent_type: "PR", internal: 0, open_alert: 0 }
 * ```
 */
export function voEventBody(
  type: VoEventType,
  fields: VoEventFields,
  kind: "event" | "superevent",
): Record<string, string | number | boolean | null> {
  const bit = (b: boolean) => (b ? 1 : 0);
  const body: Record<string, string | number | boolean | null> = {
    voevent_type: voEventCode(type),
  };
  const put = (key: string, value: string | number | boolean | null | undefined) => {
    if (value !== undefined) body[key] = typeof value === "boolean" ? bit(value) : value;
  };
  put("internal", fields.internal);
  put("vetted", fields.vetted);
  put("open_alert", fields.openAlert);
  put("hardware_inj", fields.hardwareInj);
  put("skymap_filename", fields.skymapFilename);
  put("skymap_type", fields.skymapType);
  put("skymap_image_filename", fields.skymapImageFilename);
  put("CoincComment", fields.coincComment);
  put("ProbHasNS", fields.probHasNs);
  put("ProbHasRemnant", fields.probHasRemnant);
  put("BNS", fields.bns);
  put("NSBH", fields.nsbh);
  put("BBH", fields.bbh);
  put("Terrestrial", fields.terrestrial);
  put(kind === "event" ? "HasMassGap" : "MassGap", fields.hasMassGap);
  put("Significant", fields.significant);
  for (const [key, value] of Object.entries(fields.extra ?? {})) put(key, value);
  return body;
}
