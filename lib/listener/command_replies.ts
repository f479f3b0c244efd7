/**
 * Replies to commands sent through the control socket: each command
 * travels to its child with a token, and the child's answer (or a refusal,
 * or silence past a deadline) settles the caller's promise.
 *
 * @module
 */

/** What a command sent to a child answered. */
export interface CommandOutcome {
  child: string;
  ok: boolean;
  output: string | null;
  error: string | null;
}

/**
 * Outstanding command tokens and their callers.
 *
 * @example
 * ```ts
 * const replies = new CommandReplies();
 * const token = crypto.randomUUID();
 * const answer = replies.expect(token, "cbc", 30);
 * replies.settle(token, true, "done", null);
 * (await answer).output; // "done"
 * ```
 */
export class CommandReplies {
  #pending = new Map<string, (ok: boolean, output: string | null, error: string | null) => void>();

  /** Waits for the answer to `token` from `child`, at most `timeoutSeconds`. */
  expect(token: string, child: string, timeoutSeconds: number): Promise<CommandOutcome> {
    const { promise, resolve } = Promise.withResolvers<CommandOutcome>();
    const timer = setTimeout(
      () => this.settle(token, false, null, `no answer within ${timeoutSeconds} s`),
      timeoutSeconds * 1000,
    );
    this.#pending.set(token, (ok, output, error) => {
      clearTimeout(timer);
      resolve({ child, ok, output, error });
    });
    return promise;
  }

  /** Answers `token` (a later answer to the same token is ignored). */
  settle(token: string, ok: boolean, output: string | null, error: string | null): void {
    const reply = this.#pending.get(token);
    this.#pending.delete(token);
    reply?.(ok, output, error);
  }

  /** Answers every outstanding command with `error` (the listener is stopping). */
  cancelAll(error: string): void {
    for (const token of [...this.#pending.keys()]) this.settle(token, false, null, error);
  }
}
