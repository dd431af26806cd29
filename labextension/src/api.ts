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
  severity: 'error' | 'warning';
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
  duration_s: number | null;
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
  remote_url?: string | null;
  step_counts: Record<string, number>;
  log_tail?: string;
  steps?: IStepRun[];
}

export interface IRunPage {
  total: number;
  limit: number;
  offset: number;
  runs: IRun[];
  notes?: string[]; // e.g. a Kubeflow server that could not be reached for a status
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
  cancel: (path: string, id: number) => post<unknown>(`runs/${id}/cancel`, { path }),
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
