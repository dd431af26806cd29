// The sidebar's state: the active notebook's live analysis, the typed parameter form, the runs list
// (polled while the sidebar is visible, so runs started from a terminal appear within seconds), the
// current run (live), its lineage and metrics. Views read it and call its actions.
import { NotebookPanel } from '@jupyterlab/notebook';
import { ISignal, Signal } from '@lumino/signaling';

import { ACTIVE, api, ApiError, IGraph, IInspection, IMetricRow, IRun } from './api';
import { analysisFor, NotebookAnalysis, pipelineKey } from './notebook/analysis';
import { defaultText, paramProblem } from './params';
import { ISweepStarted, sweepApi } from './sweeps';

export interface ISettings {
  defaultTarget: string;
  kfpHost: string;
  pollSeconds: number;
}

export const PAGE_SIZE = 10;

/** What the user chose when running a notebook with unsaved changes. */
export type DirtyChoice = 'save' | 'saved' | null;

export interface IModelHooks {
  /** Ask what to run when the notebook has unsaved changes to its cells. */
  askDirty(panel: NotebookPanel): Promise<DirtyChoice>;
  /** The notebook as saved on disk (nbformat JSON). */
  saved(path: string): Promise<any>;
}

/** @deprecated kept for callers of the old untyped form: the default as text. */
export function paramText(value: unknown): string {
  return defaultText({ name: '', type: typeof value === 'number' ? 'int' : 'str', default: value });
}

function message(error: unknown): string {
  return error instanceof ApiError || error instanceof Error ? error.message : String(error);
}


const sleep = (ms: number) => new Promise(resolve => window.setTimeout(resolve, ms));

export class SidebarModel {
  panel: NotebookPanel | null = null;
  analysis: NotebookAnalysis | null = null;
  params: Record<string, string> = {};
  defaults: Record<string, string> = {};
  target = 'local';
  notice: { text: string; error: boolean } | null = null;
  runs: IRun[] = [];
  total = 0;
  offset = 0;
  latestId: number | null = null;
  runsError: string | null = null;
  runsNotes: string[] = [];
  /** The run shown at the top: the one the user picked, else the newest. */
  selected: IRun | null = null;
  pinned = false;
  cancelling: number | null = null;
  starting = false;
  lineage: IGraph | null = null;
  lineageError: string | null = null;
  tracing: string | null = null; // the artifact label being traced upstream
  metrics: IMetricRow[] = [];
  metric: string | null = null;
  settings: ISettings = { defaultTarget: 'local', kfpHost: '', pollSeconds: 1.5 };
  visible = false;
  hooks: IModelHooks | null = null;

  private _changed = new Signal<this, void>(this);
  private _timer: number | null = null;
  private _generation = 0; // ignore replies meant for a notebook that is no longer active
  private _polling = false;

  get changed(): ISignal<this, void> {
    return this._changed;
  }

  get path(): string {
    return this.panel ? this.panel.context.path : '';
  }

  get inspection(): IInspection | null {
    return this.analysis?.inspection ?? null;
  }

  get inspecting(): boolean {
    return !!this.analysis && this.analysis.analyzing;
  }

  get inspectError(): string | null {
    return this.analysis?.error?.message ?? null;
  }

  emit(): void {
    this._markRunErrors();
    this._changed.emit();
  }

  /** The current run's failures, marked on their cells in the notebook. */
  private _markRunErrors(): void {
    const run = this.selected;
    const errors = (run?.steps ?? [])
      .filter(s => s.error && (s.error.cell_id || s.error.cell))
      .map(s => ({
        message: `run #${run!.id}, step ${s.step_name} failed here: ${s.error!.ename ?? 'error'}: ${s.error!.evalue ?? ''}`.trim(),
        cell: s.error!.cell ?? null,
        cell_id: s.error!.cell_id ?? null,
        line: s.error!.line ?? null
      }));
    this.analysis?.setRunErrors(errors);
  }

  setSettings(settings: ISettings): void {
    const first = this.settings.defaultTarget !== settings.defaultTarget;
    this.settings = settings;
    if (first) {
      this.target = settings.defaultTarget;
    }
    this.emit();
  }

  setVisible(visible: boolean): void {
    this.visible = visible;
    if (visible) {
      void this.refreshRuns();
    } else {
      this._schedule();
    }
  }

  setPanel(panel: NotebookPanel | null): void {
    if (panel === this.panel) {
      return;
    }
    this.analysis?.setRunErrors([]);
    this.analysis?.changed.disconnect(this._onAnalysis, this);
    this.panel?.context.pathChanged.disconnect(this._onRenamed, this);
    this.panel = panel;
    this.analysis = panel ? analysisFor(panel) : null;
    this._reset();
    this.analysis?.changed.connect(this._onAnalysis, this);
    panel?.context.pathChanged.connect(this._onRenamed, this);
    this._onAnalysis();
    if (panel) {
      void panel.context.ready.then(() => {
        if (panel === this.panel) {
          void this.refreshRuns();
          void this.refreshMetrics();
        }
      });
    }
  }

  private _reset(): void {
    this._generation++;
    this.runs = [];
    this.total = 0;
    this.offset = 0;
    this.latestId = null;
    this.runsError = null;
    this.selected = null;
    this.pinned = false;
    this.lineage = null;
    this.lineageError = null;
    this.metrics = [];
    this.notice = null;
  }

  /** "Rename and Save": the runs of the notebook under its new name. */
  private _onRenamed(): void {
    this._reset();
    this.emit();
    void this.refreshRuns();
    void this.refreshMetrics();
  }

  private _onAnalysis(): void {
    const inspection = this.inspection;
    if (inspection) {
      const defaults: Record<string, string> = {};
      for (const p of inspection.pipeline.parameters) {
        defaults[p.name] = defaultText(p);
      }
      // Keep what the user typed for parameters that still exist.
      const params: Record<string, string> = {};
      for (const name of Object.keys(defaults)) {
        params[name] =
          name in this.params && this.params[name] !== this.defaults[name] ? this.params[name] : defaults[name];
      }
      this.defaults = defaults;
      this.params = params;
    }
    this.emit();
  }

  /** Analyse again: reload a notebook whose cells were not edited from disk first (it may have changed there). */
  async inspect(): Promise<void> {
    const panel = this.panel;
    if (!panel || !this.analysis) {
      return;
    }
    if (!this.analysis.edited) {
      try {
        await panel.context.revert();
      } catch {
        // analyse what is open
      }
    }
    await this.analysis.refresh(true);
  }

  /** Problems with the typed parameter values, by name. */
  paramProblems(): Record<string, string> {
    const out: Record<string, string> = {};
    for (const p of this.inspection?.pipeline.parameters ?? []) {
      const problem = paramProblem(p, this.params[p.name] ?? this.defaults[p.name] ?? '');
      if (problem) {
        out[p.name] = problem;
      }
    }
    return out;
  }

  setParam(name: string, value: string): void {
    this.params = { ...this.params, [name]: value };
    this.emit();
  }

  async refreshRuns(): Promise<void> {
    const path = this.path;
    if (!path) {
      return;
    }
    if (this._polling) {
      return;
    }
    this._polling = true;
    const generation = this._generation;
    try {
      const page = await api.runs(path, PAGE_SIZE, this.offset);
      if (generation !== this._generation) {
        return;
      }
      const latest = page.latest_id ?? (this.offset === 0 ? page.runs[0]?.id ?? null : this.latestId);
      const fresh = latest !== null && latest !== this.latestId;
      this.latestId = latest;
      this.runs = page.runs;
      this.total = page.total;
      this.runsError = null;
      this.runsNotes = page.notes ?? [];
      // Follow the newest run unless the user picked one (a run started from a terminal shows at once).
      const wanted = this.pinned && this.selected ? this.selected.id : latest;
      if (wanted !== null) {
        const listed = page.runs.find(r => r.id === wanted);
        const current = this.selected && this.selected.id === wanted ? this.selected : null;
        const stale =
          !current ||
          ACTIVE.includes(current.status) ||
          !current.steps ||
          (listed !== undefined && listed.status !== current.status) ||
          fresh;
        if (stale) {
          const detail = await api.run(path, wanted);
          if (generation !== this._generation) {
            return;
          }
          const finished = current && ACTIVE.includes(current.status) && !ACTIVE.includes(detail.status);
          if (!this.selected || this.selected.id !== detail.id) {
            this.lineage = null;
            this.tracing = null;
          }
          this.selected = detail;
          if (finished) {
            if (this.cancelling !== detail.id) {
              this.notice = {
                text: `Run ${detail.id} ${detail.status}.`,
                error: !['success', 'cancelled'].includes(detail.status)
              };
            }
            void this.refreshMetrics();
            if (this.lineage && !this.tracing) {
              void this.showLineage();
            }
          }
        }
      } else {
        this.selected = null;
      }
    } catch (error) {
      if (generation === this._generation) {
        this.runsError = message(error);
      }
    } finally {
      this._polling = false;
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

  /** Poll the runs page while the sidebar is visible (cheap), or while the current run is active. */
  private _schedule(): void {
    if (this._timer !== null) {
      window.clearTimeout(this._timer);
      this._timer = null;
    }
    const active =
      this.runs.some(r => ACTIVE.includes(r.status)) ||
      (this.selected !== null && ACTIVE.includes(this.selected.status));
    if (this.panel && (this.visible || active)) {
      this._timer = window.setTimeout(
        () => void this.refreshRuns(),
        Math.max(500, this.settings.pollSeconds * 1000) * (this.visible ? 1 : 2)
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
      this.pinned = id !== this.latestId;
      this.lineage = null;
      this.tracing = null;
    } catch (error) {
      this.notice = { text: message(error), error: true };
    }
    this.emit();
    this._schedule();
  }

  /** Show the newest run again (and follow new ones). */
  followLatest(): void {
    this.pinned = false;
    void this.refreshRuns();
  }

  private async _differsFromDisk(panel: NotebookPanel): Promise<boolean> {
    if (!panel.context.model.dirty) {
      return false;
    }
    if (!this.hooks) {
      return true;
    }
    try {
      const saved = await this.hooks.saved(panel.context.path);
      return pipelineKey(saved) !== pipelineKey(panel.context.model.toJSON());
    } catch {
      return true;
    }
  }

  /** Run the notebook as saved on disk; never writes it unless the user chooses "Save and run". */
  /** A run of a sweep stops with its sweep: its process drives every grid point. */
  private async _cancelSweep(id: number, sweepId: string): Promise<void> {
    this.cancelling = id;
    this.notice = { text: `Cancelling sweep ${sweepId}…`, error: false };
    this.emit();
    try {
      const reply = await sweepApi.cancel(this.path, sweepId);
      this.notice = { text: reply.message, error: !reply.stopped };
    } catch (error) {
      this.notice = { text: `Sweep ${sweepId} was not cancelled: ${message(error)}`, error: true };
    } finally {
      this.cancelling = null;
    }
    this.emit();
    await this.refreshRuns();
  }

  /** What a run and a sweep check first: a notebook, a host, valid values, the saved file current. */
  private async _readyToStart(panel: NotebookPanel | null, target = this.target): Promise<boolean> {
    if (!panel) {
      this.notice = { text: 'Open a notebook first.', error: true };
      this.emit();
      return false;
    }
    if (panel !== this.panel) {
      this.setPanel(panel);
    }
    await panel.context.ready;
    if (target === 'kubeflow' && !this.settings.kfpHost) {
      this.notice = {
        text: 'Set the Kubeflow Pipelines host in Settings › same-nb pipelines first.',
        error: true
      };
      this.emit();
      return false;
    }
    const problems = Object.values(this.paramProblems());
    if (problems.length) {
      this.notice = { text: problems.join('\n'), error: true };
      this.emit();
      return false;
    }
    if (await this._differsFromDisk(panel)) {
      const choice = this.hooks ? await this.hooks.askDirty(panel) : 'saved';
      if (choice === null) {
        return false;
      }
      if (choice === 'save') {
        await panel.context.save();
      }
    }
    return true;
  }

  /** The run form's values that differ from the defaults (what `-p` would pass). */
  changedParams(): Record<string, string> {
    const changed: Record<string, string> = {};
    for (const [name, value] of Object.entries(this.params)) {
      if (value !== this.defaults[name]) {
        changed[name] = value;
      }
    }
    return changed;
  }

  /**
   * Start a sweep over `grid` (the other parameters as in the run form). Answers what happened in a
   * line for the sweep form (the run form's notice stays about runs); `started` is null when it did not.
   */
  async startSweep(
    grid: Record<string, string[]>,
    jobs?: number
  ): Promise<{ started: ISweepStarted | null; text: string; error: boolean }> {
    const panel = this.panel;
    if (!(await this._readyToStart(panel, 'local')) || !panel) {
      return { started: null, text: this.notice?.error ? this.notice.text : '', error: true };
    }
    const fixed = this.changedParams();
    for (const name of Object.keys(grid)) {
      delete fixed[name];
    }
    this.starting = true;
    this.emit();
    try {
      const started = await sweepApi.start(panel.context.path, grid, fixed, jobs);
      this.offset = 0;
      this.pinned = false;
      void this.refreshRuns();
      const n = started.runs;
      return { started, text: `Sweep ${started.sweep_id} started: ${n} run${n === 1 ? '' : 's'}.`, error: false };
    } catch (error) {
      return { started: null, text: message(error), error: true };
    } finally {
      this.starting = false;
      this.emit();
    }
  }

  async run(panel: NotebookPanel | null = this.panel): Promise<void> {
    if (!(await this._readyToStart(panel)) || !panel) {
      return;
    }
    const changed = this.changedParams();
    this.notice = { text: 'Starting…', error: false };
    this.starting = true;
    this.emit();
    try {
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
      this.pinned = false;
      await this.select(run_id);
      this.pinned = false;
      await this.refreshRuns();
    } catch (error) {
      this.notice = { text: message(error), error: true };
      this.emit();
    } finally {
      this.starting = false;
      this.emit();
    }
  }

  /** Cancel a run and say what happened: the server waits until it really stopped. */
  async cancel(id: number): Promise<void> {
    const path = this.path;
    const sweepId = [this.selected, ...this.runs].find(r => r?.id === id)?.sweep_id;
    if (sweepId) {
      return this._cancelSweep(id, sweepId);
    }
    this.cancelling = id;
    this.notice = { text: `Cancelling run ${id}…`, error: false };
    this.emit();
    try {
      const reply = await api.cancel(path, id);
      if (reply.stopped === true) {
        this.notice = {
          text: reply.status === 'cancelled' ? `Run ${id} cancelled.` : `Run ${id} ${reply.status}. ${reply.message ?? ''}`.trim(),
          error: false
        };
      } else if (reply.stopped === false) {
        this.notice = { text: `Run ${id} was not cancelled: ${reply.message || 'the server gave no reason'}`, error: true };
      } else {
        // An older server only says it sent the signal: watch the run stop.
        let status = 'running';
        for (let i = 0; i < 40 && ACTIVE.includes(status); i++) {
          await sleep(500);
          status = (await api.run(path, id)).status;
        }
        this.notice = ACTIVE.includes(status)
          ? { text: `Run ${id} did not stop within 20 s; it is still ${status}.`, error: true }
          : { text: status === 'cancelled' ? `Run ${id} cancelled.` : `Run ${id} ${status}.`, error: status !== 'cancelled' };
      }
    } catch (error) {
      this.notice = { text: `Run ${id} was not cancelled: ${message(error)}`, error: true };
    } finally {
      this.cancelling = null;
    }
    this.emit();
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
