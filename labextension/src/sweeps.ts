// Parameter sweeps: the REST calls (start one, read its table) and the grid as the sweep form builds
// it. Values stay text, typed by the server like `same-nb run --sweep NAME=V1,V2` values.
import { IParameter, IRun, request } from './api';
import { paramProblem } from './params';

/** A run of a sweep: its swept values and its metrics (the last value each step logged). */
export interface ISweepRun extends IRun {
  sweep_id: string;
  values: Record<string, unknown>;
  metrics: Record<string, number>;
}

export interface ISweepTable {
  sweep_id: string;
  params: string[]; // the swept parameters (those whose value differs between the runs)
  columns: string[]; // metric names ("step.metric" when two steps log the same name)
  runs: ISweepRun[]; // oldest first
  best: { run_id: number; metric: string; direction: 'min' | 'max'; value: number } | null;
  // The sweep process, for a sweep this server started (null for one started in a terminal).
  process?: { running: boolean; runs: number | null } | null;
}

export interface ISweepCancelled {
  sweep_id: string;
  stopped: boolean;
  message: string;
  runs?: { id: number; status: string }[];
}

export interface ISweepStarted {
  sweep_id: string;
  runs: number; // how many runs the grid starts
  status: string;
  path: string;
}

export const MAX_GRID_POINTS = 1000; // as the server's frontend/sweep.py MAX_POINTS

export const sweepApi = {
  start: (path: string, grid: Record<string, string[]>, params: Record<string, string>, jobs?: number) =>
    request<ISweepStarted>(
      'sweeps',
      {},
      { method: 'POST', body: JSON.stringify({ path, grid, params, jobs }) }
    ),
  cancel: (path: string, sweepId: string) =>
    request<ISweepCancelled>(
      `sweeps/${encodeURIComponent(sweepId)}/cancel`,
      {},
      { method: 'POST', body: JSON.stringify({ path }) }
    ),
  table: (path: string, sweepId: string, best?: string, direction?: string) =>
    request<ISweepTable>(`sweeps/${encodeURIComponent(sweepId)}`, {
      path,
      best: best || undefined,
      direction: direction || undefined
    })
};

/** `0.1, 0.5` → ["0.1", "0.5"]; commas inside brackets or quotes stay (`[1,2], [3]`), as the CLI splits. */
export function splitValues(text: string): string[] {
  const parts: string[] = [];
  let current = '';
  let depth = 0;
  let quote: string | null = null;
  for (const ch of text) {
    if (quote) {
      quote = ch === quote ? null : quote;
    } else if (ch === '"' || ch === "'") {
      quote = ch;
    } else if ('[{('.includes(ch)) {
      depth++;
    } else if (']})'.includes(ch)) {
      depth--;
    } else if (ch === ',' && depth === 0) {
      parts.push(current.trim());
      current = '';
      continue;
    }
    current += ch;
  }
  parts.push(current.trim());
  return parts;
}

export interface IGridCheck {
  grid: Record<string, string[]>; // only the parameters given values, in form order
  points: number; // the product of the value counts (0 without any axis)
  problems: Record<string, string>; // parameter → what is wrong with its values
}

/** The grid the form describes: each non-empty field is an axis; every value is checked by type. */
export function checkGrid(params: IParameter[], texts: Record<string, string>): IGridCheck {
  const grid: Record<string, string[]> = {};
  const problems: Record<string, string> = {};
  for (const p of params) {
    const text = (texts[p.name] ?? '').trim();
    if (!text) {
      continue;
    }
    const values = splitValues(text);
    if (values.some(v => !v)) {
      problems[p.name] = `${p.name}: an empty value (two commas in a row?)`;
      continue;
    }
    const bad = values.map(v => paramProblem(p, v)).find(Boolean);
    if (bad) {
      problems[p.name] = bad;
      continue;
    }
    if (new Set(values).size !== values.length) {
      problems[p.name] = `${p.name}: a value is listed twice`;
      continue;
    }
    grid[p.name] = values;
  }
  const axes = Object.values(grid);
  const points = axes.length ? axes.reduce((n, v) => n * v.length, 1) : 0;
  if (points > MAX_GRID_POINTS) {
    problems['*'] = `${points} runs: a sweep has at most ${MAX_GRID_POINTS}`;
  }
  return { grid, points, problems };
}
