/**
 * What a handler may not do to the listener it runs in. Run by the worker
 * entry before any handler is imported: the `Deno` functions that act on
 * the whole process (kill it or others, exit it, catch its signals, change
 * its folder or umask, load native code) are replaced by ones that throw;
 * `Deno.exit` and `close()` end only the child, and say so at once.
 *
 * @module
 */

/** `Deno` functions that act on the whole process, not on one worker. */
const PROCESS_WIDE = [
  "kill",
  "addSignalListener",
  "removeSignalListener",
  "chdir",
  "umask",
  "dlopen",
] as const;

/**
 * Replaces the process-wide `Deno` functions. `ended(why)` hears about a
 * handler ending its child (`Deno.exit`, `close()`) before `end()` ends it
 * (a worker closes itself; a child process exits).
 */
export function contain(
  ended: (why: string) => void,
  end: () => void = self.close.bind(self),
): void {
  const deno = Deno as unknown as Record<string, unknown>;
  for (const name of PROCESS_WIDE) {
    Object.defineProperty(deno, name, {
      value: () => {
        throw new Error(`Deno.${name} is not available to handlers: it acts on the whole listener`);
      },
      writable: false,
      configurable: false,
    });
  }
  Object.defineProperty(deno, "exit", {
    value: (code?: number) => {
      ended(`the handler called Deno.exit(${code ?? ""})`);
      end();
      throw new Error("Deno.exit: the child ends");
    },
    writable: false,
    configurable: false,
  });
  self.close = () => {
    ended("the child closed itself (close() called)");
    end();
  };
}
