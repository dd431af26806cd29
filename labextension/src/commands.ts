// Command ids shared by the sidebar, the notebook integration and the main-area views.
export const COMMANDS = {
  run: 'same-nb:run-as-pipeline',
  startStep: 'same-nb:start-step-here',
  open: 'same-nb:open-sidebar',
  /** args: { path: string; runId?: number } — the main-area Pipeline view of a notebook */
  pipelineView: 'same-nb:open-pipeline-view',
  /** args: { path: string } — the runs table of a notebook */
  runsView: 'same-nb:open-runs-view',
  /** args: { path: string; runs: number[] } — compare two or more runs */
  compare: 'same-nb:compare-runs',
  /** args: { path: string; runId?: number; sha256?: string; label?: string } — lineage view */
  lineageView: 'same-nb:open-lineage-view',
  /** args: { path: string; sweepId: string; expected?: number } — a sweep's runs as one table */
  sweepView: 'same-nb:open-sweep-view',
  /** args: { path: string; runId: number; step: string; notify?: boolean } — bind a step run's inputs in the notebook's kernel */
  debugStep: 'same-nb:debug-step'
};

/** What the main-area views need from the notebook side (provided by index.ts). */
export interface IViewContext {
  /** Show a notebook's cell (by id, else 1-based number) and put the cursor on `line`. */
  showInNotebook(path: string, cellId: string | null, cell: number | null, line: number | null): void;
  /** Open a step's executed notebook of a run, read-only, titled with the run number. */
  openExecuted(path: string, runId: number, step: string): void;
}
