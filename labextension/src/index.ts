// same-nb's JupyterLab extension: the Pipelines sidebar, its commands and toolbar button.
import { JupyterFrontEnd, JupyterFrontEndPlugin } from '@jupyterlab/application';
import {
  ICommandPalette,
  InputDialog,
  showErrorMessage
} from '@jupyterlab/apputils';
import { IDocumentManager } from '@jupyterlab/docmanager';
import { INotebookTracker, NotebookPanel } from '@jupyterlab/notebook';
import { ISettingRegistry } from '@jupyterlab/settingregistry';
import { LabIcon, ToolbarButton } from '@jupyterlab/ui-components';

import { api } from './api';
import { DRIVE_NAME, drivePath, ExecutedNotebookDrive } from './drive';
import { ISettings, SidebarModel } from './model';
import { PipelinesSidebar } from './sidebar';

const PLUGIN_ID = 'same-nb:plugin';
export const SIDEBAR_ID = 'same-nb-sidebar';
export const STEP_NAME = /^[A-Za-z_][A-Za-z0-9_-]{0,62}$/;

const COMMANDS = {
  run: 'same-nb:run-as-pipeline',
  startStep: 'same-nb:start-step-here',
  open: 'same-nb:open-sidebar'
};

const pipelineIcon = new LabIcon({
  name: 'same-nb:pipeline',
  svgstr:
    '<svg xmlns="http://www.w3.org/2000/svg" width="16" height="16" viewBox="0 0 16 16">' +
    '<g class="jp-icon3" fill="#616161">' +
    '<rect x="5.5" y="1" width="5" height="3.5" rx="1"/>' +
    '<rect x="1" y="11.5" width="5" height="3.5" rx="1"/>' +
    '<rect x="10" y="11.5" width="5" height="3.5" rx="1"/>' +
    '<path d="M7.4 4.5h1.2v2.9h3.9v4.1h-1.2V8.6H4.7v2.9H3.5V7.4h3.9z"/>' +
    '</g></svg>'
});

/** Put `step:NAME` on the cell, replacing any step tag it had. */
export function withStepTag(tags: string[], name: string): string[] {
  return [...tags.filter(t => !/^(step|block):/.test(t)), `step:${name}`];
}

const plugin: JupyterFrontEndPlugin<void> = {
  id: PLUGIN_ID,
  description: 'Pipelines sidebar for same-nb: inspect, run and trace tagged notebooks.',
  autoStart: true,
  requires: [INotebookTracker, IDocumentManager],
  optional: [ICommandPalette, ISettingRegistry],
  activate: (
    app: JupyterFrontEnd,
    tracker: INotebookTracker,
    docManager: IDocumentManager,
    palette: ICommandPalette | null,
    settingRegistry: ISettingRegistry | null
  ) => {
    app.serviceManager.contents.addDrive(new ExecutedNotebookDrive());
    const model = new SidebarModel();

    const jumpToCell = (cellId: string | null, cell: number | null, line: number | null) => {
      const panel = model.panel;
      if (!panel) {
        return;
      }
      const notebook = panel.content;
      let index = cellId ? notebook.widgets.findIndex(c => c.model.id === cellId) : -1;
      if (index < 0 && cell !== null) {
        index = cell - 1;
      }
      if (index < 0 || index >= notebook.widgets.length) {
        return;
      }
      app.shell.activateById(panel.id);
      notebook.activeCellIndex = index;
      const target = notebook.widgets[index];
      void notebook.scrollToCell(target).then(() => {
        if (line !== null && target.editor) {
          target.editor.setCursorPosition({ line: line - 1, column: 0 });
        }
      });
    };

    const openExecuted = async (runId: number, step: string) => {
      try {
        const { path } = await api.stepNotebook(model.path, runId, step);
        const widget = docManager.openOrReveal(drivePath(path));
        if (widget instanceof NotebookPanel) {
          // A record of a run: show it, but do not start a kernel for it.
          widget.sessionContext.kernelPreference = {
            ...widget.sessionContext.kernelPreference,
            shouldStart: false,
            canStart: false
          };
        }
      } catch (error) {
        void showErrorMessage('Cannot open the executed notebook', String(error));
      }
    };

    const sidebar = new PipelinesSidebar(model, { jumpToCell, openExecuted });
    sidebar.id = SIDEBAR_ID;
    sidebar.title.icon = pipelineIcon;
    sidebar.title.caption = 'Pipelines (same-nb)';
    app.shell.add(sidebar, 'left', { rank: 650 });

    const follow = () => {
      // Executed notebooks opened from a run are records, not pipelines to inspect.
      const panel = tracker.currentWidget;
      if (panel && !panel.context.path.startsWith(`${DRIVE_NAME}:`)) {
        model.setPanel(panel);
      }
    };
    tracker.currentChanged.connect(follow);
    void app.restored.then(follow);

    if (settingRegistry) {
      void settingRegistry.load(PLUGIN_ID).then(settings => {
        const apply = () => model.setSettings(settings.composite as unknown as ISettings);
        apply();
        settings.changed.connect(apply);
      });
    }

    const panelFor = (args: Record<string, unknown>): NotebookPanel | null =>
      (args.panelId ? tracker.find(p => p.id === args.panelId) : null) ?? tracker.currentWidget;

    app.commands.addCommand(COMMANDS.run, {
      label: 'Run as pipeline',
      caption: 'Run the notebook as a pipeline (same-nb): parallel steps, cached, recorded',
      icon: pipelineIcon,
      isEnabled: () => tracker.currentWidget !== null,
      execute: async args => {
        const panel = panelFor(args);
        app.shell.activateById(SIDEBAR_ID);
        await model.run(panel);
      }
    });

    app.commands.addCommand(COMMANDS.open, {
      label: 'Show the Pipelines sidebar',
      execute: () => app.shell.activateById(SIDEBAR_ID)
    });

    app.commands.addCommand(COMMANDS.startStep, {
      label: 'Start pipeline step here',
      caption: 'Tag the active cell step:NAME so a new pipeline step starts at it',
      isEnabled: () => !!tracker.activeCell,
      execute: async () => {
        const cell = tracker.activeCell;
        if (!cell) {
          return;
        }
        const current = ((cell.model.getMetadata('tags') as string[] | undefined) ?? []).slice();
        const existing = current.find(t => t.startsWith('step:'));
        const answer = await InputDialog.getText({
          title: 'Start pipeline step here',
          label: 'Step name (letters, digits, _ or -; starts with a letter or _)',
          text: existing ? existing.slice(5) : '',
          placeholder: 'train'
        });
        if (!answer.button.accept || answer.value === null) {
          return;
        }
        const name = answer.value.trim();
        if (!STEP_NAME.test(name)) {
          await showErrorMessage(
            'Invalid step name',
            `"${name}" is not a valid step name: use letters, digits, '_' or '-', start with a letter or '_', at most 63 characters.`
          );
          return;
        }
        cell.model.setMetadata('tags', withStepTag(current, name));
      }
    });

    if (palette) {
      for (const command of Object.values(COMMANDS)) {
        palette.addItem({ command, category: 'Pipelines (same-nb)' });
      }
    }

    app.docRegistry.addWidgetExtension('Notebook', {
      createNew: (panel: NotebookPanel) => {
        if (panel.context.path.startsWith(`${DRIVE_NAME}:`)) {
          return; // executed step notebooks are records, not pipelines
        }
        const button = new ToolbarButton({
          icon: pipelineIcon,
          label: 'Run as pipeline',
          tooltip: 'Run this notebook as a pipeline (same-nb)',
          className: 'same-nb-toolbar-run',
          onClick: () => void app.commands.execute(COMMANDS.run, { panelId: panel.id })
        });
        panel.toolbar.insertAfter('cellType', 'same-nb-run', button);
        return button;
      }
    });
  }
};

export default plugin;
