/**
 * Server-sent events to many page viewers without ever waiting for one:
 * each client gets its own stream with a bounded buffer; a client whose
 * buffer is full (slow, or gone without closing) is dropped, and one that
 * goes away is forgotten. A message is encoded once for all.
 *
 * @module
 */

/** Options for {@linkcode EventStreams}. */
export interface EventStreamsOptions {
  /** Bytes a client may have waiting before it is dropped. @default {1048576} */
  maxBuffered?: number;
  /** Clients at once; more are refused. @default {64} */
  maxClients?: number;
  /** Called when a client is dropped for falling behind. */
  dropped?: (clients: number) => void;
}

const encoder = new TextEncoder();

/** The open event streams of one server. */
export class EventStreams {
  #clients = new Set<ReadableStreamDefaultController<Uint8Array>>();
  #o: EventStreamsOptions;
  #closed = false;

  constructor(options: EventStreamsOptions = {}) {
    this.#o = options;
  }

  /** Clients connected now. */
  get size(): number {
    return this.#clients.size;
  }

  /** A new client's stream, starting with the event `first`; undefined when full or closed. */
  open(first?: Uint8Array): ReadableStream<Uint8Array> | undefined {
    if (this.#closed || this.#clients.size >= (this.#o.maxClients ?? 64)) return undefined;
    let self: ReadableStreamDefaultController<Uint8Array>;
    return new ReadableStream<Uint8Array>({
      start: (controller) => {
        self = controller;
        this.#clients.add(controller);
        controller.enqueue(encoder.encode("retry: 2000\n\n"));
        if (first) controller.enqueue(first);
      },
      cancel: () => {
        this.#clients.delete(self);
      },
    }, new ByteLengthQueuingStrategy({ highWaterMark: this.#o.maxBuffered ?? 1 << 20 }));
  }

  /** One event, encoded. */
  static encode(event: string, data: string): Uint8Array {
    return encoder.encode(`event: ${event}\ndata: ${data.replace(/\n/g, "\ndata: ")}\n\n`);
  }

  /** Sends an event to every client; drops those whose buffer is full. */
  send(event: string, data: string): void {
    this.write(EventStreams.encode(event, data));
  }

  /** Sends an encoded event (see {@linkcode EventStreams.encode}) to every client. */
  write(chunk: Uint8Array): void {
    for (const client of this.#clients) {
      if ((client.desiredSize ?? 0) < chunk.length) {
        this.#clients.delete(client);
        try {
          client.error(new Error("Event stream client fell behind"));
        } catch {
          // Already closed.
        }
        this.#o.dropped?.(this.#clients.size);
        continue;
      }
      client.enqueue(chunk);
    }
  }

  /** Ends every stream; no more are opened. */
  close(): void {
    this.#closed = true;
    for (const client of this.#clients) {
      try {
        client.close();
      } catch {
        // Already closed.
      }
    }
    this.#clients.clear();
  }
}
