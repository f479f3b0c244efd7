/**
 * How the XMPP benchmark's subscribers count a phase: each alert's
 * latency since it was sent, until the phase's end marker. Shared by the
 * bare subscriber, the floor's worker and the listener's timed handler
 * (no XMPP code here: the workers load it too).
 *
 * @module
 */

/** A benchmark phase as a subscriber reports it at the phase's end marker. */
export interface PhaseReport {
  phase: string;
  count: number;
  first: number;
  last: number;
  latencies: number[];
}

/**
 * Counts what a subscriber takes: each alert's latency since it was sent,
 * until a phase's end marker, which closes the phase's report.
 */
export class PhaseCounter {
  #latencies: number[] = [];
  #first = 0;
  #last = 0;

  /** Counts one payload taken at `t` (epoch ms); the phase's report at an end marker. */
  take(payload: Readonly<Record<string, unknown>>, t: number): PhaseReport | undefined {
    if (typeof payload.end === "string") {
      const report = {
        phase: payload.end,
        count: this.#latencies.length,
        first: this.#first,
        last: this.#last,
        latencies: this.#latencies,
      };
      this.#latencies = [];
      return report;
    }
    if (this.#latencies.length === 0) this.#first = t;
    this.#last = t;
    this.#latencies.push(t - (payload.sent as number));
    return undefined;
  }
}
