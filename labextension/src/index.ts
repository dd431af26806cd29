// same-nb's JupyterLab extension: the Pipelines sidebar, the pipeline drawn in the notebook (step
// stripes, badges, problems), its commands, toolbar buttons and the main-area views' context.
import { JupyterFrontEnd, JupyterFrontEndPlugin } from '@jupyterlab/application';
import { Dialog, ICommandPalette, InputDialog, showDialog, showErrorMessage } from '@jupyterlab/apputils';
import { Cell } from '@jupyterlab/cells';
import { IDocumentManager } from '@jupyterlab/docmanager';
import { INotebookTracker, NotebookPanel } from '@jupyterlab/notebook';
import { ISettingRegistry } from '@jupyterlab/settingregistry';
import { LabIcon, ToolbarButton } from '@jupyterlab/ui-components';

import { api } from './api';
import { COMMANDS, IViewContext } from './commands';
import { registerDebugCommand } from './debug/command';
import { DRIVE_NAME, drivePath, ExecutedNotebookDrive } from './drive';
import { DirtyChoice, ISettings, SidebarModel } from './model';
import { analysisFor } from './notebook/analysis';
import { NotebookDecorations } from './notebook/decorate';
import { STEP_NAME, stepNameProblem, stepTagOf, tagsOf, withStepTag } from './notebook/tags';
import { PipelinesSidebar } from './sidebar';
import { registerViews } from './views';

export { STEP_NAME, withStepTag };

const PLUGIN_ID = 'same-nb:plugin';
export const SIDEBAR_ID = 'same-nb-sidebar';

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

const newStepIcon = new LabIcon({
  name: 'same-nb:new-step',
  svgstr:
    '<svg xmlns="http://www.w3.org/2000/svg" width="16" height="16" viewBox="0 0 16 16">' +
    '<g class="jp-icon3" fill="#616161">' +
    '<rect x="2" y="1" width="1.6" height="14" rx="0.5"/>' +
    '<path d="M4.6 2h9l-2.4 3.2 2.4 3.3h-9z"/>' +
    '</g></svg>'
});

const isExecuted = (path: string) => path.startsWith(`${DRIVE_NAME}:`);

const plugin: JupyterFrontEndPlugin<void> = {
  id: PLUGIN_ID,
  description: 'Pipelines for same-nb: the pipeline in the notebook, a sidebar to run and trace it.',
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

    /** Show a cell of a notebook (by id, else 1-based number) with the cursor on `line`. */
    const showCell = (panel: NotebookPanel, cellId: string | null, cell: number | null, line: number | null) => {
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
          // The cursor waits on the line (Enter edits there); the notebook stays in command mode.
          target.editor.setCursorPosition({ line: line - 1, column: 0 });
        }
      });
    };

    const jumpToCell = (cellId: string | null, cell: number | null, line: number | null) => {
      if (model.panel) {
        showCell(model.panel, cellId, cell, line);
      }
    };

    const openExecutedOf = async (notebookPath: string, runId: number, step: string) => {
      try {
        const { path } = await api.stepNotebook(notebookPath, runId, step);
        const widget = docManager.openOrReveal(drivePath(path, runId));
        if (widget instanceof NotebookPanel) {
          // A record of a run: shown read-only, titled with its run, and no kernel is started for it.
          widget.sessionContext.kernelPreference = {
            ...widget.sessionContext.kernelPreference,
            shouldStart: false,
            canStart: false,
            autoStartDefault: false
          };
          widget.title.caption = `Step "${step}" as executed by run #${runId} (read-only record)\n${path}`;
          widget.addClass('same-nb-executed');
          void widget.context.ready.then(() => {
            widget.context.model.readOnly = true; // (cells' own readOnly would write metadata: dirty)
          });
        }
      } catch (error) {
        void showErrorMessage('Cannot open the executed notebook', String(error));
      }
    };

    const execute = (command: string, args: Record<string, any>) => {
      if (!app.commands.hasCommand(command)) {
        void showErrorMessage('Not available', `This view is not available in this JupyterLab (${command}).`);
        return;
      }
      void app.commands.execute(command, args).catch(error => {
        void showErrorMessage('Cannot open the view', String(error));
      });
    };

    const sidebar = new PipelinesSidebar(model, {
      jumpToCell,
      openExecuted: (runId, step) => void openExecutedOf(model.path, runId, step),
      execute
    });
    sidebar.id = SIDEBAR_ID;
    sidebar.title.icon = pipelineIcon;
    sidebar.title.caption = 'Pipelines (same-nb)';
    app.shell.add(sidebar, 'left', { rank: 650 });

    model.hooks = {
      askDirty: async (panel: NotebookPanel): Promise<DirtyChoice> => {
        const result = await showDialog({
          title: 'Unsaved changes',
          body:
            `${panel.context.localPath.split('/').pop()} has changes that are not saved. ` +
            'A pipeline runs the notebook as it is saved on disk.',
          buttons: [
            Dialog.cancelButton(),
            Dialog.okButton({ label: 'Run the saved version', displayType: 'default' }),
            Dialog.okButton({ label: 'Save and run' })
          ]
        });
        if (!result.button.accept) {
          return null;
        }
        return result.button.label === 'Save and run' ? 'save' : 'saved';
      },
      saved: async (path: string) => {
        const file = await app.serviceManager.contents.get(path, { content: true, type: 'notebook' });
        return file.content;
      }
    };

    const follow = () => {
      // Executed notebooks opened from a run are records, not pipelines to inspect.
      const panel = tracker.currentWidget;
      if (panel && !isExecuted(panel.context.path)) {
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

    const viewContext: IViewContext = {
      showInNotebook: (path, cellId, cell, line) => {
        const open = tracker.find(p => p.context.path === path);
        if (open) {
          showCell(open, cellId, cell, line);
          return;
        }
        const widget = docManager.openOrReveal(path);
        if (widget instanceof NotebookPanel) {
          void widget.context.ready.then(() => showCell(widget, cellId, cell, line));
        }
      },
      openExecuted: (path, runId, step) => void openExecutedOf(path, runId, step)
    };
    try {
      registerViews(app, viewContext);
    } catch (error) {
      console.error('same-nb: the main-area views could not be registered', error);
    }

    registerDebugCommand(
      app,
      model,
      {
        notebook: async path => {
          if (model.panel && model.panel.context.path === path) {
            return model.panel;
          }
          const open = tracker.find(p => p.context.path === path);
          if (open) {
            return open;
          }
          const widget = docManager.openOrReveal(path);
          return widget instanceof NotebookPanel ? widget : null;
        },
        showCell
      },
      palette
    );

    const panelFor = (args: Record<string, unknown>): NotebookPanel | null =>
      (args.panelId ? tracker.find(p => p.id === args.panelId) : null) ?? tracker.currentWidget;

    app.commands.addCommand(COMMANDS.run, {
      label: 'Run as pipeline',
      caption: 'Run the saved notebook as a pipeline (same-nb): parallel steps, cached, recorded',
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

    /** The cell a command is about: the one right-clicked, else the active one. */
    const cellFor = (): { panel: NotebookPanel; cell: Cell } | null => {
      const node = app.contextMenuHitTest(n => n.classList.contains('jp-Cell'));
      const panel = tracker.currentWidget;
      if (node && panel) {
        const cell = panel.content.widgets.find(c => c.node === node);
        if (cell) {
          return { panel, cell };
        }
      }
      return panel && tracker.activeCell ? { panel, cell: tracker.activeCell } : null;
    };

    app.commands.addCommand(COMMANDS.startStep, {
      label: args => (args.isPalette ? 'Start pipeline step here' : 'New step here'),
      caption: 'Start a pipeline step at this cell (tags it step:NAME; the cells below join it)',
      icon: args => (args.isPalette ? undefined : newStepIcon),
      isEnabled: () => !!tracker.activeCell,
      execute: async () => {
        const found = cellFor();
        if (!found) {
          return;
        }
        const { panel, cell } = found;
        const current = tagsOf(cell.model);
        const existing = stepTagOf(current);
        const taken: string[] = [];
        panel.content.widgets.forEach(c => {
          const name = stepTagOf(tagsOf(c.model));
          if (name && c !== cell) {
            taken.push(name);
          }
        });
        const answer = await InputDialog.getText({
          title: existing ? `Rename step "${existing}"` : 'New pipeline step here',
          label: 'Step name (letters, digits, _ or -; starts with a letter or _)',
          text: existing ?? '',
          placeholder: taken.length ? 'train' : 'load'
        });
        if (!answer.button.accept || answer.value === null) {
          return;
        }
        const name = answer.value.trim();
        const problem = stepNameProblem(name, taken);
        if (problem) {
          await showErrorMessage('Invalid step name', problem);
          return;
        }
        cell.model.setMetadata('tags', withStepTag(current, name));
        void analysisFor(panel).refresh();
      }
    });

    app.contextMenu.addItem({ command: COMMANDS.startStep, selector: '.jp-Notebook .jp-Cell', rank: 12 });

    if (palette) {
      const category = 'Pipelines (same-nb)';
      palette.addItem({ command: COMMANDS.run, category });
      palette.addItem({ command: COMMANDS.open, category });
      palette.addItem({ command: COMMANDS.startStep, category, args: { isPalette: true } });
      for (const command of [COMMANDS.pipelineView, COMMANDS.runsView, COMMANDS.lineageView, COMMANDS.compare]) {
        palette.addItem({ command, category });
      }
    }

    app.docRegistry.addWidgetExtension('Notebook', {
      createNew: (panel: NotebookPanel) => {
        if (isExecuted(panel.context.path)) {
          return; // executed step notebooks are records, not pipelines
        }
        new NotebookDecorations(panel, analysisFor(panel), (cellId, cell, line) =>
          showCell(panel, cellId, cell, line)
        );
        const run = new ToolbarButton({
          icon: pipelineIcon,
          label: 'Run as pipeline',
          tooltip: 'Run the saved notebook as a pipeline (same-nb)',
          className: 'same-nb-toolbar-run',
          onClick: () => void app.commands.execute(COMMANDS.run, { panelId: panel.id })
        });
        const view = new ToolbarButton({
          label: 'Pipeline',
          tooltip: 'Open the Pipeline view of this notebook (steps, live runs)',
          className: 'same-nb-toolbar-pipeline',
          onClick: () => execute(COMMANDS.pipelineView, { path: panel.context.path })
        });
        panel.toolbar.insertAfter('cellType', 'same-nb-run', run);
        panel.toolbar.insertAfter('same-nb-run', 'same-nb-pipeline', view);
        return run;
      }
    });
  }
};

export default plugin;
