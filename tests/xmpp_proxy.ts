/**
 * A TCP forwarder on loopback between the listener and a real XMPP server,
 * so a test can cut the listener's connection (a network outage) while the
 * server stays up and publishers keep publishing. TLS passes through
 * untouched: the listener still verifies the server's certificate.
 */

/** Forwards 127.0.0.1:`port` to 127.0.0.1:`target`; `cut()` drops and refuses connections. */
export class TcpProxy implements AsyncDisposable {
  readonly port: number;
  #listener: Deno.Listener;
  #target: number;
  #open = true;
  #conns = new Set<Deno.Conn>();
  #serving: Promise<void>;
  /** Connections accepted while open. */
  connections = 0;

  constructor(target: number) {
    this.#target = target;
    this.#listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    this.port = (this.#listener.addr as Deno.NetAddr).port;
    this.#serving = this.#serve();
  }

  async #serve(): Promise<void> {
    for await (const conn of this.#listener) {
      if (!this.#open) {
        conn.close();
        continue;
      }
      this.connections++;
      void this.#forward(conn);
    }
  }

  async #forward(client: Deno.Conn): Promise<void> {
    this.#conns.add(client);
    let server: Deno.Conn | undefined;
    try {
      server = await Deno.connect({ hostname: "127.0.0.1", port: this.#target });
      this.#conns.add(server);
      // Whichever side ends first ends both; the other pipe's failure is expected.
      const up = client.readable.pipeTo(server.writable).catch(() => {});
      const down = server.readable.pipeTo(client.writable).catch(() => {});
      await Promise.race([up, down]);
    } catch {
      // Cut, or closed by either side.
    } finally {
      for (const conn of [client, server]) {
        if (!conn) continue;
        this.#conns.delete(conn);
        try {
          conn.close();
        } catch {
          // Already closed.
        }
      }
    }
  }

  /** Drops every connection and refuses new ones until {@linkcode restore}. */
  cut(): void {
    this.#open = false;
    for (const conn of [...this.#conns]) {
      try {
        conn.close();
      } catch {
        // Already closed.
      }
    }
    this.#conns.clear();
  }

  /** Accepts connections again. */
  restore(): void {
    this.#open = true;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    this.cut();
    this.#listener.close();
    await this.#serving.catch(() => {});
  }
}
