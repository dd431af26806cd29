// What `same_nb.load_step` printed, split into its lines and its table of bound values, so the
// sidebar (250 px) can show each value on its own lines instead of a wide terminal table.

export interface IBoundValue {
  name: string;
  type: string;
  value: string;
  source: string; // the producing step, or "parameter"
  sha256: string;
}

export interface IPrinted {
  before: string[]; // the heading lines ("loaded step ... of run N", "it failed with ...")
  bound: IBoundValue[];
  after: string[]; // replays, generators, what is not restored
}

const HEADS = ['name', 'type', 'value', 'from', 'sha256'];

/** The columns start where the header's words do (load_step pads every cell to its column's width). */
function columns(header: string): number[] | null {
  const starts: number[] = [];
  let from = 0;
  for (const head of HEADS) {
    const match = new RegExp(`(^|\\s)${head}(\\s|$)`).exec(header.slice(from));
    if (!match) {
      return null;
    }
    const at = from + match.index + match[1].length;
    starts.push(at);
    from = at + head.length;
  }
  return starts;
}

/** Parse load_step's printout; `null` when it does not look like one (then show it as it is). */
export function parsePrinted(text: string): IPrinted | null {
  const lines = text.replace(/\s+$/, '').split('\n');
  const at = lines.findIndex(line => /^\s+name\s+type\s+value\s+from\s+sha256\s*$/.test(line));
  const starts = at >= 0 ? columns(lines[at]) : null;
  if (!starts) {
    return null;
  }
  const indent = starts[0];
  const bound: IBoundValue[] = [];
  let i = at + 1;
  // A table row is indented like the header and has text in the "from" column.
  for (; i < lines.length; i++) {
    const line = lines[i];
    if (line.slice(0, indent).trim() || !line.slice(indent).trim() || line.length <= starts[3]) {
      break;
    }
    const cell = (k: number) => line.slice(starts[k], k + 1 < starts.length ? starts[k + 1] : undefined).trim();
    // Names and types are single words, and every column is preceded by the padding's blank.
    const padded = starts.slice(1).every(k => line.length <= k || line[k - 1] === ' ');
    if (!/^[\p{L}_][\p{L}\p{N}_]*$/u.test(cell(0)) || !/^\S+$/.test(cell(1)) || !cell(3) || !padded) {
      break;
    }
    bound.push({ name: cell(0), type: cell(1), value: cell(2), source: cell(3), sha256: cell(4) });
  }
  const strip = (l: string) => l.trim().replace(/^same-nb: /, '');
  return {
    before: lines.slice(0, at).map(strip).filter(Boolean),
    bound,
    after: lines.slice(i).map(strip).filter(Boolean)
  };
}
