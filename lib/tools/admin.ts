/**
 * `lvalert_listenMP admin`: manage nodes, subscriptions and publishers, as
 * lvalert_admin (same flags, including `-c` for the server).
 *
 * @module
 */

import { parseFlags } from "../config/cli.ts";
import { failed, type Outcome } from "../core/outcome.ts";
import { condition } from "../xmpp/pubsub.ts";
import {
  CONNECTION_OPTIONS,
  connectionArgs,
  connectionHelp,
  openSession,
  type Session,
  sessionFailure,
} from "./session.ts";

export const ADMIN_USAGE = `Usage: lvalert_listenMP admin ACTION [--node NODE] [options]

Actions (as lvalert_admin; with none, --get-nodes):
  -d, --create                 create --node (the creator owns it)
  -e, --delete                 delete --node
  -f, --subscribe              subscribe this JID (user@server/RESOURCE) to --node
  -g, --unsubscribe            unsubscribe this JID from --node
  -n, --unsubscribe-subid ID   with --unsubscribe: which subscription
  -i, --subscriptions          list this account's subscriptions
  -m, --get-nodes              list the nodes
  -o, --affiliations NODE      list who owns and may publish on NODE
  -j, --add-publisher JID      let JID publish on --node
  -p, --delete-publisher JID   stop JID publishing on --node
  -q, --node NODE              the node
      --node-option KEY=VALUE  with --create: a node setting, such as
                               persist_items=0 or max_items=20 (repeatable)
  -c, --server HOST            XMPP server (also -s)
${
  connectionHelp("admin").split("\n").filter((l) => !l.includes("--server"))
    .join("\n")
}`;

function bareJid(who: string, domain: string): string {
  const bare = who.split("/")[0]!;
  return bare.includes("@") ? bare : `${bare}@${domain}`;
}

type Action = (s: Session, node: string | undefined) => Promise<void>;

export async function admin(argv: string[]): Promise<Outcome> {
  const parsed = parseFlags(
    // lvalert_admin used -c for the server; -s is accepted as well.
    argv.map((a) => a === "-s" ? "--server" : a),
    {
      ...CONNECTION_OPTIONS,
      server: { type: "string", short: "c" },
      create: { type: "boolean", short: "d" },
      delete: { type: "boolean", short: "e" },
      subscribe: { type: "boolean", short: "f" },
      unsubscribe: { type: "boolean", short: "g" },
      "unsubscribe-subid": { type: "string", short: "n" },
      subscriptions: { type: "boolean", short: "i" },
      "get-nodes": { type: "boolean", short: "m" },
      affiliations: { type: "string", short: "o" },
      "add-publisher": { type: "string", short: "j" },
      "delete-publisher": { type: "string", short: "p" },
      node: { type: "string", short: "q" },
      "node-option": { type: "string", multiple: true },
      debug: { type: "boolean", short: "l" },
    },
  );
  if (!parsed.ok) return failed("usage", parsed.message);
  const { values } = parsed;
  if (values.help) {
    console.log(ADMIN_USAGE);
    return { ok: true };
  }
  const conn = connectionArgs(values, "admin");
  if (typeof conn === "string") return failed("usage", conn);
  const options: Record<string, string> = {};
  for (const pair of values["node-option"] ?? []) {
    const eq = pair.indexOf("=");
    if (eq < 1) {
      return failed("usage", `--node-option wants KEY=VALUE, got "${pair}"`);
    }
    const key = pair.slice(0, eq);
    options[key.startsWith("pubsub#") ? key : `pubsub#${key}`] = pair.slice(
      eq + 1,
    );
  }
  const domain = conn.server;
  const actions: [boolean, boolean, Action][] = [
    [!!values.create, true, async (s, node) => {
      await s.pubsub.create(node!, options);
      console.log(`created node ${node}`);
    }],
    [!!values.delete, true, async (s, node) => {
      await s.pubsub.delete(node!);
      console.log(`deleted node ${node}`);
    }],
    [!!values.subscribe, true, async (s, node) => {
      await s.pubsub.subscribe(node!, String(s.client.jid));
      console.log(`subscribed ${s.client.jid} to ${node}`);
    }],
    [!!values.unsubscribe, true, async (s, node) => {
      await s.pubsub.unsubscribe(
        node!,
        String(s.client.jid),
        values["unsubscribe-subid"],
      );
      console.log(`unsubscribed ${s.client.jid} from ${node}`);
    }],
    [!!values.subscriptions, false, async (s) => {
      for (const sub of await s.pubsub.subscriptions()) {
        console.log(
          [sub.node, sub.jid, sub.subscription, sub.subid ?? ""].join("\t")
            .trimEnd(),
        );
      }
    }],
    [values.affiliations !== undefined, false, async (s) => {
      for (
        const [jid, affiliation] of await s.pubsub.affiliations(
          values.affiliations!,
        )
      ) {
        console.log(`${jid}\t${affiliation}`);
      }
    }],
    [values["add-publisher"] !== undefined, true, async (s, node) => {
      const jid = bareJid(values["add-publisher"]!, domain);
      await s.pubsub.affiliate(node!, jid, "publisher");
      console.log(`${jid} may publish on ${node}`);
    }],
    [values["delete-publisher"] !== undefined, true, async (s, node) => {
      const jid = bareJid(values["delete-publisher"]!, domain);
      await s.pubsub.affiliate(node!, jid, "none");
      console.log(`${jid} may no longer publish on ${node}`);
    }],
  ];
  const chosen = actions.filter(([on]) => on);
  if (chosen.length > 1) return failed("usage", "Give one action at a time");
  const [, needsNode, action] = chosen[0] ??
    [true, false, async (s: Session) => {
      for (const node of await s.pubsub.nodes()) console.log(node);
    }];
  if (needsNode && !values.node) {
    return failed("usage", "--node must be provided");
  }
  try {
    await using session = await openSession(conn);
    await action(session, values.node);
    return { ok: true };
  } catch (error) {
    if ((error as { name?: string }).name === "StanzaError") {
      return failed(
        "runtime",
        `${values.node ?? "request"}: ${condition(error) ?? (error as Error).message}`,
      );
    }
    return sessionFailure(error, conn);
  }
}
