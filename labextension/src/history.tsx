// Views of a notebook's history: the lineage graph of a run (or an artifact's upstream trace) and
// a metric across runs. Strings are rendered as React text only.
import * as React from 'react';

import { IGraph } from './api';
import { GraphView, IGraphNode, LineChart } from './graph';
import { SidebarModel } from './model';
import { Section } from './section';

function lineageNodes(graph: IGraph, runId: number | undefined): IGraphNode[] {
  return graph.nodes.map(n => {
    if (n.kind === 'step_run') {
      const own = n.data.run_id === runId;
      return {
        id: n.id,
        kind: n.kind,
        status: n.data.status,
        label: own ? n.data.step_name : n.label,
        title: `${n.label}: ${n.data.status}${n.data.cache_hit ? ' (cache hit)' : ''}`
      };
    }
    const what = [n.data.role, n.data.type, n.data.size === null ? '' : `${n.data.size} bytes`]
      .filter(Boolean)
      .join(', ');
    return {
      id: n.id,
      kind: n.kind,
      label: n.label,
      status: n.data.modified ? 'modified' : undefined,
      title:
        `${n.data.names.join(', ')} (${what}), sha256 ${n.data.sha256.slice(0, 12)}…` +
        (n.data.modified ? ` — ${n.data.modified}` : '') +
        ' — click to trace upstream'
    };
  });
}

export function Lineage({ model }: { model: SidebarModel }) {
  const graph = model.lineage;
  if (!graph && !model.lineageError) {
    return null;
  }
  const title = model.tracing ? `Lineage of ${model.tracing}` : `Lineage of run #${model.selected?.id}`;
  const extra = (
    <span>
      {model.tracing ? (
        <button className="same-nb-link" onClick={() => void model.showLineage()}>
          whole run
        </button>
      ) : null}
      <button className="same-nb-link" onClick={() => model.closeLineage()}>
        close
      </button>
    </span>
  );
  return (
    <Section title={title} extra={extra}>
      {model.lineageError ? <p className="same-nb-error-text">{model.lineageError}</p> : null}
      {graph ? (
        <div className="same-nb-graph-box same-nb-lineage">
          <GraphView
            nodes={lineageNodes(graph, model.selected?.id)}
            edges={graph.edges.map(e => ({ source: e.source, target: e.target, label: e.name }))}
            selected={graph.root}
            ariaLabel="Lineage graph"
            onNodeClick={node => {
              const data = graph.nodes.find(n => n.id === node.id)!.data;
              if (node.kind === 'artifact') {
                void model.trace(data.sha256, node.label);
              } else if (data.run_id !== model.selected?.id) {
                void model.select(data.run_id);
              }
            }}
          />
          {graph.truncated ? <p className="same-nb-dim">Truncated: the graph is large.</p> : null}
          <p className="same-nb-dim">Rectangles are step runs, rounded boxes are artifacts.</p>
        </div>
      ) : null}
    </Section>
  );
}

export function Metrics({ model }: { model: SidebarModel }) {
  const names = [...new Set(model.metrics.map(m => m.name))];
  if (!names.length || !model.metric) {
    return null;
  }
  const byRun = new Map<number, number>();
  for (const m of model.metrics) {
    if (m.name === model.metric) {
      byRun.set(m.run_id, m.value); // rows are ordered: the last value of a run wins
    }
  }
  const points = [...byRun.entries()].sort((a, b) => a[0] - b[0]).map(([id, y]) => ({ x: `#${id}`, y }));
  return (
    <Section title="Metrics across runs">
      <select
        className="jp-mod-styled same-nb-metric"
        value={model.metric}
        onChange={e => {
          model.metric = e.target.value;
          model.emit();
        }}
      >
        {names.map(n => (
          <option key={n} value={n}>
            {n}
          </option>
        ))}
      </select>
      <LineChart points={points} ariaLabel={`${model.metric} across runs`} yLabel={model.metric} />
    </Section>
  );
}
