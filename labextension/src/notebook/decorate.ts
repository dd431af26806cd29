// The pipeline drawn in the notebook: a coloured gutter stripe on every cell of a step, a badge on
// the cell where each step begins, and the analysis' problems on the cell (and line) they name.
import { Cell } from '@jupyterlab/cells';
import { NotebookPanel } from '@jupyterlab/notebook';
import { RangeSetBuilder, StateEffect, StateField } from '@codemirror/state';
import { Decoration, DecorationSet, EditorView } from '@codemirror/view';

import { IDiagnostic, IStep } from '../api';
import { IAnalysisError, NotebookAnalysis, problems } from './analysis';
import { stepColor } from './colors';
import { stepTagOf, tagsOf } from './tags';

const IN_STEP = 'same-nb-in-step';
const BADGE = 'same-nb-step-badge';
const MARKS = 'same-nb-cell-problems';

interface ILineMark {
  line: number;
  severity: string;
}

const setLines = StateEffect.define<ILineMark[]>();

const linesField = StateField.define<DecorationSet>({
  create: () => Decoration.none,
  update(decorations, tr) {
    decorations = decorations.map(tr.changes);
    for (const effect of tr.effects) {
      if (effect.is(setLines)) {
        const builder = new RangeSetBuilder<Decoration>();
        const seen = new Set<number>();
        for (const mark of [...effect.value].sort((a, b) => a.line - b.line)) {
          if (mark.line < 1 || mark.line > tr.state.doc.lines || seen.has(mark.line)) {
            continue;
          }
          seen.add(mark.line);
          const line = tr.state.doc.line(mark.line);
          builder.add(
            line.from,
            line.from,
            Decoration.line({ class: `same-nb-problem-line same-nb-problem-line-${mark.severity}` })
          );
        }
        decorations = builder.finish();
      }
    }
    return decorations;
  },
  provide: field => EditorView.decorations.from(field)
});

/** Highlight lines in a cell's CodeMirror 6 editor (no-op if the editor is not there yet). */
function markLines(cell: Cell, marks: ILineMark[]): void {
  const view = (cell.editor as any)?.editor as EditorView | undefined;
  if (!view || !(view instanceof EditorView)) {
    return;
  }
  try {
    if (view.state.field(linesField, false) === undefined) {
      if (!marks.length) {
        return;
      }
      view.dispatch({ effects: StateEffect.appendConfig.of(linesField) });
    }
    view.dispatch({ effects: setLines.of(marks) });
  } catch (error) {
    console.warn('same-nb: cannot mark lines', error);
  }
}

export interface IJump {
  (cellId: string | null, cell: number | null, line: number | null): void;
}

interface IProblem {
  severity: string;
  message: string;
  line: number | null;
}

/** Keeps one notebook's cells in step with its analysis. */
export class NotebookDecorations {
  private _disposed = false;

  constructor(
    readonly panel: NotebookPanel,
    readonly analysis: NotebookAnalysis,
    private _jump: IJump
  ) {
    analysis.changed.connect(this.update, this);
    void panel.context.ready.then(() => {
      panel.content.model?.cells.changed.connect(this._later, this);
    });
    // Cells outside the viewport get their editor late: mark their lines when they appear.
    panel.content.cellInViewportChanged.connect(this._later, this);
    panel.disposed.connect(() => this.dispose());
  }

  private _frame: number | null = null;

  private _later(): void {
    if (this._frame === null) {
      this._frame = window.requestAnimationFrame(() => {
        this._frame = null;
        this.update();
      });
    }
  }

  update(): void {
    if (this._disposed) {
      return;
    }
    const analysis = this.analysis;
    const inspection = analysis.inspection;
    const stepOf = new Map<string, IStep>();
    const firstOf = new Map<string, string>(); // step name → id of the cell the badge goes on
    const cellsOf = new Map<string, number>();
    if (inspection) {
      for (const step of inspection.pipeline.steps) {
        for (const ref of step.cells) {
          if (!stepOf.has(ref.id)) {
            stepOf.set(ref.id, step);
          }
        }
        cellsOf.set(step.name, step.cells.length);
      }
    }
    const byCell = new Map<string, IProblem[]>();
    const byNumber = new Map<number, IProblem[]>();
    const add = (d: { cell_id: string | null; cell: number | null; severity: string; message: string; line: number | null }) => {
      const problem = { severity: d.severity, message: d.message, line: d.line };
      if (d.cell_id) {
        byCell.set(d.cell_id, [...(byCell.get(d.cell_id) ?? []), problem]);
      } else if (d.cell !== null) {
        byNumber.set(d.cell, [...(byNumber.get(d.cell) ?? []), problem]);
      }
    };
    problems(inspection).forEach((d: IDiagnostic) => add(d));
    const error: IAnalysisError | null = analysis.error;
    if (error) {
      add({ ...error, severity: 'error' });
    }
    analysis.runErrors.forEach(e => add({ ...e, severity: 'error' }));
    const after = new Map<string, string[]>();
    for (const edge of inspection?.pipeline.edges ?? []) {
      after.set(edge.dst, [...(after.get(edge.dst) ?? []), edge.src]);
    }

    const widgets = this.panel.content.widgets;
    // The badge goes on the cell carrying the step's tag, else on the step's first cell.
    widgets.forEach(cell => {
      const step = stepOf.get(cell.model.id);
      const tagged = stepTagOf(tagsOf(cell.model));
      if (step && tagged === step.name) {
        firstOf.set(step.name, cell.model.id);
      }
    });
    widgets.forEach(cell => {
      const step = stepOf.get(cell.model.id);
      if (step && !firstOf.has(step.name)) {
        firstOf.set(step.name, cell.model.id);
      }
    });

    widgets.forEach((cell, index) => {
      const node = cell.node;
      const step = stepOf.get(cell.model.id);
      if (step) {
        node.classList.add(IN_STEP);
        node.style.setProperty('--same-nb-step-color', stepColor(step.name));
        node.dataset.sameNbStep = step.name;
      } else {
        node.classList.remove(IN_STEP);
        node.style.removeProperty('--same-nb-step-color');
        delete node.dataset.sameNbStep;
      }
      const first = step && firstOf.get(step.name) === cell.model.id;
      let badge = node.querySelector<HTMLElement>(`:scope > .${BADGE}`);
      if (first && step) {
        if (!badge) {
          badge = document.createElement('div');
          badge.className = BADGE;
        }
        if (node.firstChild !== badge) {
          // (again after a lazily rendered cell built its children around it)
          node.insertBefore(badge, node.firstChild);
        }
        const deps = after.get(step.name) ?? [];
        const text = `step ${step.name}`;
        const detail = deps.length ? `after ${deps.join(', ')}` : '';
        const pill = badge.querySelector<HTMLElement>('.same-nb-step-pill') ?? document.createElement('span');
        pill.className = 'same-nb-step-pill';
        pill.textContent = text;
        pill.style.background = stepColor(step.name);
        const dim = badge.querySelector<HTMLElement>('.same-nb-step-after') ?? document.createElement('span');
        dim.className = 'same-nb-step-after';
        dim.textContent = detail;
        if (!pill.parentElement) {
          badge.appendChild(pill);
          badge.appendChild(dim);
        }
        badge.title = `Pipeline step "${step.name}" starts here (${cellsOf.get(step.name)} cell${cellsOf.get(step.name) === 1 ? '' : 's'})`;
        badge.dataset.step = step.name;
      } else if (badge) {
        badge.remove();
      }

      const found = [...(byCell.get(cell.model.id) ?? []), ...(byNumber.get(index + 1) ?? [])];
      let marks = node.querySelector<HTMLElement>(`:scope > .${MARKS}`);
      if (found.length) {
        if (!marks) {
          marks = document.createElement('div');
          marks.className = MARKS;
        }
        const input = node.querySelector(':scope > .jp-Cell-inputWrapper');
        if (!input || input.nextSibling !== marks) {
          node.insertBefore(marks, input ? input.nextSibling : null);
        }
        marks.replaceChildren(
          ...found.map(p => {
            const row = document.createElement('div');
            row.className = `same-nb-cell-problem same-nb-cell-problem-${p.severity}`;
            row.textContent = `${p.severity === 'error' ? '✖' : '⚠'} ${p.line ? `line ${p.line}: ` : ''}${p.message}`;
            row.title = p.line ? `Go to line ${p.line}` : 'Go to the cell';
            row.onclick = () => this._jump(cell.model.id, index + 1, p.line);
            return row;
          })
        );
      } else if (marks) {
        marks.remove();
      }
      if (cell.model.type === 'code') {
        markLines(
          cell,
          found.filter(p => p.line !== null).map(p => ({ line: p.line as number, severity: p.severity }))
        );
      }
    });
  }

  dispose(): void {
    if (this._disposed) {
      return;
    }
    this._disposed = true;
    this.analysis.changed.disconnect(this.update, this);
  }
}
