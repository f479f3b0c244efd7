/**
 * A snapshot file written while its snapshot is serialized: each chunk of
 * the body goes to a private temp file as it fills (written on an I/O
 * thread, one at a time, in order), after room kept for the header line,
 * which is known only at the end. The header then goes into that room,
 * padded with spaces (JSON allows them before the newline), or, when it
 * outgrew the room, the body is moved later to make room for it. Then
 * the file is synced, the last snapshot becomes the previous one, and the
 * new one takes its place.
 *
 * So the body never sits whole in memory (a 1e5-item snapshot is ~20 MB),
 * and copying it into the page cache, and flushing it to the disk (every
 * {@linkcode SYNC_EVERY} bytes), are spread over the snapshot rather than
 * done at once at its end.
 *
 * @module
 */

import { join } from "node:path";
import { BODY_CHUNK } from "./snapshot.ts";
import { readFull, SYNC_EVERY, syncDir, tempPath, writeAll } from "./state_dir.ts";

/** Spare chunk buffers a file keeps for the next snapshot at most. */
const POOL_MAX = 8;

/** Bytes kept for the header at least, and the step its room grows by. */
export const HEAD_ROOM = 4096;

/** The room to keep for a header line of `bytes`: twice that, in whole 4 KB. */
export function headRoomFor(bytes: number): number {
  return Math.max(HEAD_ROOM, Math.ceil((2 * bytes) / HEAD_ROOM) * HEAD_ROOM);
}

/** A snapshot being written; see the module's description. */
export class SnapshotFile {
  readonly path: string;
  readonly temp: string;
  #file: Deno.FsFile;
  #room: number;
  #pool: ArrayBuffer[];
  /** The writes so far, chained: each starts when the one before is done. */
  #writing: Promise<void>;
  #bytes = 0;
  /** Bytes written since the last sync. */
  #unsynced = 0;

  private constructor(
    path: string,
    temp: string,
    file: Deno.FsFile,
    room: number,
    pool: ArrayBuffer[],
  ) {
    this.path = path;
    this.temp = temp;
    this.#file = file;
    this.#room = room;
    this.#pool = pool;
    this.#writing = file.seek(room, Deno.SeekMode.Start).then(() => {});
    // A failure is seen by finish(); it must not count as unhandled meanwhile.
    this.#writing.catch(() => {});
  }

  /**
   * Opens a private temp file beside `path`, with `room` bytes kept for the
   * header; chunks written go back to `pool` for the next snapshot.
   */
  static async create(path: string, room: number, pool: ArrayBuffer[]): Promise<SnapshotFile> {
    const temp = tempPath(path);
    const file = await Deno.open(temp, {
      read: true,
      write: true,
      create: true,
      truncate: true,
      mode: 0o600,
    });
    return new SnapshotFile(path, temp, file, room, pool);
  }

  /** Writes a chunk of the body after those before it (a writer's sink). */
  readonly sink = (chunk: Uint8Array): void => {
    this.#bytes += chunk.length;
    this.#writing = this.#writing.then(async () => {
      await writeAll(this.#file, chunk);
      if (chunk.buffer.byteLength === BODY_CHUNK && this.#pool.length < POOL_MAX) {
        this.#pool.push(chunk.buffer as ArrayBuffer);
      }
      // Synced as it goes, so that no sync of the journal waits for it all.
      this.#unsynced += chunk.length;
      if (this.#unsynced >= SYNC_EVERY) {
        this.#unsynced = 0;
        await this.#file.syncData();
      }
    });
    this.#writing.catch(() => {});
  };

  /**
   * Writes the writer's last pieces (the header line, then the rest of the
   * body), syncs, and puts the file in place, the snapshot there before
   * becoming `previous`. Returns the file's size.
   */
  async finish(pieces: Uint8Array[], previous: string): Promise<number> {
    const [head, ...rest] = pieces;
    for (const piece of rest) this.sink(piece);
    await this.#writing;
    if (head!.length <= this.#room) {
      const line = new Uint8Array(this.#room).fill(32);
      line.set(head!.subarray(0, head!.length - 1));
      line[line.length - 1] = head![head!.length - 1]!;
      await this.#file.seek(0, Deno.SeekMode.Start);
      await writeAll(this.#file, line);
    } else await this.#rewrite(head!);
    await this.#file.syncData();
    this.#file.close();
    await Deno.rename(this.path, previous).catch((error) => {
      if (!(error instanceof Deno.errors.NotFound)) throw error;
    });
    await Deno.rename(this.temp, this.path);
    await syncDir(join(this.path, ".."));
    return this.#room + this.#bytes;
  }

  /** Gives up: closes and removes the temp file. */
  async abort(): Promise<void> {
    await this.#writing.catch(() => {});
    try {
      this.#file.close();
    } catch {
      // Closed already.
    }
    await Deno.remove(this.temp).catch(() => {});
  }

  /**
   * The header outgrew its room: the body is moved later in the file by
   * the difference, a chunk at a time from its end backwards (so no part
   * is overwritten before it is read), and the header written before it.
   */
  async #rewrite(head: Uint8Array): Promise<void> {
    const grow = head.length - this.#room;
    // Moving the body later: copy from its end backwards.
    const size = this.#room + this.#bytes;
    const buffer = new Uint8Array(BODY_CHUNK);
    for (let end = size; end > this.#room;) {
      const start = Math.max(this.#room, end - buffer.length);
      const part = buffer.subarray(0, end - start);
      await this.#file.seek(start, Deno.SeekMode.Start);
      if (!await readFull(this.#file, part)) {
        throw new Error("snapshot temp file shorter than written");
      }
      await this.#file.seek(start + grow, Deno.SeekMode.Start);
      await writeAll(this.#file, part);
      end = start;
    }
    await this.#file.seek(0, Deno.SeekMode.Start);
    await writeAll(this.#file, head);
    this.#room = head.length;
  }
}
