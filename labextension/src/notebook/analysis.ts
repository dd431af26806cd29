// The live analysis of one open notebook: debounced from its UNSAVED model (nothing is written),
// refreshed on edits and on save, following renames. The notebook's decorations and the sidebar
// both read it.
import { NotebookPanel } from '@jupyterlab/notebook';
import { ISignal, Signal } from '@lumino/signaling';

import { api, ApiError, IDiagnostic, IInspection } from '../api';
import { hasStepTags } from './tags';

export const DEBOUNCE_MS = 600;

/** An analysis that failed, with the cell (and line) it names when it names one. */
export interface IAnalysisError {
  message: string;
  cell: number | null;
  cell_id: string | null;
  line: number | null;
}

/** The problems worth a user's attention: `info` diagnostics are notes, not problems. */
export function problems(inspection: IInspection | null): IDiagnostic[] {
  return (inspection?.pipeline.diagnostics ?? []).filter(d => d.severity !== 'info');
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** What decides a pipeline: cell kinds, sources and tags (not outputs or kernel metadata). */
export function pipelineKey(notebook: any): string {
  const cells = (notebook?.cells ?? []).map((c: any) => [
    c.cell_type,
    Array.isArray(c.source) ? c.source.join('') : String(c.source ?? ''),
    c.metadata?.tags ?? []
  ]);
  return JSON.stringify(cells);
}

export class NotebookAnalysis {
  inspection: IInspection | null = null;
  error: IAnalysisError | null = null;
  /** No code yet: not an error, the sidebar says how to start. */
  empty = false;
  /** No `step:` tag: the whole notebook is one step. */
  untagged = false;
  analyzing = false;
  /** The model's content differs from what was last analysed (an analysis is due). */
  pending = false;
  /** Where the run shown in the sidebar failed: marked on those cells too. */
  runErrors: IAnalysisError[] = [];

  private _changed = new Signal<this, void>(this);
  private _timer: number | null = null;
  private _key = '';
  private _seq = 0;
  private _disposed = false;
  private _savedKey = '';

  constructor(readonly panel: NotebookPanel) {
    void panel.context.ready.then(() => {
      if (this._disposed) {
        return;
      }
      this._savedKey = pipelineKey(panel.context.model.toJSON());
      panel.context.model.contentChanged.connect(this._onContent, this);
      panel.context.fileChanged.connect(this._onSaved, this);
      void this.refresh(true);
    });
    panel.context.pathChanged.connect(this._onRenamed, this);
    panel.disposed.connect(() => this.dispose());
  }

  get changed(): ISignal<this, void> {
    return this._changed;
  }

  get path(): string {
    return this.panel.context.path;
  }

  /** Analyse again after the debounce delay (edits come in bursts while typing). */
  schedule(delay = DEBOUNCE_MS): void {
    if (this._timer !== null) {
      window.clearTimeout(this._timer);
    }
    this.pending = true;
    this._timer = window.setTimeout(() => {
      this._timer = null;
      void this.refresh();
    }, delay);
  }

  /** The notebook as nbformat JSON without outputs: the analysis never needs them. */
  content(): any {
    const json = this.panel.context.model.toJSON() as any;
    const cells = (json.cells ?? []).map((cell: any) =>
      cell.cell_type === 'code' ? { ...cell, outputs: [], execution_count: null } : cell
    );
    return { ...json, cells };
  }

  async refresh(force = false): Promise<void> {
    if (this._disposed || !this.panel.context.isReady) {
      return;
    }
    const content = this.content();
    const key = JSON.stringify([
      this.path,
      content.cells.map((c: any) => [c.cell_type, c.id, c.source, c.metadata?.tags ?? []]),
      content.metadata?.kernelspec?.name ?? null
    ]);
    if (!force && key === this._key && !this.error) {
      this.pending = false;
      this._changed.emit();
      return;
    }
    this._key = key;
    const seq = ++this._seq;
    this.pending = false;
    const code = content.cells.filter(
      (c: any) => c.cell_type === 'code' && String(Array.isArray(c.source) ? c.source.join('') : c.source).trim()
    );
    if (!code.length) {
      this.empty = true;
      this.untagged = false;
      this.inspection = null;
      this.error = null;
      this.analyzing = false;
      this._changed.emit();
      return;
    }
    this.analyzing = true;
    this._changed.emit();
    let inspection: IInspection | null = null;
    let error: IAnalysisError | null = null;
    try {
      inspection = await this._inspect(content);
    } catch (e) {
      const details = e instanceof ApiError ? e.details : {};
      error = {
        message: messageOf(e),
        cell: typeof details.cell === 'number' ? details.cell : null,
        cell_id: typeof details.cell_id === 'string' ? details.cell_id : null,
        line: typeof details.line === 'number' ? details.line : null
      };
    }
    if (seq !== this._seq || this._disposed) {
      return; // a newer analysis is on its way
    }
    this.analyzing = false;
    this.empty = !!error && /has no code cells/.test(error.message);
    this.error = this.empty ? null : error;
    this.inspection = inspection;
    this.untagged = !!inspection && !hasStepTags(this.panel);
    this._changed.emit();
  }

  private async _inspect(content: unknown): Promise<IInspection> {
    try {
      return await api.inspectContent(this.path, content);
    } catch (e) {
      // A server without the POST form yet: analyse the saved file instead.
      if (e instanceof ApiError && (e.status === 405 || e.status === 404) && !e.details?.message) {
        return await api.inspect(this.path);
      }
      throw e;
    }
  }

  /** Mark where a run's steps failed (the sidebar's current run of this notebook). */
  setRunErrors(errors: IAnalysisError[]): void {
    if (JSON.stringify(errors) !== JSON.stringify(this.runErrors)) {
      this.runErrors = errors;
      this._changed.emit();
    }
  }

  private _onContent(): void {
    this.schedule();
  }

  private _onSaved(): void {
    this._savedKey = pipelineKey(this.panel.context.model.toJSON());
    this.schedule(0);
  }

  /** Whether the cells (sources, tags) were edited since the notebook was loaded or saved. */
  get edited(): boolean {
    return this.panel.context.isReady && pipelineKey(this.panel.context.model.toJSON()) !== this._savedKey;
  }

  private _onRenamed(): void {
    this._key = '';
    this.schedule(0);
  }

  dispose(): void {
    if (this._disposed) {
      return;
    }
    this._disposed = true;
    if (this._timer !== null) {
      window.clearTimeout(this._timer);
    }
    Signal.clearData(this);
  }
}

const registry = new Map<NotebookPanel, NotebookAnalysis>();

/** The one analysis of an open notebook (created on first use, dropped when the panel closes). */
export function analysisFor(panel: NotebookPanel): NotebookAnalysis {
  let analysis = registry.get(panel);
  if (!analysis) {
    analysis = new NotebookAnalysis(panel);
    registry.set(panel, analysis);
    panel.disposed.connect(() => registry.delete(panel));
  }
  return analysis;
}
