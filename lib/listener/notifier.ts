/**
 * Mail through a `mail`-compatible command: `CMD -s SUBJECT RCPT...` with
 * the body on stdin. Only the listener runs it; workers ask for it.
 *
 * @module
 */

/** Result of one send. */
export type MailResult = { ok: true } | { ok: false; reason: string };

/** Options for {@linkcode sendMail}. */
export interface SendMailOptions {
  /** Seconds before the command is killed. @default {60} */
  timeout?: number;
}

/**
 * Sends one message.
 *
 * @example
 * ```ts
 * await sendMail(["mail"], "WARNING", ["oncall@example.org"], "queue long\n");
 * ```
 */
export async function sendMail(
  command: readonly string[],
  subject: string,
  recipients: readonly string[],
  body: string,
  options: SendMailOptions = {},
): Promise<MailResult> {
  const [program, ...rest] = command;
  if (!program) return { ok: false, reason: "mail command is empty" };
  // Recipients can come from the network (sendEmail): none may pass as an option.
  const bad = recipients.find((r) => r === "" || r.startsWith("-") || /[\s\p{Cc}]/u.test(r));
  if (bad !== undefined) return { ok: false, reason: `refusing recipient ${JSON.stringify(bad)}` };
  const signal = AbortSignal.timeout((options.timeout ?? 60) * 1000);
  try {
    const child = new Deno.Command(program, {
      args: [...rest, "-s", subject, ...recipients],
      stdin: "piped",
      stdout: "null",
      stderr: "piped",
      signal,
    }).spawn();
    const writer = child.stdin.getWriter();
    await writer.write(new TextEncoder().encode(body));
    await writer.close();
    const { code, stderr } = await child.output();
    if (code === 0) return { ok: true };
    const err = new TextDecoder().decode(stderr).trim();
    return {
      ok: false,
      reason: `${program} exited with ${code}${err ? `: ${err}` : ""}`,
    };
  } catch (error) {
    return { ok: false, reason: `${program}: ${(error as Error).message}` };
  }
}
