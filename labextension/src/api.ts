// Typed client for the server extension's REST API under /same-nb/api/.
import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';

export interface ICellRef {
  number: number;
  id: string;
}

export interface IStep {
  name: string;
  cells: ICellRef[];
  inputs: { name: string; kind: string; producer: string | null }[];
  outputs: string[];
  params: string[];
}

export interface IDiagnostic {
  severity: 'error' | 'warning' | 'info';
  message: string;
  code: string;
  step: string | null;
  cell: number | null;
  cell_id: string | null;
  line: number | null;
}

export interface IParameter {
  name: string;
  default: unknown;
  type: string;
}

export interface IInspection {
  ok: boolean;
  path: string;
  order: string[];
  levels: string[][];
  pipeline: {
    name: string;
    steps: IStep[];
    edges: { src: string; dst: string; kind: string; names: string[] }[];
    diagnostics: IDiagnostic[];
    parameters: IParameter[];
  };
}

export interface IArtifact {
  name: string;
  sha256: string;
  kind: string | null;
  type: string | null;
  size: number | null;
}

export interface IStepRun {
  id: number;
  step_name: string;
  status: string;
  duration_s: number | null; // wall time: kernel wait + compute
  kernel_wait_s: number | null; // waiting for a kernel to be started and warmed
  compute_s: number | null; // running the step's cells (the number to compare with the notebook)
  peak_rss_bytes?: number | null; // peak RSS of the step kernel's process tree above its start
  cpu_s?: number | null; // CPU time of the step kernel and its children
  bytes_in?: number | null; // artifact bytes the step read
  bytes_out?: number | null; // artifact bytes the step wrote (or reused, when cached)
  started_at?: string | null;
  finished_at?: string | null;
  cache_hit: boolean;
  reason: string | null;
  error: {
    ename?: string;
    evalue?: string;
    cell?: number | null;
    cell_id?: string | null;
    line?: number | null;
    traceback?: string;
  } | null;
  executed_notebook: string | null;
  log_tail: string;
  inputs: IArtifact[];
  outputs: IArtifact[];
  metrics: { name: string; value: number; step: number | null }[];
}

export interface IRun {
  id: number;
  path: string | null;
  pipeline_name: string;
  status: string;
  params: Record<string, unknown>;
  target: string;
  created_at: string;
  duration_s: number | null;
  error: string | null;
  name: string | null; // a user's label for the run
  note: string | null; // a user's free-text note
  remote_url?: string | null;
  sweep_id?: string | null; // the sweep this run is a grid point of
  step_counts: Record<string, number>;
  metrics?: Record<string, number>; // "step.metric" → last value, cached steps included
  log_tail?: string;
  steps?: IStepRun[];
}

export interface IRunPage {
  total: number;
  limit: number;
  offset: number;
  runs: IRun[];
  notes?: string[]; // e.g. a Kubeflow server that could not be reached for a status
  latest_id: number | null; // the newest run of this notebook: a change means "refresh"
}

/** What differs between two or more runs: every list holds one value per run, in `runs` order. */
export interface ICompare {
  runs: number[];
  notebook_sha256: string[];
  params: Record<string, unknown[]>; // only the parameters that differ
  packages: Record<string, (string | null)[]>;
  steps: Record<
    string,
    {
      status: (string | null)[];
      code: Record<string, (string | null)[]>; // cell → sha256 per run
      inputs: Record<string, (string | null)[]>;
      outputs: Record<string, (string | null)[]>;
      metrics: Record<string, (number | null)[]>;
      resources?: ICompareResources; // measurements: shown, never counted as a difference
    }
  >;
  identical: boolean;
  flags?: IGrowthFlag[]; // steps whose peak memory or time grew more than 2x from the first run
  drift?: IDrift[]; // one per later run: its data drift from the first run
}

/** One value per run of each figure of a step (store/resources.py compare_resources). */
export interface ICompareResources {
  peak_rss_bytes: (number | null)[];
  cpu_s: (number | null)[];
  time_s: (number | null)[]; // compute, else wall time; null for a cache hit
  bytes_in: (number | null)[];
  bytes_out: (number | null)[];
}

/** store/resources.py growth_flags: `what` grew from `from` (run runs[0]) to `to` (run runs[1]). */
export interface IGrowthFlag {
  step: string;
  what: 'peak memory' | 'time' | string;
  runs: [number, number];
  from: number;
  to: number;
  ratio: number | null;
}

/** A schema change (store/drift.py compare_profiles). */
export interface ISchemaChange {
  change: 'added' | 'removed' | 'dtype' | 'kind' | 'columns' | string;
  column: string | null;
  from: unknown;
  to: unknown;
}

export interface IColumnDrift {
  name: string;
  dtype: string;
  psi: number | null; // null: the two runs' columns cannot be compared
  ks?: number | null; // numeric columns only
  mean?: [number | null, number | null];
  statistic: string;
}

export interface IArtifactDrift {
  step: string;
  variable: string;
  sha256: [string, string];
  identical: boolean;
  schema: ISchemaChange[];
  rows: [number | null, number | null] | null;
  columns: IColumnDrift[];
  sampled?: boolean;
}

/** store/drift_runs.py drift_between. */
export interface IDrift {
  baseline: number;
  run: number;
  direction: string;
  artifacts: IArtifactDrift[];
  unprofiled: { step: string; variable: string; run: number }[];
}

/** GET drift: the runs whose step inputs drifted from their baseline (server/drift_api.py). */
export interface IDriftedRuns {
  runs: {
    id: number;
    name: string | null;
    status: string;
    notebook: string;
    created_at: string;
    baseline: number;
    worst: { step: string; variable: string; column: string; psi: number } | null;
    schema: (ISchemaChange & { step: string; variable: string })[];
  }[];
  checked: number;
  no_baseline: number[];
  threshold: number;
  baseline: number | null;
}

/** The live (or final) output of one step run. */
export interface IStepLog {
  text: string; // the last `limit` characters of the step's stdout/stderr
  running: boolean;
  cell: number | null; // the source cell being executed, when known
}

/** The answer to a cancel: the server waits until the run really stopped. */
export interface ICancelReply {
  run_id: number;
  status: string; // the run's status after the cancel, e.g. "cancelled"
  stopped: boolean; // false: the run did not stop; `message` says why
  message: string;
}

export interface IGraphNode {
  id: string;
  kind: 'step_run' | 'artifact' | string;
  label: string;
  data: Record<string, any>;
}

export interface IGraph {
  root: string;
  nodes: IGraphNode[];
  edges: { source: string; target: string; kind: string; name: string }[];
  truncated: boolean;
}

export interface IMetricRow {
  run_id: number;
  step_name: string;
  name: string;
  value: number;
  step: number | null;
}

/** An error reply of the API: `message` is meant for the user. */
export class ApiError extends Error {
  constructor(
    message: string,
    readonly status: number,
    readonly details: Record<string, any> = {}
  ) {
    super(message);
  }
}

export const ACTIVE = ['pending', 'running'];

export async function request<T>(
  endpoint: string,
  query: Record<string, string | number | undefined> = {},
  init: RequestInit = {}
): Promise<T> {
  const settings = ServerConnection.makeSettings();
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(query)) {
    if (value !== undefined) {
      params.set(key, String(value));
    }
  }
  const url =
    URLExt.join(settings.baseUrl, 'same-nb', 'api', endpoint) +
    (params.toString() ? `?${params}` : '');
  let response: Response;
  try {
    response = await ServerConnection.makeRequest(url, init, settings);
  } catch (error) {
    throw new ApiError(`cannot reach the server: ${error}`, 0);
  }
  const text = await response.text();
  let data: any = {};
  try {
    data = text ? JSON.parse(text) : {};
  } catch {
    data = { message: text };
  }
  if (!response.ok) {
    throw new ApiError(
      data.message || response.statusText,
      response.status,
      data.error || {}
    );
  }
  return data as T;
}

function post<T>(endpoint: string, body: unknown): Promise<T> {
  return request<T>(endpoint, {}, { method: 'POST', body: JSON.stringify(body) });
}

export const api = {
  inspect: (path: string) => request<IInspection>('inspect', { path }),
  /** Analyse the editor's unsaved notebook (nbformat JSON); nothing is written. */
  inspectContent: (path: string, content: unknown) =>
    post<IInspection>('inspect', { path, content }),
  startRun: (
    path: string,
    params: Record<string, string>,
    target: string,
    kfpHost: string
  ) =>
    post<{ run_id: number; status: string; remote_url?: string }>('runs', {
      path,
      params,
      target,
      host: kfpHost || undefined
    }),
  runs: (path: string, limit: number, offset: number) =>
    request<IRunPage>('runs', { path, limit, offset }),
  run: (path: string, id: number) => request<IRun>(`runs/${id}`, { path }),
  cancel: (path: string, id: number) => post<ICancelReply>(`runs/${id}/cancel`, { path }),
  label: (path: string, id: number, label: { name?: string | null; note?: string | null }) =>
    post<IRun>(`runs/${id}`, { path, ...label }),
  compare: (path: string, ids: number[]) =>
    request<ICompare>('compare', { path, runs: ids.join(',') }),
  stepLog: (path: string, id: number, step: string, limit = 20000) =>
    request<IStepLog>(`runs/${id}/steps/${encodeURIComponent(step)}/log`, { path, limit }),
  stepNotebook: (path: string, id: number, step: string) =>
    request<{ path: string }>(
      `runs/${id}/steps/${encodeURIComponent(step)}/notebook`,
      { path }
    ),
  executed: (path: string) => request<any>('executed', { path }),
  runLineage: (path: string, id: number) =>
    request<IGraph>('lineage', { path, run: id }),
  artifactLineage: (path: string, sha256: string) =>
    request<IGraph>('lineage', { path, artifact: sha256 }),
  metrics: (path: string, limit = 50) =>
    request<{ runs: number[]; metrics: IMetricRow[] }>('metrics', { path, limit })
};

/** Data drift across runs (kept apart from `api`, which other views extend). */
export const driftApi = {
  /** Runs (of the newest `limit`) whose step inputs drifted from `baseline`, else from each run's previous successful run. */
  drifted: (path: string, baseline?: number, threshold?: number, limit = 50) =>
    request<IDriftedRuns>('drift', { path, baseline, threshold, limit })
};
