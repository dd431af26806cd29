// The "Pipelines" sidebar: steps and their DAG, diagnostics, parameters, target, runs, lineage.
// Strings from notebooks and runs are rendered as React text only (never as HTML).
import { ReactWidget, UseSignal } from '@jupyterlab/apputils';
import * as React from 'react';

import { ACTIVE, IDiagnostic, IInspection, IRun, IStepRun } from './api';
import { GraphView, IGraphNode } from './graph';
import { Lineage, Metrics } from './history';
import { Section } from './section';
import { PAGE_SIZE, SidebarModel } from './model';

export interface IActions {
  jumpToCell(cellId: string | null, cell: number | null, line: number | null): void;
  openExecuted(runId: number, step: string): void;
}

type Props = { model: SidebarModel; actions: IActions };

function seconds(value: number | null | undefined): string {
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

function Steps({ inspection }: { inspection: IInspection }) {
  const steps = inspection.pipeline.steps;
  const nodes: IGraphNode[] = inspection.order.map(name => ({ id: name, label: name, kind: 'step' }));
  const edges = inspection.pipeline.edges.map(e => ({
    source: e.src,
    target: e.dst,
    label: e.kind === 'after' ? 'after' : e.names.join(', ')
  }));
  return (
    <Section title={`Steps (${steps.length})`}>
      <div className="same-nb-graph-box">
        <GraphView nodes={nodes} edges={edges} ariaLabel="Step DAG" />
      </div>
      <ul className="same-nb-steps">
        {steps.map(s => (
          <li key={s.name} className="same-nb-step" data-step={s.name}>
            <span className="same-nb-step-name">{s.name}</span>
            <span className="same-nb-dim">
              {` cells ${s.cells.map(c => c.number).join(', ')}`}
            </span>
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
          </li>
        ))}
      </ul>
    </Section>
  );
}

function Diagnostics({ items, actions }: { items: IDiagnostic[]; actions: IActions }) {
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
  const params = model.inspection?.pipeline.parameters ?? [];
  const ok = model.inspection?.ok ?? false;
  return (
    <Section title="Run">
      {params.length ? (
        <div className="same-nb-params">
          {params.map(p => (
            <label key={p.name} className="same-nb-param">
              <span>{p.name}</span>
              <input
                className="jp-mod-styled"
                name={p.name}
                value={model.params[p.name] ?? ''}
                title={`${p.type}, default ${model.defaults[p.name]}`}
                onChange={e => {
                  model.params = { ...model.params, [p.name]: e.target.value };
                  model.emit();
                }}
              />
            </label>
          ))}
        </div>
      ) : (
        <p className="same-nb-dim">No parameters cell (tag a cell `parameters`).</p>
      )}
      <label className="same-nb-param">
        <span>Target</span>
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
        disabled={!ok}
        title={ok ? 'Run the notebook as a pipeline' : 'Fix the errors above first'}
        onClick={() => void model.run()}
      >
        Run as pipeline
      </button>
      {model.notice ? (
        <p className={model.notice.error ? 'same-nb-notice same-nb-error-text' : 'same-nb-notice'}>
          {model.notice.text}
        </p>
      ) : null}
    </Section>
  );
}

function Runs({ model }: { model: SidebarModel }) {
  const last = Math.min(model.offset + PAGE_SIZE, model.total);
  const extra = (
    <button className="same-nb-link" title="Refresh" onClick={() => void model.refreshRuns()}>
      ↻
    </button>
  );
  return (
    <Section title={`Runs (${model.total})`} extra={extra}>
      {model.runsError ? <p className="same-nb-error-text">{model.runsError}</p> : null}
      {model.runsNotes.map((note, i) => (
        <p key={i} className="same-nb-dim">
          {note}
        </p>
      ))}
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

function StepRow({ run, step, actions }: { run: IRun; step: IStepRun; actions: IActions }) {
  const err = step.error;
  return (
    <li className="same-nb-step-run" data-step={step.step_name}>
      <div className="same-nb-row">
        <span className="same-nb-step-name">{step.step_name}</span>
        <Status status={step.status} cached={step.cache_hit} />
        <span className="same-nb-dim">{seconds(step.duration_s)}</span>
      </div>
      {step.reason ? <div className="same-nb-dim">{step.reason}</div> : null}
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
      {step.metrics.length ? (
        <div className="same-nb-io">
          {step.metrics.map(m => `${m.name} = ${m.value}`).join(', ')}
        </div>
      ) : null}
      <div className="same-nb-row">
        {step.executed_notebook ? (
          <button className="same-nb-link" onClick={() => actions.openExecuted(run.id, step.step_name)}>
            open executed notebook
          </button>
        ) : null}
        {step.log_tail ? (
          <details>
            <summary>log</summary>
            <pre className="same-nb-log">{step.log_tail}</pre>
          </details>
        ) : null}
      </div>
    </li>
  );
}

function RunDetail({ model, actions }: Props) {
  const run = model.selected;
  if (!run) {
    return null;
  }
  const active = ACTIVE.includes(run.status);
  const extra = (
    <span>
      {active ? (
        <button className="same-nb-link" onClick={() => void model.cancel(run.id)}>
          cancel
        </button>
      ) : null}
      <button className="same-nb-link same-nb-lineage-button" onClick={() => void model.showLineage()}>
        lineage
      </button>
    </span>
  );
  return (
    <Section title={`Run #${run.id}`} extra={extra}>
      <div className="same-nb-run-summary">
        <Status status={run.status} /> <span className="same-nb-dim">{seconds(run.duration_s)}</span>{' '}
        <span className="same-nb-dim">
          {Object.entries(run.params)
            .map(([k, v]) => `${k}=${JSON.stringify(v)}`)
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
          <StepRow key={s.id} run={run} step={s} actions={actions} />
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

function Panel({ model, actions }: Props) {
  if (!model.panel) {
    return <p className="same-nb-empty">Open a notebook to see its pipeline.</p>;
  }
  const inspection = model.inspection;
  return (
    <div className="same-nb-content">
      <div className="same-nb-title">
        <span className="same-nb-notebook" title={model.path}>
          {model.path}
        </span>
        <button className="same-nb-link" title="Analyze again" onClick={() => void model.inspect()}>
          ↻
        </button>
      </div>
      {model.inspecting && !inspection ? <p className="same-nb-dim">Analyzing…</p> : null}
      {model.inspectError ? (
        <p className="same-nb-error-text same-nb-inspect-error">{model.inspectError}</p>
      ) : null}
      {inspection ? <Steps inspection={inspection} /> : null}
      {inspection ? <Diagnostics items={inspection.pipeline.diagnostics} actions={actions} /> : null}
      {inspection ? <RunForm model={model} /> : null}
      <Runs model={model} />
      <RunDetail model={model} actions={actions} />
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

  render(): JSX.Element {
    return (
      <UseSignal signal={this.model.changed}>
        {() => <Panel model={this.model} actions={this._actions} />}
      </UseSignal>
    );
  }
}
