// The main-area views: Pipeline (live DAG), Runs (table and comparison), Lineage.
import { JupyterFrontEnd } from '@jupyterlab/application';

import { IViewContext } from '../commands';

/** Register the view commands (see COMMANDS in ../commands). */
export function registerViews(app: JupyterFrontEnd, context: IViewContext): void {
  void app;
  void context;
}
