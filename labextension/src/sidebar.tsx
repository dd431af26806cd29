// The "Pipelines" sidebar, laid out for 250 px: the analysis' state in two lines, the run form, the
// current run's step statuses (live), then problems, steps (editable), runs, lineage and metrics —
// each section collapsible. Strings from notebooks and runs are rendered as React text only.
import { ReactWidget, UseSignal } from '@jupyterlab/apputils';
import { Message } from '@lumino/messaging';
import * as React from 'react';

import { ACTIVE, IInspection, IRun, IStep, IStepRun } from './api';
import { COMMANDS } from './commands';
import { DebugButton, DebugOutput } from './debug/view';
import { GraphView, IGraphNode } from './graph';
import { Lineage, Metrics } from './history';
import { PAGE_SIZE, SidebarModel } from './model';
import { problems } from './notebook/analysis';
import { stepColor } from './notebook/colors';
import { afterTags, renameStep, setAfter, stepNameProblem } from './notebook/tags';
import { ParamsForm } from './params';
import { bytesText, MEMORY_MEANING, resourceLines } from './resources';
import { Section } from './section';
import { valueText } from './views/common';
import { SweepForm } from './sweepform';

export interface IActions {
  jumpToCell(cellId: string | null, cell: number | null, line: number | null): void;
  openExecuted(runId: number, step: string): void;
  /** Run a JupyterLab command (the main-area views). */
  execute(command: string, args: Record<string, any>): void;
}

type Props = { model: SidebarModel; actions: IActions };

export function seconds(value: number | null | undefined): string {
  if (value === null || value === undefined) {
    return '';
  }
  return value < 10 ? `${value.toFixed(2)} s` : `${value.toFixed(1)} s`;
}

function Status(props: { status: string; cached?: boolean }) {
  return (
    <span className={`same-nb-status same-nb-status-${props.status}`}>
      {props.cached && props.status !== 'cached' ? `${props.status} (cached)` : props.status}
    </span>
  );
}

function Code(props: { children: string }) {
  return <code className="same-nb-code">{props.children}</code>;
}

/** The analysis in (at most) two lines: analysing, failed, empty, untagged. */
function AnalysisState({ model, actions }: Props) {
  const analysis = model.analysis;
  if (!analysis) {
    return null;
  }
  if (analysis.error) {
    const e = analysis.error;
    return (
      <p
        className={`same-nb-error-text same-nb-inspect-error ${e.cell !== null || e.cell_id ? 'same-nb-clickable' : ''}`}
        title={e.cell !== null || e.cell_id ? 'Go to the cell' : undefined}
        onClick={() => (e.cell !== null || e.cell_id ? actions.jumpToCell(e.cell_id, e.cell, e.line) : undefined)}
      >
        {e.message}
      </p>
    );
  }
  if (analysis.empty) {
    return (
      <p className="same-nb-hint same-nb-empty-state">
        No steps yet. Tag a cell <Code>step:load</Code> (or use “New step here” in the cell toolbar); cells up to
        the next tag join it.
      </p>
    );
  }
  if (analysis.untagged && model.inspection) {
    const name = model.inspection.pipeline.steps[0]?.name ?? 'the notebook';
    return (
      <p className="same-nb-hint same-nb-untagged-state">
        {'No '}
        <Code>step:</Code>
        {` tags: the notebook runs as one step, “${name}”. Tag a cell `}
        <Code>step:load</Code>
        {' (or use “New step here” in the cell toolbar) to split it there.'}
      </p>
    );
  }
  if (!model.inspection && analysis.analyzing) {
    return <p className="same-nb-dim">Analyzing…</p>;
  }
  return null;
}

function StepEditor(props: { model: SidebarModel; step: IStep; steps: string[]; onDone: () => void }) {
  const { model, step, steps, onDone } = props;
  const panel = model.panel;
  const fallback = step.cells.find(c => c.id)?.id ?? null;
  const [name, setName] = React.useState(step.name);
  const [after, setAfterState] = React.useState<string[]>(panel ? afterTags(panel, step.name, fallback) : []);
  const problem = name === step.name ? null : stepNameProblem(name.trim(), steps.filter(s => s !== step.name));
  const save = () => {
    if (!panel || problem) {
      return;
    }
    const newName = name.trim();
    if (newName !== step.name) {
      renameStep(panel, step.name, newName, fallback);
    }
    setAfter(panel, newName, after, fallback);
    onDone();
  };
  return (
    <div className="same-nb-step-editor">
      <label className="same-nb-param">
        <span className="same-nb-param-name">name</span>
        <input
          className={`jp-mod-styled ${problem ? 'same-nb-invalid' : ''}`}
          value={name}
          name="step-name"
          autoFocus
          onChange={e => setName(e.target.value)}
          onKeyDown={e => {
            if (e.key === 'Enter') {
              save();
            } else if (e.key === 'Escape') {
              onDone();
            }
          }}
        />
      </label>
      {problem ? <div className="same-nb-param-problem">{problem}</div> : null}
      {steps.length > 1 ? (
        <div className="same-nb-after">
          <span className="same-nb-dim">runs after (besides the data it reads):</span>
          {steps
            .filter(s => s !== step.name)
            .map(s => (
              <label key={s} className="same-nb-after-option">
                <input
                  type="checkbox"
                  checked={after.includes(s)}
                  onChange={e =>
                    setAfterState(e.target.checked ? [...after, s] : after.filter(a => a !== s))
                  }
                />
                {s}
              </label>
            ))}
        </div>
      ) : null}
      <div className="same-nb-row">
        <button className="jp-mod-styled jp-mod-accept same-nb-small-button" disabled={!!problem} onClick={save}>
          Apply
        </button>
        <button className="jp-mod-styled same-nb-small-button" onClick={onDone}>
          Cancel
        </button>
      </div>
      <div className="same-nb-dim">Changes the cell tags in the notebook (not saved).</div>
    </div>
  );
}

function Steps({ model, actions, inspection }: Props & { inspection: IInspection }) {
  const [editing, setEditing] = React.useState<string | null>(null);
  const steps = inspection.pipeline.steps;
  const names = steps.map(s => s.name);
  const nodes: IGraphNode[] = inspection.order.map(name => ({ id: name, label: name, kind: 'step' }));
  const edges = inspection.pipeline.edges.map(e => ({
    source: e.src,
    target: e.dst,
    label: e.kind === 'after' ? 'after' : e.names.join(', ')
  }));
  return (
    <Section title={`Steps (${steps.length})`}>
      {steps.length > 1 ? (
        <div className="same-nb-graph-box">
          <GraphView nodes={nodes} edges={edges} ariaLabel="Step DAG" />
        </div>
      ) : null}
      <ul className="same-nb-steps">
        {steps.map(s => (
          <li
            key={s.name}
            className="same-nb-step"
            data-step={s.name}
            style={{ borderLeftColor: stepColor(s.name) }}
          >
            <div className="same-nb-row">
              <span
                className="same-nb-step-name same-nb-clickable"
                title="Show the step's first cell"
                onClick={() => actions.jumpToCell(s.cells[0]?.id ?? null, s.cells[0]?.number ?? null, null)}
              >
                {s.name}
              </span>
              <span className="same-nb-dim">{` cells ${s.cells.map(c => c.number).join(', ')}`}</span>
              <button
                className="same-nb-link same-nb-edit-step"
                title="Rename the step or change what it runs after"
                aria-label={`Edit step ${s.name}`}
                onClick={() => setEditing(editing === s.name ? null : s.name)}
              >
                ✎
              </button>
            </div>
            <div className="same-nb-io">
              {'in: '}
              {s.inputs.length
                ? s.inputs
                    .map(i => (i.producer ? `${i.name} ← ${i.producer}` : `${i.name} (${i.kind})`))
                    .join(', ')
                : '—'}
            </div>
            <div className="same-nb-io">
              {'out: '}
              {s.outputs.length ? s.outputs.join(', ') : '—'}
            </div>
            {editing === s.name ? (
              <StepEditor model={model} step={s} steps={names} onDone={() => setEditing(null)} />
            ) : null}
          </li>
        ))}
      </ul>
    </Section>
  );
}

function Diagnostics({ model, actions }: Props) {
  const items = problems(model.inspection);
  if (!items.length) {
    return null;
  }
  return (
    <Section title={`Problems (${items.length})`}>
      <ul className="same-nb-diagnostics">
        {items.map((d, i) => (
          <li
            key={i}
            className={`same-nb-diagnostic same-nb-${d.severity} same-nb-clickable`}
            title="Go to the cell"
            onClick={() => actions.jumpToCell(d.cell_id, d.cell, d.line)}
          >
            <span className="same-nb-where">
              {[d.step ? `[${d.step}]` : '', d.cell ? `cell ${d.cell}` : '', d.line ? `line ${d.line}` : '']
                .filter(Boolean)
                .join(' ')}
            </span>{' '}
            {d.message}
          </li>
        ))}
      </ul>
    </Section>
  );
}

function RunForm({ model }: { model: SidebarModel }) {
  const inspection = model.inspection;
  const params = inspection?.pipeline.parameters ?? [];
  const invalid = Object.keys(model.paramProblems()).length > 0;
  const ok = (inspection?.ok ?? false) && !model.analysis?.error;
  const disabled = !ok || invalid || model.starting;
  const why = !ok
    ? 'Fix the problems first'
    : invalid
      ? 'Fix the parameter values first'
      : 'Run the saved notebook as a pipeline';
  return (
    <Section title="Run" name="run">
      {params.length ? (
        <ParamsForm
          params={params}
          values={model.params}
          defaults={model.defaults}
          onChange={(name, value) => model.setParam(name, value)}
        />
      ) : (
        <p className="same-nb-dim">
          No parameters (tag a cell <Code>parameters</Code>).
        </p>
      )}
      <label className="same-nb-param">
        <span className="same-nb-param-name">target</span>
        <select
          className="jp-mod-styled same-nb-target"
          value={model.target}
          onChange={e => {
            model.target = e.target.value;
            model.emit();
          }}
        >
          <option value="local">local (this server)</option>
          <option value="kubeflow">Kubeflow Pipelines</option>
        </select>
      </label>
      {model.target === 'kubeflow' ? (
        <p className="same-nb-dim">{`Host: ${model.settings.kfpHost || 'not set (see Settings)'}`}</p>
      ) : null}
      <button
        className="jp-mod-styled jp-mod-accept same-nb-run-button"
        disabled={disabled}
        title={why}
        onClick={() => void model.run()}
      >
        Run as pipeline
      </button>
      {model.notice ? (
        <p
          className={model.notice.error ? 'same-nb-notice same-nb-error-text' : 'same-nb-notice'}
          role="status"
        >
          {model.notice.text}
        </p>
      ) : null}
    </Section>
  );
}

function Timing({ step }: { step: IStepRun }) {
  const memory = bytesText(step.peak_rss_bytes);
  const figures = resourceLines(step).join(' · ');
  const usage = figures ? `\n${figures}\n(${MEMORY_MEANING})` : '';
  if (step.compute_s === null || step.compute_s === undefined) {
    return (
      <span className="same-nb-dim same-nb-timing" title={usage.trim() || undefined}>
        {seconds(step.duration_s)}
        {memory ? <span className="same-nb-timing-mem">{` · ${memory}`}</span> : null}
      </span>
    );
  }
  return (
    <span
      className="same-nb-dim same-nb-timing"
      title={`compute: running the step's cells · kernel wait: starting and warming its kernel (as \`same-nb run\` prints them)${usage}`}
    >
      {seconds(step.compute_s)}
      {step.kernel_wait_s && step.kernel_wait_s >= 0.005 ? ` · wait ${seconds(step.kernel_wait_s)}` : ''}
      {memory ? <span className="same-nb-timing-mem">{` · ${memory}`}</span> : null}
    </span>
  );
}

function StepRow({ path, run, step, actions }: { path: string; run: IRun; step: IStepRun; actions: IActions }) {
  const err = step.error;
  const [open, setOpen] = React.useState(false);
  const more = !!(step.reason || step.log_tail);
  return (
    <li className="same-nb-step-run" data-step={step.step_name} style={{ borderLeftColor: stepColor(step.step_name) }}>
      <div className="same-nb-row same-nb-step-line">
        <span
          className={`same-nb-step-name ${more ? 'same-nb-clickable' : ''}`}
          title={more ? `${step.step_name}: show why it ran and its output` : step.step_name}
          onClick={() => setOpen(!open)}
        >
          {more ? <span className="same-nb-caret">{open ? '▾' : '▸'}</span> : null}
          {step.step_name}
        </span>
        {step.executed_notebook ? (
          <button
            className="same-nb-link same-nb-open-executed"
            aria-label="open executed notebook"
            title={`Open the notebook as run #${run.id} executed it (read-only)`}
            onClick={() => actions.openExecuted(run.id, step.step_name)}
          >
            ↗
          </button>
        ) : null}
        <Status status={step.status} cached={step.cache_hit} />
        <Timing step={step} />
      </div>
      {err ? (
        <div
          className="same-nb-error-text same-nb-clickable"
          title="Go to the cell"
          onClick={() => actions.jumpToCell(err.cell_id ?? null, err.cell ?? null, err.line ?? null)}
        >
          {`${err.ename}: ${err.evalue}`}
          {err.cell ? ` (cell ${err.cell}${err.line ? `, line ${err.line}` : ''})` : ''}
        </div>
      ) : null}
      {step.status === 'failed' ? (
        <div className="same-nb-row same-nb-debug-row">
          <DebugButton
            path={path}
            runId={run.id}
            step={step.step_name}
            onDebug={() =>
              actions.execute(COMMANDS.debugStep, { path, runId: run.id, step: step.step_name, notify: false })
            }
          />
        </div>
      ) : null}
      <DebugOutput path={path} runId={run.id} step={step.step_name} />
      {step.metrics.length ? (
        <div className="same-nb-io">{step.metrics.map(m => `${m.name} = ${m.value}`).join(', ')}</div>
      ) : null}
      {open && step.reason ? <div className="same-nb-dim same-nb-io">{step.reason}</div> : null}
      {open && step.log_tail ? <pre className="same-nb-log">{step.log_tail}</pre> : null}
    </li>
  );
}

function CurrentRun({ model, actions }: Props) {
  const run = model.selected;
  if (!run) {
    return null;
  }
  const active = ACTIVE.includes(run.status);
  const cancelling = model.cancelling === run.id;
  const extra = (
    <span className="same-nb-row">
      {active ? (
        <button
          className="jp-mod-styled jp-mod-warn same-nb-small-button same-nb-cancel"
          disabled={cancelling}
          onClick={() => void model.cancel(run.id)}
        >
          {cancelling ? 'Cancelling…' : run.sweep_id ? 'Cancel sweep' : 'Cancel'}
        </button>
      ) : null}
      <button
        className="same-nb-link same-nb-lineage-button"
        title="Show what this run read and produced"
        onClick={() => void model.showLineage()}
      >
        lineage
      </button>
    </span>
  );
  const title = run.name ? `Run #${run.id} · ${run.name}` : `Run #${run.id}`;
  return (
    <Section title={title} name="current-run" extra={extra} className="same-nb-current-run">
      <div className="same-nb-run-summary">
        <Status status={run.status} /> <span className="same-nb-dim">{seconds(run.duration_s)}</span>{' '}
        {model.pinned && run.id !== model.latestId ? (
          <button className="same-nb-link" onClick={() => model.followLatest()}>
            show newest
          </button>
        ) : null}
        <span className="same-nb-dim same-nb-run-params">
          {Object.entries(run.params)
            .map(([k, v]) => `${k}=${typeof v === 'string' ? JSON.stringify(v) : valueText(v)}`)
            .join(' ')}
        </span>
      </div>
      {run.error ? <p className="same-nb-error-text">{run.error}</p> : null}
      {run.remote_url && /^https?:\/\//.test(run.remote_url) ? (
        <a className="same-nb-link" href={run.remote_url} target="_blank" rel="noopener noreferrer">
          open in Kubeflow Pipelines
        </a>
      ) : null}
      <ul className="same-nb-step-runs">
        {(run.steps ?? []).map(s => (
          <StepRow key={s.id} path={model.path} run={run} step={s} actions={actions} />
        ))}
      </ul>
      {run.log_tail ? (
        <details>
          <summary>run log</summary>
          <pre className="same-nb-log">{run.log_tail}</pre>
        </details>
      ) : null}
    </Section>
  );
}

function Runs({ model, actions }: Props) {
  const last = Math.min(model.offset + PAGE_SIZE, model.total);
  const extra = (
    <span>
      <button
        className="same-nb-link"
        title="Open the runs table (compare runs)"
        onClick={() => actions.execute(COMMANDS.runsView, { path: model.path })}
      >
        table
      </button>
      <button className="same-nb-link" title="Refresh" onClick={() => void model.refreshRuns()}>
        ↻
      </button>
    </span>
  );
  return (
    <Section title={`Runs (${model.total})`} extra={extra}>
      {model.runsError ? <p className="same-nb-error-text">{model.runsError}</p> : null}
      {model.runsNotes.map((note, i) => (
        <p key={i} className="same-nb-dim">
          {note}
        </p>
      ))}
      {!model.runs.length && !model.runsError ? <p className="same-nb-dim">No runs yet.</p> : null}
      <table className="same-nb-runs">
        <tbody>
          {model.runs.map(r => (
            <tr
              key={r.id}
              data-run-id={r.id}
              className={`same-nb-clickable ${model.selected?.id === r.id ? 'same-nb-selected' : ''}`}
              onClick={() => void model.select(r.id)}
            >
              <td>{`#${r.id}`}</td>
              <td>
                <Status status={r.status} />
              </td>
              <td className="same-nb-dim">{new Date(r.created_at).toLocaleTimeString()}</td>
              <td className="same-nb-dim">{seconds(r.duration_s)}</td>
            </tr>
          ))}
        </tbody>
      </table>
      {model.total > PAGE_SIZE ? (
        <div className="same-nb-pager">
          <button className="same-nb-link" disabled={model.offset === 0} onClick={() => model.page(-1)}>
            ‹ newer
          </button>
          <span className="same-nb-dim">{`${model.offset + 1}–${last} of ${model.total}`}</span>
          <button className="same-nb-link" disabled={last >= model.total} onClick={() => model.page(1)}>
            older ›
          </button>
        </div>
      ) : null}
    </Section>
  );
}

function Panel({ model, actions }: Props) {
  if (!model.panel) {
    return <p className="same-nb-empty">Open a notebook to see its pipeline.</p>;
  }
  const inspection = model.inspection;
  const path = model.path;
  return (
    <div className="same-nb-content">
      <div className="same-nb-title">
        <span className="same-nb-notebook" title={path}>
          {path.split('/').pop()}
        </span>
        {model.inspecting ? <span className="same-nb-dim same-nb-analyzing" title="Analyzing">…</span> : null}
        <button
          className="same-nb-link same-nb-reanalyze"
          title="Analyze again (reloads an unmodified notebook from disk)"
          onClick={() => void model.inspect()}
        >
          ↻
        </button>
      </div>
      <div className="same-nb-views">
        <button
          className="same-nb-link same-nb-open-pipeline"
          title="Open the Pipeline view in the main area"
          onClick={() => actions.execute(COMMANDS.pipelineView, { path, runId: model.selected?.id })}
        >
          Pipeline view
        </button>
        <button
          className="same-nb-link same-nb-open-runs"
          title="Open the runs table in the main area"
          onClick={() => actions.execute(COMMANDS.runsView, { path })}
        >
          Runs table
        </button>
        {model.selected ? (
          <button
            className="same-nb-link same-nb-open-lineage"
            title="Open the lineage of the current run in the main area"
            onClick={() => actions.execute(COMMANDS.lineageView, { path, runId: model.selected?.id })}
          >
            Lineage
          </button>
        ) : null}
      </div>
      <AnalysisState model={model} actions={actions} />
      {inspection ? <RunForm model={model} /> : null}
      {inspection ? (
        <SweepForm
          model={model}
          onStarted={s => actions.execute(COMMANDS.sweepView, { path: s.path || path, sweepId: s.sweep_id, expected: s.runs })}
        />
      ) : null}
      <CurrentRun model={model} actions={actions} />
      {inspection ? <Diagnostics model={model} actions={actions} /> : null}
      {inspection ? <Steps model={model} actions={actions} inspection={inspection} /> : null}
      <Runs model={model} actions={actions} />
      <Lineage model={model} />
      <Metrics model={model} />
    </div>
  );
}

export class PipelinesSidebar extends ReactWidget {
  constructor(
    readonly model: SidebarModel,
    private _actions: IActions
  ) {
    super();
    this.addClass('same-nb-sidebar');
  }

  protected onAfterShow(msg: Message): void {
    super.onAfterShow(msg);
    this.model.setVisible(true);
  }

  protected onAfterHide(msg: Message): void {
    super.onAfterHide(msg);
    this.model.setVisible(false);
  }

  render(): JSX.Element {
    return (
      <UseSignal signal={this.model.changed}>
        {() => <Panel model={this.model} actions={this._actions} />}
      </UseSignal>
    );
  }
}
