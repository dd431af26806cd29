// The sidebar's state: the active notebook's inspection, the parameter form, the runs list with
// live polling, the selected run, its lineage and metrics. Views read it and call its actions.
import { NotebookPanel } from '@jupyterlab/notebook';
import { ISignal, Signal } from '@lumino/signaling';

import {
  ACTIVE,
  api,
  ApiError,
  IGraph,
  IInspection,
  IMetricRow,
  IRun
} from './api';

export interface ISettings {
  defaultTarget: string;
  kfpHost: string;
  pollSeconds: number;
}

export const PAGE_SIZE = 10;

/** How a parameter's default reads in the form (papermill -p syntax). */
export function paramText(value: unknown): string {
  if (typeof value === 'string') {
    return value;
  }
  if (value === null || value === undefined) {
    return 'None';
  }
  if (typeof value === 'boolean') {
    return value ? 'True' : 'False';
  }
  return typeof value === 'object' ? JSON.stringify(value) : String(value);
}

function message(error: unknown): string {
  return error instanceof ApiError || error instanceof Error
    ? error.message
    : String(error);
}

export class SidebarModel {
  panel: NotebookPanel | null = null;
  inspection: IInspection | null = null;
  inspectError: string | null = null;
  inspecting = false;
  params: Record<string, string> = {};
  defaults: Record<string, string> = {};
  target = 'local';
  notice: { text: string; error: boolean } | null = null;
  runs: IRun[] = [];
  total = 0;
  offset = 0;
  runsError: string | null = null;
  runsNotes: string[] = [];
  selected: IRun | null = null;
  lineage: IGraph | null = null;
  lineageError: string | null = null;
  tracing: string | null = null; // the artifact label being traced upstream
  metrics: IMetricRow[] = [];
  metric: string | null = null;
  settings: ISettings = { defaultTarget: 'local', kfpHost: '', pollSeconds: 1.5 };

  private _changed = new Signal<this, void>(this);
  private _timer: number | null = null;
  private _generation = 0; // ignore replies meant for a notebook that is no longer active

  get changed(): ISignal<this, void> {
    return this._changed;
  }

  get path(): string {
    return this.panel ? this.panel.context.path : '';
  }

  emit(): void {
    this._changed.emit();
  }

  setSettings(settings: ISettings): void {
    const first = this.settings.defaultTarget !== settings.defaultTarget;
    this.settings = settings;
    if (first) {
      this.target = settings.defaultTarget;
    }
    this.emit();
  }

  setPanel(panel: NotebookPanel | null): void {
    if (panel === this.panel) {
      return;
    }
    this.panel?.context.fileChanged.disconnect(this._onSaved, this);
    this.panel = panel;
    this._generation++;
    this.inspection = null;
    this.inspectError = null;
    this.runs = [];
    this.total = 0;
    this.offset = 0;
    this.selected = null;
    this.lineage = null;
    this.metrics = [];
    this.notice = null;
    panel?.context.fileChanged.connect(this._onSaved, this);
    this.emit();
    if (panel) {
      void panel.context.ready.then(() => this.refreshAll());
    }
  }

  private _onSaved(): void {
    void this.inspect();
  }

  async refreshAll(): Promise<void> {
    await Promise.all([this.inspect(), this.refreshRuns(), this.refreshMetrics()]);
  }

  async inspect(): Promise<void> {
    const path = this.path;
    if (!path) {
      return;
    }
    const generation = this._generation;
    this.inspecting = true;
    this.emit();
    try {
      const inspection = await api.inspect(path);
      if (generation !== this._generation) {
        return;
      }
      this.inspection = inspection;
      this.inspectError = null;
      const defaults: Record<string, string> = {};
      for (const p of inspection.pipeline.parameters) {
        defaults[p.name] = paramText(p.default);
      }
      // Keep what the user typed for parameters that still exist.
      const params: Record<string, string> = {};
      for (const name of Object.keys(defaults)) {
        params[name] =
          name in this.params && this.params[name] !== this.defaults[name]
            ? this.params[name]
            : defaults[name];
      }
      this.defaults = defaults;
      this.params = params;
    } catch (error) {
      if (generation === this._generation) {
        this.inspection = null;
        this.inspectError = message(error);
      }
    } finally {
      if (generation === this._generation) {
        this.inspecting = false;
        this.emit();
      }
    }
  }

  async refreshRuns(): Promise<void> {
    const path = this.path;
    if (!path) {
      return;
    }
    const generation = this._generation;
    try {
      const page = await api.runs(path, PAGE_SIZE, this.offset);
      const selected = this.selected;
      const detail =
        selected && (ACTIVE.includes(selected.status) || !selected.steps)
          ? await api.run(path, selected.id)
          : selected;
      if (generation !== this._generation) {
        return;
      }
      const finished = selected && detail && selected.status !== detail.status;
      this.runs = page.runs;
      this.total = page.total;
      this.runsError = null;
      this.runsNotes = page.notes ?? [];
      if (this.selected && detail && this.selected.id === detail.id) {
        this.selected = detail;
      }
      if (finished) {
        this.notice = { text: `Run ${detail.id} ${detail.status}.`, error: detail.status !== 'success' };
        void this.refreshMetrics();
        if (this.lineage && !this.tracing) {
          void this.showLineage();
        }
      }
    } catch (error) {
      if (generation === this._generation) {
        this.runsError = message(error);
      }
    }
    this.emit();
    this._schedule();
  }

  async refreshMetrics(): Promise<void> {
    const path = this.path;
    if (!path) {
      return;
    }
    try {
      const data = await api.metrics(path);
      if (path === this.path) {
        this.metrics = data.metrics;
        const names = [...new Set(data.metrics.map(m => m.name))];
        if (!this.metric || !names.includes(this.metric)) {
          this.metric = names[0] ?? null;
        }
        this.emit();
      }
    } catch {
      // the chart is optional; the runs list shows the store's errors
    }
  }

  /** Poll while something is running; stop when everything has finished. */
  private _schedule(): void {
    if (this._timer !== null) {
      window.clearTimeout(this._timer);
      this._timer = null;
    }
    const active =
      this.runs.some(r => ACTIVE.includes(r.status)) ||
      (this.selected !== null && ACTIVE.includes(this.selected.status));
    if (active && this.panel) {
      this._timer = window.setTimeout(
        () => void this.refreshRuns(),
        Math.max(500, this.settings.pollSeconds * 1000)
      );
    }
  }

  page(delta: number): void {
    this.offset = Math.max(0, this.offset + delta * PAGE_SIZE);
    void this.refreshRuns();
  }

  async select(id: number): Promise<void> {
    try {
      this.selected = await api.run(this.path, id);
      this.lineage = null;
      this.tracing = null;
    } catch (error) {
      this.notice = { text: message(error), error: true };
    }
    this.emit();
    this._schedule();
  }

  async run(panel: NotebookPanel | null = this.panel): Promise<void> {
    if (!panel) {
      this.notice = { text: 'Open a notebook first.', error: true };
      this.emit();
      return;
    }
    if (panel !== this.panel) {
      this.setPanel(panel);
      await panel.context.ready;
    }
    if (this.target === 'kubeflow' && !this.settings.kfpHost) {
      this.notice = {
        text: 'Set the Kubeflow Pipelines host in Settings › same-nb pipelines first.',
        error: true
      };
      this.emit();
      return;
    }
    const changed: Record<string, string> = {};
    for (const [name, value] of Object.entries(this.params)) {
      if (value !== this.defaults[name]) {
        changed[name] = value;
      }
    }
    this.notice = { text: 'Starting…', error: false };
    this.emit();
    try {
      if (panel.context.model.dirty) {
        await panel.context.save();
      }
      const { run_id, remote_url } = await api.startRun(
        panel.context.path,
        changed,
        this.target,
        this.settings.kfpHost
      );
      this.notice = {
        text: remote_url ? `Run ${run_id} submitted to Kubeflow Pipelines.` : `Run ${run_id} started.`,
        error: false
      };
      this.offset = 0;
      await this.select(run_id);
      await this.refreshRuns();
    } catch (error) {
      this.notice = { text: message(error), error: true };
      this.emit();
    }
  }

  async cancel(id: number): Promise<void> {
    try {
      await api.cancel(this.path, id);
      this.notice = { text: `Cancelling run ${id}…`, error: false };
    } catch (error) {
      this.notice = { text: message(error), error: true };
    }
    await this.refreshRuns();
  }

  async showLineage(): Promise<void> {
    if (!this.selected) {
      return;
    }
    try {
      this.lineage = await api.runLineage(this.path, this.selected.id);
      this.lineageError = null;
      this.tracing = null;
    } catch (error) {
      this.lineage = null;
      this.lineageError = message(error);
    }
    this.emit();
  }

  async trace(sha256: string, label: string): Promise<void> {
    try {
      this.lineage = await api.artifactLineage(this.path, sha256);
      this.lineageError = null;
      this.tracing = label;
    } catch (error) {
      this.lineageError = message(error);
    }
    this.emit();
  }

  closeLineage(): void {
    this.lineage = null;
    this.lineageError = null;
    this.tracing = null;
    this.emit();
  }

  dispose(): void {
    if (this._timer !== null) {
      window.clearTimeout(this._timer);
    }
    Signal.clearData(this);
  }
}
