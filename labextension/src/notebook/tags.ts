// The `step:NAME` and `after:NAME` tags of the open notebook: read and edited in its model, so
// the analysis (from the unsaved model) shows the change at once; nothing is saved.
import { ICellModel } from '@jupyterlab/cells';
import { NotebookPanel } from '@jupyterlab/notebook';

export const STEP_NAME = /^[A-Za-z_][A-Za-z0-9_-]{0,62}$/;
const STEP_TAG = /^(step|block):/;
const AFTER_TAG = /^(after|prev):/;

export function tagsOf(cell: ICellModel): string[] {
  const tags = cell.getMetadata('tags');
  return Array.isArray(tags) ? (tags as string[]).filter(t => typeof t === 'string') : [];
}

/** Put `step:NAME` on the cell, replacing any step tag it had. */
export function withStepTag(tags: string[], name: string): string[] {
  return [...tags.filter(t => !STEP_TAG.test(t)), `step:${name}`];
}

/** The step a cell's tags start, if any. */
export function stepTagOf(tags: string[]): string | null {
  const tag = tags.find(t => STEP_TAG.test(t));
  return tag ? tag.slice(tag.indexOf(':') + 1) : null;
}

/** Whether any cell of the notebook starts a step. */
export function hasStepTags(panel: NotebookPanel): boolean {
  const cells = panel.context.model.cells;
  for (let i = 0; i < cells.length; i++) {
    if (stepTagOf(tagsOf(cells.get(i))) !== null) {
      return true;
    }
  }
  return false;
}

/** Why a new step name is refused, in plain words, or null when it is fine. */
export function stepNameProblem(name: string, taken: string[]): string | null {
  if (!name) {
    return 'Type a name for the step.';
  }
  if (!STEP_NAME.test(name)) {
    return `"${name}" is not a valid step name: use letters, digits, '_' or '-', start with a letter or '_', at most 63 characters.`;
  }
  if (taken.includes(name)) {
    return `A step named "${name}" already exists.`;
  }
  return null;
}

function cellsOf(panel: NotebookPanel): ICellModel[] {
  const cells = panel.context.model.cells;
  const out: ICellModel[] = [];
  for (let i = 0; i < cells.length; i++) {
    out.push(cells.get(i));
  }
  return out;
}

/** The cell that starts step `name` (its `step:` tag), else the given fallback cell id. */
export function stepCell(panel: NotebookPanel, name: string, fallbackId?: string | null): ICellModel | null {
  const cells = cellsOf(panel);
  return (
    cells.find(c => stepTagOf(tagsOf(c)) === name) ??
    (fallbackId ? cells.find(c => c.id === fallbackId) ?? null : null)
  );
}

/** Rename a step: its `step:` tag, and every `after:OLD` tag that names it. */
export function renameStep(panel: NotebookPanel, oldName: string, newName: string, fallbackId?: string | null): boolean {
  const first = stepCell(panel, oldName, fallbackId);
  if (!first) {
    return false;
  }
  first.setMetadata('tags', withStepTag(tagsOf(first), newName));
  for (const cell of cellsOf(panel)) {
    const tags = tagsOf(cell);
    if (tags.some(t => AFTER_TAG.test(t) && t.slice(t.indexOf(':') + 1) === oldName)) {
      cell.setMetadata(
        'tags',
        tags.map(t => (AFTER_TAG.test(t) && t.slice(t.indexOf(':') + 1) === oldName ? `after:${newName}` : t))
      );
    }
  }
  return true;
}

/** The explicit `after:` dependencies written on a step's first cell. */
export function afterTags(panel: NotebookPanel, name: string, fallbackId?: string | null): string[] {
  const first = stepCell(panel, name, fallbackId);
  return first
    ? tagsOf(first)
        .filter(t => AFTER_TAG.test(t))
        .map(t => t.slice(t.indexOf(':') + 1))
    : [];
}

/** Replace the `after:` tags on a step's first cell. */
export function setAfter(panel: NotebookPanel, name: string, after: string[], fallbackId?: string | null): boolean {
  const first = stepCell(panel, name, fallbackId);
  if (!first) {
    return false;
  }
  const tags = tagsOf(first).filter(t => !AFTER_TAG.test(t));
  first.setMetadata('tags', [...tags, ...after.map(a => `after:${a}`)]);
  return true;
}
