/**
 * Just enough FITS to judge a HEALPix sky map, in memory (the original
 * wrote the file into its working folder and often left it there): the
 * first binary table's probabilities summed, and its `COORDSYS`.
 * Gzipped files are unpacked first. Multi-order maps (`ORDERING =
 * NUNIQ`, today's `*.multiorder.fits`) are integrated over pixel areas.
 *
 * @module
 */

const BLOCK = 2880;
const CARD = 80;

/** What the checks need from a sky map. */
export interface Skymap {
  /** Total probability. */
  sum: number;
  /** `COORDSYS` of the table (or primary) header; undefined when absent. */
  coordsys: string | undefined;
  /** `ORDERING` of the table header, e.g. `NESTED`, `RING`, `NUNIQ`. */
  ordering: string | undefined;
}

type Header = Map<string, string | number | boolean>;

/** Reads a (possibly gzipped) HEALPix FITS file. */
export async function readSkymap(bytes: Uint8Array): Promise<Skymap> {
  const data = bytes[0] === 0x1f && bytes[1] === 0x8b ? await gunzip(bytes) : bytes;
  let offset = 0;
  let primary: Header | undefined;
  while (offset < data.length) {
    const { header, end } = readHeader(data, offset);
    primary ??= header;
    const size = dataSize(header);
    if (header.get("XTENSION") === "BINTABLE") {
      const table = {
        header,
        start: end,
        rows: num(header, "NAXIS2"),
        width: num(header, "NAXIS1"),
      };
      if (end + table.rows * table.width > data.length) throw new Error("FITS table is truncated");
      return {
        sum: tableSum(data, table),
        coordsys: text(header, "COORDSYS") ?? text(primary, "COORDSYS"),
        ordering: text(header, "ORDERING"),
      };
    }
    offset = end + Math.ceil(size / BLOCK) * BLOCK;
  }
  throw new Error("FITS file has no binary table");
}

async function gunzip(bytes: Uint8Array): Promise<Uint8Array> {
  const stream = new Blob([bytes as Uint8Array<ArrayBuffer>]).stream().pipeThrough(
    new DecompressionStream("gzip"),
  );
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

function readHeader(data: Uint8Array, start: number): { header: Header; end: number } {
  const header: Header = new Map();
  const decoder = new TextDecoder("latin1");
  for (let at = start; at + CARD <= data.length; at += CARD) {
    const card = decoder.decode(data.subarray(at, at + CARD));
    const key = card.slice(0, 8).trim();
    if (key === "END") {
      return { header, end: start + Math.ceil((at + CARD - start) / BLOCK) * BLOCK };
    }
    if (card.slice(8, 10) !== "= ") continue;
    header.set(key, value(card.slice(10)));
  }
  throw new Error("FITS header has no END card");
}

function value(raw: string): string | number | boolean {
  const s = raw.trim();
  if (s.startsWith("'")) {
    const m = /^'((?:[^']|'')*)'/.exec(s);
    return (m?.[1] ?? "").replaceAll("''", "'").trimEnd();
  }
  const v = s.split("/")[0]!.trim();
  if (v === "T") return true;
  if (v === "F") return false;
  const n = Number(v.replace(/D/i, "E"));
  return Number.isNaN(n) ? v : n;
}

function num(h: Header, key: string): number {
  const v = h.get(key);
  if (typeof v !== "number") throw new Error(`FITS header lacks ${key}`);
  return v;
}

function text(h: Header | undefined, key: string): string | undefined {
  const v = h?.get(key);
  return typeof v === "string" ? v : undefined;
}

function dataSize(h: Header): number {
  const naxis = typeof h.get("NAXIS") === "number" ? h.get("NAXIS") as number : 0;
  if (naxis === 0) return 0;
  let n = 1;
  for (let i = 1; i <= naxis; i++) n *= num(h, `NAXIS${i}`);
  const pcount = typeof h.get("PCOUNT") === "number" ? h.get("PCOUNT") as number : 0;
  const gcount = typeof h.get("GCOUNT") === "number" ? h.get("GCOUNT") as number : 1;
  return (Math.abs(num(h, "BITPIX")) / 8) * gcount * (pcount + n);
}

const SIZES: Record<string, number> = {
  L: 1,
  B: 1,
  I: 2,
  J: 4,
  K: 8,
  A: 1,
  E: 4,
  D: 8,
  C: 8,
  M: 16,
  P: 8,
  Q: 16,
};

interface Column {
  name: string;
  type: string;
  repeat: number;
  offset: number;
}

function columns(h: Header): Column[] {
  const out: Column[] = [];
  let offset = 0;
  for (let i = 1; i <= num(h, "TFIELDS"); i++) {
    const form = text(h, `TFORM${i}`) ?? "";
    const m = /^\s*(\d*)([LXBIJKAEDCMPQ])/.exec(form);
    if (!m) throw new Error(`FITS column ${i} has an unknown format "${form}"`);
    const repeat = m[1] === "" ? 1 : Number(m[1]);
    const type = m[2]!;
    out.push({ name: (text(h, `TTYPE${i}`) ?? "").toUpperCase(), type, repeat, offset });
    offset += type === "X" ? Math.ceil(repeat / 8) : repeat * SIZES[type]!;
  }
  return out;
}

function read(view: DataView, at: number, type: string): number {
  switch (type) {
    case "E":
      return view.getFloat32(at);
    case "D":
      return view.getFloat64(at);
    case "B":
      return view.getUint8(at);
    case "I":
      return view.getInt16(at);
    case "J":
      return view.getInt32(at);
    case "K":
      return Number(view.getBigInt64(at));
    default:
      throw new Error(`FITS column type ${type} holds no numbers`);
  }
}

interface Table {
  header: Header;
  start: number;
  rows: number;
  width: number;
}

function tableSum(data: Uint8Array, t: Table): number {
  const view = new DataView(data.buffer, data.byteOffset + t.start, t.rows * t.width);
  const cols = columns(t.header);
  const first = cols[0];
  if (!first) throw new Error("FITS table has no columns");
  if (text(t.header, "ORDERING") === "NUNIQ") {
    const uniq = cols.find((c) => c.name === "UNIQ") ?? first;
    const density = cols.find((c) => c.name === "PROBDENSITY");
    if (!density) throw new Error("multi-order sky map has no PROBDENSITY column");
    let sum = 0;
    for (let r = 0; r < t.rows; r++) {
      const u = view.getBigInt64(r * t.width + uniq.offset);
      const order = Math.floor((u.toString(2).length - 1) / 2) - 1;
      sum += read(view, r * t.width + density.offset, density.type) * Math.PI / (3 * 4 ** order);
    }
    return sum;
  }
  const size = SIZES[first.type] ?? 0;
  let sum = 0;
  for (let r = 0; r < t.rows; r++) {
    for (let k = 0; k < first.repeat; k++) {
      sum += read(view, r * t.width + first.offset + k * size, first.type);
    }
  }
  return sum;
}
