// The `same-nb:debug-step` command (args: path, runId, step): the sidebar's button, the palette and
// the other views all go through it. From the palette, without arguments, it debugs the sidebar's
// current run: its failed step, or the one the user picks.
import { JupyterFrontEnd } from '@jupyterlab/application';
import { ICommandPalette, InputDialog, showErrorMessage } from '@jupyterlab/apputils';

import { api } from '../api';
import { COMMANDS } from '../commands';
import { SidebarModel } from '../model';
import { debugStep, IDebugContext } from './run';
import { canDebug } from './view';

async function pickStep(path: string, runId: number): Promise<string | null> {
  const run = await api.run(path, runId);
  const steps = (run.steps ?? []).filter(s => canDebug(s.status, s.cache_hit));
  if (!steps.length) {
    throw new Error(`Run #${runId} has no failed or computed step to debug.`);
  }
  const failed = steps.filter(s => s.status === 'failed');
  if (failed.length === 1) {
    return failed[0].step_name;
  }
  const answer = await InputDialog.getItem({
    title: `Debug a step of run #${runId}`,
    label: 'Step to load into the notebook’s kernel',
    items: steps.map(s => s.step_name),
    current: failed[0]?.step_name ?? steps[0].step_name
  });
  return answer.button.accept ? answer.value : null;
}

export function registerDebugCommand(
  app: JupyterFrontEnd,
  model: SidebarModel,
  context: IDebugContext,
  palette: ICommandPalette | null
): void {
  app.commands.addCommand(COMMANDS.debugStep, {
    label: args => (args.step ? `Debug step “${args.step}” in the notebook` : 'Debug a failed step in the notebook'),
    caption:
      'Bind a recorded step’s inputs and parameters in the notebook’s kernel (the notebook is not modified)',
    describedBy: {
      args: {
        type: 'object',
        properties: {
          path: { type: 'string', description: 'the notebook (server path)' },
          runId: { type: 'number', description: 'the run number' },
          step: { type: 'string', description: 'the step name' }
        }
      }
    },
    execute: async args => {
      const path = typeof args.path === 'string' && args.path ? args.path : model.path;
      const given = Number(args.runId);
      const runId = Number.isInteger(given) && given > 0 ? given : path === model.path ? model.selected?.id : undefined;
      if (!path || !runId) {
        await showErrorMessage(
          'Debug in notebook',
          'Open a notebook and pick one of its runs in the Pipelines sidebar first (or pass path, runId and step).'
        );
        return null;
      }
      let step = typeof args.step === 'string' && args.step ? args.step : null;
      if (!step) {
        try {
          step = await pickStep(path, runId);
        } catch (error) {
          await showErrorMessage('Debug in notebook', error instanceof Error ? error.message : String(error));
          return null;
        }
        if (!step) {
          return null;
        }
      }
      return debugStep(context, path, runId, step, args.notify !== false);
    }
  });
  palette?.addItem({ command: COMMANDS.debugStep, category: 'Pipelines (same-nb)' });
}
