// The main-area views: Pipeline (live DAG), Runs (table and metric chart), Compare, Lineage.
// One widget per notebook and kind, reused (and pointed at the new arguments) when already open.
import { JupyterFrontEnd } from '@jupyterlab/application';
import { MainAreaWidget, ReactWidget, showErrorMessage } from '@jupyterlab/apputils';
import { PathExt } from '@jupyterlab/coreutils';
import * as React from 'react';

import { COMMANDS, IViewContext } from '../commands';
import { VisibleContext } from './common';
import { CompareView } from './compare';
import { ILineageArgs, LineageView } from './lineage';
import { IPipelineArgs, PipelineView } from './pipeline';
import { RunsView } from './runs';
import { ISweepArgs, SweepView } from './sweep';

// The prebuilt extension loads style/index.js (base.css only): the views bring their own sheet.
import '../../style/views.css';

type Kind = 'pipeline' | 'runs' | 'compare' | 'lineage' | 'sweep';

const TITLES: Record<Kind, string> = {
  pipeline: 'Pipeline',
  runs: 'Runs',
  compare: 'Compare',
  lineage: 'Lineage',
  sweep: 'Sweep'
};

/** The React content of a view; `setArgs` re-renders it with new arguments (a reused widget). */
export class ViewContent extends ReactWidget {
  constructor(
    readonly kind: Kind,
    private _args: Record<string, any>,
    private _render: (args: Record<string, any>) => JSX.Element
  ) {
    super();
    this.addClass('same-nb-v-widget');
    this.addClass(`same-nb-v-widget-${kind}`);
  }

  get args(): Record<string, any> {
    return this._args;
  }

  setArgs(args: Record<string, any>): void {
    this._args = args;
    this.update();
  }

  render(): JSX.Element {
    return React.createElement(
      VisibleContext.Provider,
      { value: () => this.isVisible && !document.hidden },
      this._render(this._args)
    );
  }
}

function idFor(kind: Kind, path: string): string {
  let h = 0;
  for (let i = 0; i < path.length; i++) {
    h = (Math.imul(31, h) + path.charCodeAt(i)) | 0;
  }
  return `same-nb-${kind}-${(h >>> 0).toString(36)}`;
}

function runIds(raw: unknown): number[] {
  const list = Array.isArray(raw) ? raw : typeof raw === 'string' ? raw.split(',') : [];
  return [...new Set(list.map(Number).filter(n => Number.isInteger(n) && n > 0))];
}

/** Register the view commands (see COMMANDS in ../commands). */
export function registerViews(app: JupyterFrontEnd, context: IViewContext): void {
  const open = new Map<string, MainAreaWidget<ViewContent>>();
  let lastNotebook = '';

  const currentPath = (): string => {
    const widget = app.shell.currentWidget as any;
    const path: unknown = widget?.context?.path;
    if (typeof path === 'string' && path.endsWith('.ipynb') && !path.includes(':')) {
      lastNotebook = path;
    }
    return lastNotebook;
  };
  const shell = app.shell as any;
  if (shell.currentChanged && typeof shell.currentChanged.connect === 'function') {
    shell.currentChanged.connect(() => void currentPath());
  }

  const pathOf = (args: Record<string, any>): string | null => {
    const path = typeof args.path === 'string' && args.path ? args.path : currentPath();
    if (!path) {
      void showErrorMessage('Open a notebook first', 'The views show the runs of a notebook: open one, then try again.');
      return null;
    }
    return path;
  };

  const show = (kind: Kind, path: string, args: Record<string, any>, title: string) => {
    const key = `${kind}\u0000${path}`;
    let widget = open.get(key);
    if (widget && !widget.isDisposed) {
      widget.content.setArgs(args);
    } else {
      const content = new ViewContent(kind, args, a => renderView(kind, a));
      widget = new MainAreaWidget({ content });
      widget.id = idFor(kind, path);
      widget.addClass('same-nb-v-main-widget');
      widget.title.closable = true;
      open.set(key, widget);
      widget.disposed.connect(() => {
        if (open.get(key) === widget) {
          open.delete(key);
        }
      });
      app.shell.add(widget, 'main');
    }
    widget.title.label = title;
    widget.title.caption = `${TITLES[kind]} of ${path}`;
    app.shell.activateById(widget.id);
    return widget;
  };

  const renderView = (kind: Kind, args: Record<string, any>): JSX.Element => {
    const path: string = args.path;
    if (kind === 'pipeline') {
      return React.createElement(PipelineView, { args: args as IPipelineArgs, context });
    }
    if (kind === 'runs') {
      return React.createElement(RunsView, {
        path,
        actions: {
          compare: (runs: number[]) => void app.commands.execute(COMMANDS.compare, { path, runs }),
          pipeline: (runId: number) => void app.commands.execute(COMMANDS.pipelineView, { path, runId }),
          lineage: (runId: number) => void app.commands.execute(COMMANDS.lineageView, { path, runId }),
          sweep: (sweepId: string) => void app.commands.execute(COMMANDS.sweepView, { path, sweepId })
        }
      });
    }
    if (kind === 'sweep') {
      return React.createElement(SweepView, {
        key: args.sweepId,
        args: args as ISweepArgs,
        actions: {
          compare: (runs: number[]) => void app.commands.execute(COMMANDS.compare, { path, runs }),
          pipeline: (runId: number) => void app.commands.execute(COMMANDS.pipelineView, { path, runId })
        }
      });
    }
    if (kind === 'compare') {
      return React.createElement(CompareView, {
        key: (args.runs as number[]).join(','),
        path,
        runs: args.runs,
        onOpenRun: (runId: number) => void app.commands.execute(COMMANDS.pipelineView, { path, runId })
      });
    }
    return React.createElement(LineageView, { args: args as ILineageArgs });
  };

  const name = (path: string) => PathExt.basename(path);

  app.commands.addCommand(COMMANDS.pipelineView, {
    label: 'Open the Pipeline view (step graph with live status)',
    caption: 'The notebook\'s steps as a graph, coloured by the status of the latest (or a chosen) run',
    execute: args => {
      const path = pathOf(args);
      if (!path) {
        return;
      }
      const runId = args.runId === undefined || args.runId === null ? undefined : Number(args.runId);
      return show('pipeline', path, { path, runId, at: Date.now() }, `Pipeline — ${name(path)}`);
    }
  });

  app.commands.addCommand(COMMANDS.runsView, {
    label: 'Open the runs table (compare runs, metrics chart)',
    caption: 'Every run of the notebook: parameters, metrics, names and notes; compare runs',
    execute: args => {
      const path = pathOf(args);
      if (!path) {
        return;
      }
      return show('runs', path, { path }, `Runs — ${name(path)}`);
    }
  });

  app.commands.addCommand(COMMANDS.compare, {
    label: args => (runIds(args.runs).length >= 2 ? `Compare runs ${runIds(args.runs).map(i => `#${i}`).join(', ')}` : 'Compare runs…'),
    caption: 'Two or more runs side by side: parameters, code, packages, inputs, metrics, outputs',
    execute: args => {
      const path = pathOf(args);
      if (!path) {
        return;
      }
      const runs = runIds(args.runs);
      if (runs.length < 2) {
        // From the palette: pick the runs in the runs table.
        return app.commands.execute(COMMANDS.runsView, { path });
      }
      return show('compare', path, { path, runs }, `Compare ${runs.map(i => `#${i}`).join(' ')} — ${name(path)}`);
    }
  });

  app.commands.addCommand(COMMANDS.sweepView, {
    label: 'Open a sweep\'s table (swept values, metrics, best run)',
    caption: 'The runs of one parameter sweep side by side, the best one marked by a metric',
    execute: args => {
      const path = pathOf(args);
      const sweepId = typeof args.sweepId === 'string' ? args.sweepId : '';
      if (!path) {
        return;
      }
      if (!sweepId) {
        // From the palette: the runs table has a sweep column to pick one from.
        return app.commands.execute(COMMANDS.runsView, { path });
      }
      const expected = Number.isInteger(args.expected) ? Number(args.expected) : undefined;
      return show('sweep', path, { path, sweepId, expected, at: Date.now() }, `Sweep ${sweepId} — ${name(path)}`);
    }
  });

  app.commands.addCommand(COMMANDS.lineageView, {
    label: 'Open the lineage view',
    caption: 'What a run read and wrote, or an artifact traced upstream across runs',
    execute: args => {
      const path = pathOf(args);
      if (!path) {
        return;
      }
      const lineage: ILineageArgs = { path };
      if (typeof args.sha256 === 'string' && args.sha256) {
        lineage.sha256 = args.sha256;
        lineage.label = typeof args.label === 'string' ? args.label : undefined;
      } else if (args.runId !== undefined && args.runId !== null) {
        lineage.runId = Number(args.runId);
      }
      return show('lineage', path, { ...lineage, at: Date.now() }, `Lineage — ${name(path)}`);
    }
  });
}
