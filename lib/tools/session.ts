/**
 * What the companion tools (send, command, admin) share: connection flags
 * and opening a short XMPP session with them.
 *
 * @module
 */

import { ConfigError } from "../core/config_error.ts";
import { CredentialsError, resolveCredentials } from "../xmpp/credentials.ts";
import { failed, type Outcome } from "../core/outcome.ts";
import { Pubsub } from "../xmpp/pubsub.ts";
import { createXmppClient, type XmppClient } from "../xmpp/client.ts";
import { classify, FAILURE_EXIT, retryable, type XmppFailure } from "../xmpp/failure.ts";
import { retry, RetryError } from "../core/async.ts";

/** `parseArgs` options every tool accepts (short letters per tool). */
export const CONNECTION_OPTIONS = {
  username: { type: "string", short: "a" },
  password: { type: "string", short: "b" },
  resource: { type: "string", short: "r" },
  netrc: { type: "string", short: "N" },
  port: { type: "string" },
  "pubsub-service": { type: "string" },
  "ca-file": { type: "string" },
  "insecure-tls": { type: "boolean" },
  "allow-plaintext": { type: "boolean" },
  verbose: { type: "boolean", short: "v" },
  version: { type: "boolean", short: "w" },
  help: { type: "boolean", short: "h" },
} as const;

/** Connection flags, shared by the help texts of the tools. */
export function connectionHelp(resource: string): string {
  return `  -a, --username USER      login (default: the netrc login for the server)
  -b, --password PW        accepted for old scripts; argv is visible to others
  -s, --server HOST        XMPP server (default lvalert.cgca.uwm.edu)
  -r, --resource RES       XMPP resource (default ${resource})
  -N, --netrc FILE         netrc (default $NETRC or ~/.netrc)
      --port N             XMPP port (default 5222)
      --pubsub-service JID pubsub service (default pubsub.SERVER)
      --ca-file PEM        verify the server against this CA
      --insecure-tls       do not verify the certificate (unsafe)
      --allow-plaintext    allow a connection without TLS (tests only)
  -v, --verbose            say what happens
  -h, --help               this text`;
}

/** Connection settings of a tool run. */
export interface ConnectionArgs {
  username: string | undefined;
  password: string | undefined;
  server: string;
  port: number;
  resource: string;
  netrc: string | undefined;
  pubsubService: string | undefined;
  caFile: string | undefined;
  insecureTls: boolean;
  allowPlaintext: boolean;
  verbose: boolean;
}

/** Reads the connection flags out of parsed values. */
export function connectionArgs(
  values: Record<string, string | boolean | string[] | undefined>,
  defaultResource: string,
): ConnectionArgs | string {
  const str = (k: string) => typeof values[k] === "string" ? values[k] as string : undefined;
  const port = Number(str("port") ?? 5222);
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    return `--port must be a port number, got "${str("port")}"`;
  }
  return {
    username: str("username"),
    password: str("password"),
    server: str("server") ?? "lvalert.cgca.uwm.edu",
    port,
    resource: str("resource") ?? defaultResource,
    netrc: str("netrc"),
    pubsubService: str("pubsub-service"),
    caFile: str("ca-file"),
    insecureTls: values["insecure-tls"] === true,
    allowPlaintext: values["allow-plaintext"] === true,
    verbose: values.verbose === true,
  };
}

/** An open session; `await using` closes it. */
export interface Session {
  client: XmppClient;
  pubsub: Pubsub;
  [Symbol.asyncDispose](): Promise<void>;
}

function classified(error: unknown, args: ConnectionArgs): XmppFailure {
  return classify(error, {
    server: args.server,
    port: args.port,
    username: args.username ?? "",
    password: "",
    resource: args.resource,
  });
}

/** Turns a session error into an outcome. */
export function sessionFailure(error: unknown, args: ConnectionArgs): Outcome {
  if (error instanceof ConfigError || error instanceof CredentialsError) {
    return failed("config", error);
  }
  const f = classified(error, args);
  return failed(FAILURE_EXIT[f.kind], f);
}

/**
 * Whether another attempt may work: the server could not be reached or
 * ended the stream (a shutdown, a kick). A refused login, a certificate
 * failing verification, a bad CA file or netrc never get better by trying
 * again.
 */
export function worthRetrying(error: unknown, args: ConnectionArgs): boolean {
  if (error instanceof ConfigError || error instanceof CredentialsError) return false;
  if ((error as { name?: string }).name === "StanzaError") return false;
  return retryable(classified(error, args));
}

/**
 * Logs in and returns a session.
 *
 * @throws the credential, CA-file or connection error (see {@linkcode sessionFailure})
 */
export async function openSession(args: ConnectionArgs): Promise<Session> {
  const credentials = await resolveCredentials(args);
  let ca: string | undefined;
  if (args.caFile) {
    try {
      ca = await Deno.readTextFile(args.caFile);
    } catch (error) {
      throw new ConfigError(
        args.caFile,
        `Cannot read the CA file: ${(error as Error).message}`,
        { cause: error },
      );
    }
  }
  if (args.insecureTls) {
    console.error(
      "warning: --insecure-tls: the server's certificate is NOT verified",
    );
  }
  const client = createXmppClient({
    server: args.server,
    port: args.port,
    username: credentials.username,
    password: credentials.password,
    resource: args.resource,
    ...(ca ? { ca } : {}),
    insecureTls: args.insecureTls,
    allowPlaintext: args.allowPlaintext,
  });
  client.on("error", () => {
    // Start-up errors reject start(); later ones end the short session.
  });
  try {
    await client.start();
  } catch (error) {
    await client.stop().catch(() => {});
    throw error;
  }
  return {
    client,
    pubsub: new Pubsub(client, args.pubsubService ?? `pubsub.${args.server}`),
    async [Symbol.asyncDispose]() {
      await client.stop().catch(() => {});
    },
  };
}

/**
 * Publishes `text` on `node`, trying up to `attempts` times (0.5 s apart,
 * growing to 5 s) when the server cannot be reached or does not answer; a
 * refused login, certificate or publish stops at once.
 */
export async function publishWithRetries(
  conn: ConnectionArgs,
  node: string,
  text: string,
  attempts: number,
): Promise<Outcome & { id?: string }> {
  const timedOut = (error: unknown) =>
    (error as { name?: string }).name === "TimeoutError" ||
    /timeout/i.test((error as Error).message);
  try {
    const id = await retry(async () => {
      await using session = await openSession(conn);
      return await session.pubsub.publish(node, text);
    }, {
      maxAttempts: attempts,
      minTimeout: 500,
      maxTimeout: 5000,
      jitter: 0,
      shouldRetry: (error) =>
        (error as { name?: string }).name !== "StanzaError" &&
        (timedOut(error) || worthRetrying(error, conn)),
    });
    return { ok: true, id };
  } catch (caught) {
    const error = caught instanceof RetryError ? caught.cause : caught;
    return (error as { name?: string }).name === "StanzaError"
      ? failed("runtime", `Publishing on ${node} refused: ${(error as Error).message}`)
      : sessionFailure(error, conn);
  }
}
