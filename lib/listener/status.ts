/**
 * The listener's status document: what `ctl --status` prints and the
 * `status` check judges. One builder, so every view of the listener says
 * the same thing.
 *
 * @module
 */

import type { JsonObject } from "../core/alert.ts";
import type { ListenerConfig } from "../config/config.ts";
import type { RouteCounts } from "./router.ts";
import type { ChildStatus } from "./child_link.ts";

/** What the XMPP session reports, when there is one. */
export interface SessionStatus {
  online: boolean;
  offlineSince: number | null;
  subscribed: string[];
  extra: string[];
  /** Configured nodes found deleted. */
  deleted?: string[];
  /** Catch-up gaps not yet acknowledged nor closed. */
  gaps?: { node: string; reason: string; routed: number; held: number | null; at: number }[];
}

/** Everything the document is built from. */
export interface StatusParts {
  started: number;
  config: ListenerConfig;
  session: SessionStatus | undefined;
  children: ChildStatus[];
  counts: RouteCounts;
  applied: number;
  refused: number;
}

/** The status document (JSON), as the control socket serves it. */
export function statusDocument(p: StatusParts, now = Date.now() / 1000): JsonObject {
  const warnThr = new Map(p.config.sections.map((s) => [s.name, s.warnThr]));
  return {
    pid: Deno.pid,
    started: p.started,
    uptime: now - p.started,
    source: p.session ? "xmpp" : "replay",
    xmpp: p.session
      ? {
        online: p.session.online,
        offline_since: p.session.offlineSince,
        configured: [...p.config.owners.keys()],
        subscribed: p.session.subscribed,
        extra: p.session.extra,
        deleted: p.session.deleted ?? [],
        gaps: (p.session.gaps ?? []).map((g) => ({
          node: g.node,
          reason: g.reason,
          routed: g.routed,
          held: g.held,
          at: g.at,
        })),
      }
      : null,
    children: p.children.map((c) => ({ ...c, warnThr: warnThr.get(c.child) ?? null })),
    counts: { ...p.counts, applied: p.applied, rejected_by_child: p.refused },
  };
}
