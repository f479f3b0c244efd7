/**
 * The messages between the listener and a child that runs as a process of
 * its own (`isolation = process`), as lines of text: each message is one
 * line that starts with the record separator (U+001E) followed by its JSON
 * (Maps, which a childConfig holds, written as `{"$map": [[k, v], ...]}`).
 * Anything else the child prints is not a message.
 *
 * @module
 */

/** What starts a message line. */
export const MARK = "\u001e";

/** One message as a line (with its newline). */
export function encodeMessage(message: unknown): string {
  return MARK +
    JSON.stringify(message, (_key, value) => value instanceof Map ? { $map: [...value] } : value) +
    "\n";
}

/** The message a line holds, or undefined for a line that is not one. */
export function decodeMessage(line: string): { message: unknown } | undefined {
  if (!line.startsWith(MARK)) return undefined;
  try {
    return {
      message: JSON.parse(
        line.slice(1),
        (_key, value) =>
          value !== null && typeof value === "object" && !Array.isArray(value) &&
            Array.isArray(value.$map) && Object.keys(value).length === 1
            ? new Map(value.$map)
            : value,
      ),
    };
  } catch {
    return undefined;
  }
}

/** The lines of a byte stream, as they come. */
export async function* lines(stream: ReadableStream<Uint8Array>): AsyncGenerator<string> {
  let pending = "";
  for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
    const parts = (pending + chunk).split("\n");
    pending = parts.pop() ?? "";
    yield* parts;
  }
  if (pending) yield pending;
}
