/**
 * Catch-up of 1000 missed items on one node, on each real server: the
 * listener's connection (through a TCP proxy) is cut, 1000 alerts are
 * published on its node, the connection is let through again, and the
 * time is taken from the reconnect (the stream is open and logged in) to
 * the last caught-up alert routed, and to the last one a child has read.
 * Run once with the default page size (`--catch-up 20`) and once with 100.
 */

import { join } from "node:path";
import { ListenerProcess, tempDir } from "../tests/helpers.ts";
import { TcpProxy } from "../tests/xmpp_proxy.ts";
import { connect, SERVERS, startServer, type XmppServer } from "../tests/xmpp_servers.ts";
import { createNode } from "../tests/xmpp_world.ts";

/** One measurement. */
export interface CatchUpRow {
  server: string;
  pageSize: number;
  missed: number;
  /** How the server paged, and the requests it took. */
  paging: string;
  requests: number;
  /** From logged in again to the last missed alert routed (journaled and handed over). */
  toRoutedMs: number;
  /** From logged in again to the last missed alert read by its child. */
  toChildMs: number;
  /** Whether a gap was reported (the node held no more than what was missed). */
  gap: boolean;
}

const MISSED = 1000;
const ts = (e: Record<string, unknown> | undefined) => Date.parse(String(e?.ts));

async function publishAll(server: XmppServer, node: string, round: number): Promise<void> {
  await using session = await connect(server, "publisher", `bench-${round}`);
  for (let i = 0; i < MISSED; i += 100) {
    const batch = [];
    for (let j = i; j < Math.min(MISSED, i + 100); j++) {
      batch.push(session.pubsub.publish(node, JSON.stringify({ uid: `M${j}`, alert_type: "new" })));
    }
    const results = await Promise.allSettled(batch);
    const failed = results.find((r) => r.status === "rejected");
    if (failed) throw new Error(`Publishing on ${node} failed: ${failed.reason}`);
  }
}

async function measure(server: XmppServer, pageSize: number, round: number): Promise<CatchUpRow> {
  const node = `catchup${round}`;
  {
    await using admin = await connect(server, "publisher", `create-${round}`);
    // ejabberd keeps at most 1000 items per node.
    await createNode(admin.pubsub, node, { maxItems: server.kind === "ejabberd" ? 1000 : 2000 });
  }
  await using dir = await tempDir({
    "l.ini": `[bench]\nnodes = ${node}\nchildConfig = c.ini\nwarnThr = 1e9\n`,
    "c.ini": "[general]\nprocess_type = test\nlog_level = 20\n[test]\ndelays = 0\nrepeats = 0\n",
  });
  await using proxy = new TcpProxy(server.port);
  const flags = server.flags("listener").map((f, i, all) =>
    all[i - 1] === "--port" ? String(proxy.port) : f
  );
  const listener = new ListenerProcess([
    ...["-c", join(dir.path, "l.ini"), ...flags, "-N", await server.netrc("listener")],
    ...["--state-dir", join(dir.path, "state"), "--log-format", "json"],
    ...["--catch-up", String(pageSize), "--backoff", "0.1,0.2"],
  ]);
  try {
    await listener.until(() => listener.named("xmpp_ready").length === 1, "the start", 60);
    {
      await using session = await connect(server, "publisher", `first-${round}`);
      await session.pubsub.publish(node, JSON.stringify({ uid: "FIRST", alert_type: "new" }));
    }
    await listener.until(() => listener.named("alert").length === 1, "the first alert", 60);
    proxy.cut();
    await listener.until(() => listener.named("xmpp_disconnected").length === 1, "the cut", 60);
    await publishAll(server, node, round);
    proxy.restore();
    const last = `M${MISSED - 1}`;
    await listener.until(() => listener.named("alert").some((e) => e.uid === last), last, 120);
    const online = listener.named("xmpp_online")[1];
    const caught = listener.named("caught_up").at(-1);
    const alert = listener.named("alert").find((e) => e.uid === last);
    return {
      server: server.kind,
      pageSize,
      missed: listener.named("alert").length - 1,
      paging: String(caught?.paging),
      requests: Number(caught?.requests),
      toRoutedMs: ts(caught) - ts(online),
      toChildMs: ts(alert) - ts(online),
      gap: listener.named("catch_up_gap").length > 0,
    };
  } finally {
    await listener.stop();
  }
}

/** Both servers, page sizes 20 (the default) and 100. */
export async function benchCatchUp(): Promise<CatchUpRow[]> {
  const rows: CatchUpRow[] = [];
  let round = 0;
  for (const kind of SERVERS) {
    await using server = await startServer(kind);
    for (const pageSize of [20, 100]) rows.push(await measure(server, pageSize, ++round));
  }
  return rows;
}
