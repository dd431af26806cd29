"""The `same-nb` command. Thin: parse arguments, call the service layer, print the result.

Heavy modules are imported inside each command, so `same-nb --help` and cached reruns start fast.
"""
from __future__ import annotations

import argparse
import json
import shlex
import sys

from same_nb._version import __version__
from same_nb.errors import SameError

EPILOG = """examples:
  same-nb inspect train.ipynb            show steps, inputs/outputs, the DAG and problems
  same-nb compile train.ipynb -o build   write same.yaml + one notebook per step into build/
  same-nb run train.ipynb -p alpha 0.5   run the pipeline locally (parallel, cached)
  same-nb runs                           list recorded runs
  same-nb show 3                         steps, durations, artifacts and errors of run 3
"""


DIR_HELP = "folder whose .same/ store to read, or a notebook in it (default: current)"
NOTEBOOK_HELP = "the notebook whose runs these are: reads the store beside it"


def _add_notebook(p: argparse.ArgumentParser) -> None:
    p.add_argument("notebook", help="path to the .ipynb notebook")
    p.add_argument("--manifest", metavar="FILE", help="same.yaml to use (default: same.yaml beside the notebook)")


def cmd_inspect(args) -> int:
    from same_nb.service import inspect_notebook

    insp = inspect_notebook(args.notebook, args.manifest)
    if args.json:
        print(json.dumps(insp.to_dict(), indent=1, default=str))
    else:
        from same_nb.report import print_inspection
        print_inspection(insp)
    return 0 if insp.ok else 1


def cmd_forget(args) -> int:
    from same_nb.service import forget_effects
    from same_nb.store.learned import describe

    dropped = forget_effects(args.notebook, args.run)
    for entry in dropped:
        print(f"forgot: {describe(entry)} (learned from run {entry.get('run')})")
    print(f"{len(dropped)} learned effect{'s' if len(dropped) != 1 else ''} forgotten")
    return 0


def _lock_options(args) -> dict:
    return {"python_version": args.python_version, "platform": args.platform,
            "conda": getattr(args, "conda", False), "python": getattr(args, "python", None)}


def _stderr_line(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def cmd_compile(args) -> int:
    if args.target == "kubeflow":
        return _compile_kubeflow(args)
    if args.sweep or args.params_grid or args.parallelism is not None:
        raise SameError("a sweep compiles for --target kubeflow (nested dsl.ParallelFor); run it here with "
                        "`same-nb run NB --sweep ...`")
    from same_nb.service import compile_notebook

    result = compile_notebook(args.notebook, args.output, args.manifest, lock=not args.no_lock,
                              progress=_stderr_line, **_lock_options(args))
    steps = result.inspection.pipeline.steps
    print(f"Compiled {len(steps)} steps into {result.out_dir}/")
    for f in result.files:
        print(f"  {f.relative_to(result.out_dir)}")
    if result.locks is not None:
        for w in result.locks.warnings:
            print(f"warning: {w}", file=sys.stderr)
    for d in result.inspection.pipeline.diagnostics:
        if d.severity == "warning":
            print(d.render(), file=sys.stderr)
    return 0


def cmd_run(args) -> int:
    if args.sweep or args.params_grid:
        if args.target == "kubeflow":
            raise SameError("a sweep runs locally; for Kubeflow compile it: "
                            "`same-nb compile NB --target kubeflow --sweep ...`")
        if args.resume is not None:
            raise SameError("--resume continues one run; it cannot be combined with --sweep/--params-grid")
        return _run_sweep(args)
    if args.sweep_id:
        raise SameError("--sweep-id names a sweep: add --sweep NAME=V1,V2 or --params-grid FILE")
    if args.target == "kubeflow":
        return _run_kubeflow(args)
    import signal

    # Ctrl-C and the server's cancel (background.py) stop a run with SIGINT, even when the process was
    # started with SIGINT ignored (a background job of a non-interactive shell, nohup, some launchers).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    from same_nb.local.progress import make_progress, print_summary
    from same_nb.service import run_notebook

    if args.jobs is not None and args.jobs < 1:
        raise SameError("--jobs must be at least 1")
    from same_nb.local.runner import RunCancelled

    progress = make_progress(quiet=args.quiet)
    try:
        result = run_notebook(args.notebook, params=[tuple(p) for p in args.param], params_file=args.params,
                              jobs=args.jobs, use_cache=not args.no_cache, resume=args.resume,
                              manifest_path=args.manifest, progress=progress, timeout=args.timeout,
                              isolated=args.isolated, warn=_stderr_line, kernel=args.kernel)
    except RunCancelled as cancelled:
        _stderr_line(f"run {cancelled.run_id} cancelled; resume with "
                     f"`same-nb run {shlex.quote(args.notebook)} --resume {cancelled.run_id}`")
        return 130
    except KeyboardInterrupt:
        _stderr_line("cancelled before the run started")
        return 130
    print_summary(result)
    if result.checks:
        from same_nb.store.drift_report import render_checks

        for line in render_checks(result.checks):
            print(line)
    return 0 if result.ok else 1


def _sweep_axes(args) -> list:
    from same_nb.frontend.sweep import load_grid_file, parse_sweep_args

    axes = load_grid_file(args.params_grid) if args.params_grid else []
    return axes + parse_sweep_args(args.sweep or [])


def _run_sweep(args) -> int:
    import signal

    signal.signal(signal.SIGINT, signal.default_int_handler)
    from same_nb.local.progress import make_progress
    from same_nb.local.sweep import PointProgress, SweepCancelled
    from same_nb.report import print_sweep_result
    from same_nb.service import run_sweep

    if args.jobs is not None and args.jobs < 1:
        raise SameError("--jobs must be at least 1")
    if args.isolated:
        raise SameError("--isolated cannot be combined with a sweep yet; run the grid points one by one")

    def announce(sweep_id: str, plan) -> None:
        shared = ", ".join(plan.shared_steps) or "none"
        _stderr_line(f"sweep {sweep_id}: {len(plan.points)} runs over "
                     f"{' x '.join(f'{n} ({len(v)})' for n, v in plan.axes)}; computed once and shared: {shared}")
        for name in plan.unused:
            _stderr_line(f"warning: no step reads parameter {name!r}: every grid point computes the same")

    def progress_for(index: int, label: str):
        return make_progress(quiet=True) if args.quiet else PointProgress(label, t0=started)

    import time

    started = time.time()
    try:
        result = run_sweep(args.notebook, _sweep_axes(args), params=[tuple(p) for p in args.param],
                           params_file=args.params, jobs=args.jobs, use_cache=not args.no_cache,
                           manifest_path=args.manifest, timeout=args.timeout, kernel=args.kernel,
                           progress_for=progress_for, announce=announce, warn=_stderr_line,
                           sweep_id=args.sweep_id)
    except SweepCancelled as cancelled:
        runs = ", ".join(map(str, cancelled.runs)) or "none"
        _stderr_line(f"sweep {cancelled.sweep_id} cancelled (runs started: {runs})")
        return 130
    print_sweep_result(result)
    return 0 if result.ok else 1


def _compile_kubeflow(args) -> int:
    from same_nb.service import compile_for_kubeflow

    if args.parallelism is not None and not (args.sweep or args.params_grid):
        raise SameError("--parallelism limits a sweep's loops: add --sweep NAME=V1,V2 or --params-grid FILE")
    result = compile_for_kubeflow(args.notebook, args.output, args.manifest, python_version=args.python_version,
                                  platform=args.platform, progress=_stderr_line, image=args.image,
                                  bundle_uri=args.bundle_uri, sweep_axes=_sweep_axes(args) or None,
                                  sweep_parallelism=args.parallelism)
    figures = result.figures
    from same_nb.report import render_lock

    print(f"Compiled {len(result.pipeline.steps)} steps into {result.pipeline_yaml} "
          f"({figures['yaml_bytes'] / 1024:.1f} KB, {figures['bytes_per_step'] / 1024:.1f} KB per step, "
          f"largest container argument {figures['max_argument']:,} bytes)")
    print(f"  readable DSL: {result.pipeline_py}")
    print(f"  bundle: {result.bundle} (sha256 {result.bundle_sha256[:12]}…)")
    if result.images:
        print(f"  images: {', '.join(sorted(set(result.images.values())))}")
    print(f"  Docker build contexts, one per distinct lock: {result.out_dir / 'kfp' / 'images'}/ (build.sh)")
    where = "their images" if result.images else result.bundle_uri
    print(f"Pods read the bundle from {where}. Upload pipeline.yaml in the Kubeflow Pipelines UI, or run: "
          f"same-nb run {shlex.quote(str(args.notebook))} --target kubeflow --host URL"
          + ("" if result.images else " --bundle-uri URI"))
    print(render_lock(result.locks))
    for w in result.warnings:
        print(f"warning: {w}", file=sys.stderr)
    return 0


def _run_kubeflow(args) -> int:
    from same_nb.service import run_on_kubeflow

    if not args.host:
        raise SameError("--target kubeflow needs --host URL (the Kubeflow Pipelines API endpoint)")
    run_id, submitted = run_on_kubeflow(args.notebook, args.host, params=[tuple(p) for p in args.param],
                                        params_file=args.params, experiment=args.experiment,
                                        namespace=args.namespace, existing_token=args.existing_token,
                                        wait=args.wait, manifest_path=args.manifest, progress=_stderr_line,
                                        image=args.image, bundle_uri=args.bundle_uri)
    print(f"Run {run_id} submitted to Kubeflow as {submitted.run_id}: {submitted.state}")
    print(f"  {submitted.url}")
    return 0 if submitted.state not in ("FAILED", "CANCELED") else 1


def cmd_trace(args) -> int:
    from same_nb.store.lineage import render_dot, render_text, trace

    with _store_for(args) as store:
        tree = trace(store, args.target, cwd=_store_folder(args))   # a relative path is the notebook folder's
    if args.json:
        print(json.dumps(tree, indent=1, default=str))
    elif args.dot:
        print(render_dot(tree))
    else:
        print(render_text(tree))
    return 0


def cmd_compare(args) -> int:
    from same_nb.service import compare_runs
    from same_nb.store.drift_report import render_drift
    from same_nb.store.lineage import render_compare

    with _store_for(args) as store:
        diff = compare_runs(store, args.runs)
    if args.json:
        print(json.dumps(diff, indent=1, default=str))
    else:
        print("\n".join([render_compare(diff)] + [render_drift(d, args.all_columns) for d in diff["drift"]]))
    return 0


def cmd_rerun(args) -> int:
    from same_nb.local.progress import make_progress
    from same_nb.service import rerun_run
    from same_nb.store.rerun import render_rerun

    result = rerun_run(args.run, notebook_dir=_store_folder(args), jobs=args.jobs,
                       progress=make_progress(quiet=args.quiet))
    print(json.dumps(result.to_dict(), indent=1, default=str) if args.json else render_rerun(result))
    return 0 if result.run.ok else 1


def cmd_lock(args) -> int:
    from same_nb.service import lock_notebook

    result = lock_notebook(args.notebook, args.output, progress=None if args.json else _stderr_line,
                           **_lock_options(args))
    if args.json:
        print(json.dumps(result.to_dict(), indent=1, default=str))
        return 0
    from same_nb.report import render_lock

    print(render_lock(result))
    for w in result.warnings:
        print(f"warning: {w}", file=sys.stderr)
    return 0


def cmd_verify(args) -> int:
    from same_nb.service import verify_notebook

    _, report = verify_notebook(args.notebook, args.output, progress=_stderr_line, run=not args.imports_only,
                                jobs=args.jobs, timeout=args.timeout, manifest_path=args.manifest,
                                **_lock_options(args))
    if args.json:
        print(json.dumps(report.to_dict(), indent=1, default=str))
    else:
        print(report.render())
    return 0 if report.ok else 1


def _add_lock_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--python-version", metavar="X.Y", help="Python version to lock for (default: this one)")
    p.add_argument("--platform", metavar="OS/ARCH",
                   help="platform to lock for: linux/x86_64, linux/arm64, darwin/arm64, …, or 'local' for this "
                        "machine (default: linux/amd64, what pods run; verify and run --isolated: local)")


def _named_notebook(args):
    """The notebook the user named (``runs NB``, ``--notebook NB``, or a notebook given as ``--dir``), or None."""
    from pathlib import Path

    named = getattr(args, "notebook", None)
    if named is None and Path(args.dir).suffix == ".ipynb":
        named = args.dir
    if named is None:
        return None
    path = Path(named)
    if not path.is_file():
        raise SameError("no such notebook", path=str(named))
    return path.resolve()


def _store_folder(args):
    """Where the run store is: beside the notebook the user named, else the --dir folder."""
    from pathlib import Path

    notebook = _named_notebook(args)
    return notebook.parent if notebook is not None else Path(args.dir)


def _store_for(args):
    import os
    from pathlib import Path

    from same_nb.store.database import DB_ENV, open_store

    folder = _store_folder(args)
    if not os.environ.get(DB_ENV) and not (folder / ".same" / "same.db").exists():
        named = _named_notebook(args) is not None or Path(args.dir).resolve() != Path.cwd().resolve()
        hint = ("run a notebook there first (`same-nb run NB`)" if named else
                f"pass the notebook (--notebook NB) or its folder (--dir DIR), or set {DB_ENV}")
        raise SameError(f"no runs are recorded in {folder.resolve()} (no .same/same.db): {hint}")
    return open_store(notebook_dir=folder)


def cmd_runs(args) -> int:
    from same_nb.report import print_runs
    from same_nb.service import refresh_remote_runs

    if args.sweep is not None:
        return _sweep_runs(args)
    if args.best or args.minimize or args.maximize:
        raise SameError("--best, --minimize and --maximize pick the best run of a sweep: add --sweep ID")
    notebook = _named_notebook(args)          # runs NB: that notebook's runs only
    with _store_for(args) as store:
        runs = store.list_runs(limit=args.limit, offset=args.offset, notebook_path=notebook)
        total = store.count_runs(notebook_path=notebook)
        for note in refresh_remote_runs(store, runs):
            print(f"note: {note}", file=sys.stderr)
        columns: list[str] = []
        if args.drift or args.baseline is not None:
            from same_nb.service import drifted_runs
            from same_nb.store.drift_report import render_drifted_runs

            result = drifted_runs(store, notebook_path=notebook, baseline=args.baseline, limit=args.limit,
                                  offset=args.offset, threshold=args.threshold)
            print(json.dumps(result, indent=1, default=str) if args.json else render_drifted_runs(result))
            return 0
        if args.metrics:
            from same_nb.store.lineage import runs_with_metrics

            table = runs_with_metrics(store, limit=args.limit, offset=args.offset, notebook_path=notebook)
            columns, runs = table["columns"], table["runs"]
    if args.json:
        print(json.dumps({"total": total, "runs": runs, "metric_columns": columns}, indent=1, default=str))
    else:
        print_runs(runs, total, columns)
    return 0


def _sweep_runs(args) -> int:
    from same_nb.report import print_sweep
    from same_nb.service import sweep_table

    if (args.minimize or args.maximize) and not args.best:
        raise SameError("--minimize/--maximize say which way --best METRIC is better: add --best METRIC")
    direction = "min" if args.minimize else "max" if args.maximize else None
    with _store_for(args) as store:
        table = sweep_table(store, args.sweep, best=args.best, direction=direction)
    if args.json:
        print(json.dumps(table, indent=1, default=str))
    else:
        print_sweep(table)
    return 0


def cmd_show(args) -> int:
    from same_nb.report import print_run

    with _store_for(args) as store:
        run = store.get_run(args.run)
    if run is None:
        raise SameError(f"there is no run {args.run} in this store (see `same-nb runs`)")
    if args.json:
        print(json.dumps(run, indent=1, default=str))
    else:
        print_run(run)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="same-nb",
        description="Turn a tagged Jupyter notebook into a reproducible pipeline. Tag cells `step:NAME` "
                    "to start steps and `parameters` for the parameters cell; same-nb works out what "
                    "each step reads and writes from the code itself.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"same-nb {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("inspect", help="show the steps, their inputs and outputs, the DAG and any problems",
                       description="Analyze a notebook without running it: the steps, what each reads "
                                   "(and from which step), what it passes on, its imports and parameters, "
                                   "the step DAG and diagnostics pointing at cell and line. Exits 1 when "
                                   "there are errors.")
    _add_notebook(p)
    p.add_argument("--json", action="store_true", help="print machine-readable JSON (the pipeline IR)")
    p.set_defaults(func=cmd_inspect)

    p = sub.add_parser("compile", help="write the pipeline bundle (same.yaml + one notebook per step)",
                       description="Compile the notebook into a bundle directory: a resolved same.yaml, "
                                   "pipeline.json (the IR) and steps/<step>.ipynb, each with a papermill "
                                   "parameters cell, a prologue loading its inputs, its cells and an "
                                   "epilogue saving its outputs. Compiling twice gives identical files.")
    _add_notebook(p)
    p.add_argument("-o", "--output", metavar="DIR", help="output directory (default: <notebook>-pipeline/ "
                                                          "beside the notebook)")
    p.add_argument("--target", choices=("local", "kubeflow"), default="local",
                   help="local: a bundle for `same-nb run`; kubeflow: also pipeline.yaml (KFP v2) and pipeline.py")
    p.add_argument("--image", metavar="REPOSITORY", help="with --target kubeflow: pods run prebuilt images (one per "
                   "distinct lock, tagged REPOSITORY:<lock id>, built from kfp/images/) and install nothing "
                   "(default: same.yaml environment.image)")
    p.add_argument("--bundle-uri", metavar="URI", help="with --target kubeflow and no image: where pods import the "
                   "bundle (kfp/bundle.tar.gz) from, e.g. minio://mlpipeline/same-nb/x.tar.gz, gs://…, s3://…")
    p.add_argument("--sweep", action="append", metavar="NAME=V1,V2,...",
                   help="with --target kubeflow: compile the grid of these values (repeatable) as nested "
                        "dsl.ParallelFor loops around the steps a swept parameter reaches; the others run once")
    p.add_argument("--params-grid", metavar="FILE", help="with --target kubeflow: the grid from a YAML file "
                   "mapping parameters to lists of values")
    p.add_argument("--parallelism", type=int, metavar="N", help="with --sweep: at most N iterations of each "
                   "loop at once (default: as many as the cluster allows)")
    p.add_argument("--no-lock", action="store_true",
                   help="skip the per-step lockfiles (envs/<step>/requirements.txt); works offline")
    _add_lock_options(p)
    p.set_defaults(func=cmd_compile)

    p = sub.add_parser("lock", help="write per-step lockfiles pinned to the versions installed here",
                       description="Map each step's imports to the installed distributions and write "
                                   "envs/<step>/requirements.in (direct pins) and requirements.txt (the full "
                                   "set with sha256 hashes, resolved by uv). If uv or PyPI is unavailable, "
                                   "the lock is built from the installed metadata, without hashes, and says so.")
    _add_notebook(p)
    p.add_argument("-o", "--output", metavar="DIR", help="bundle directory (default: <notebook>-pipeline/)")
    _add_lock_options(p)
    p.add_argument("--conda", action="store_true", help="also write environment.yml (and conda-lock.yml if a "
                                                         "conda/mamba/micromamba binary is on PATH)")
    p.add_argument("--python", metavar="PATH", help="interpreter whose installed packages to pin "
                                                     "(default: this one)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_lock)

    import textwrap

    def _paragraphs(*texts: str) -> str:        # RawDescriptionHelpFormatter keeps the line breaks
        return "\n\n".join(textwrap.fill(t, 96) for t in texts)

    p = sub.add_parser("verify", help="prove the locks: install each into a clean venv, import every module, "
                                      "run every step and compare its outputs with the last local run",
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       description=_paragraphs(
                           "Lock the notebook (cached), then for each distinct lock create a clean venv with uv "
                           "under .same/envs/ (reused by lock hash), install it with hashes required, and "
                           "import every module each step uses.",
                           "Then run each step in its clean venv (plus ipykernel, with only a copy of the step "
                           "runtime on its path) on the inputs and parameters of its last successful local "
                           "run, and check that every output has the sha256 that run recorded: this catches "
                           "what a step loads only while it runs. Steps run concurrently (-j); progress goes "
                           "to stderr."),
                       epilog=_paragraphs(
                           "status per step: ok; failed (a module missing or broken, a venv that cannot be "
                           "built, or the step's code raising: with cell and line); differs (an output's "
                           "sha256 differs from the last run's); not run (no successful local run to take "
                           "inputs from: run `same-nb run NB` first).",
                           "exit code: 0 when no step failed or differs (steps not run are listed with a note, "
                           "not counted as failures); 1 when any step failed or differs."))
    _add_notebook(p)
    p.add_argument("-o", "--output", metavar="DIR", help="bundle directory (default: <notebook>-pipeline/)")
    _add_lock_options(p)
    p.add_argument("-j", "--jobs", type=int, metavar="N", help="steps to run at once (default: CPU count)")
    p.add_argument("--timeout", type=float, metavar="SECONDS", help="per-cell execution timeout of the step runs")
    p.add_argument("--imports-only", action="store_true",
                   help="only install the locks and import the modules; run no step")
    p.add_argument("--json", action="store_true",
                   help="machine-readable output: per step status (ok/failed/differs/not-run), import "
                        "failures, the run's failures and differing outputs, seconds")
    p.set_defaults(func=cmd_verify)

    p = sub.add_parser("run", help="run the pipeline locally: parallel steps, cache, recorded lineage",
                       description="Compile the notebook, then execute each step notebook with papermill in "
                                   "its own kernel (started early, imports preloaded). Independent steps run "
                                   "concurrently; steps whose code, inputs, parameters and packages are "
                                   "unchanged are reused from the cache. Executed notebooks and logs go to "
                                   ".same/runs/<run>/ beside the notebook; the notebook itself is never "
                                   "modified. Exits 1 if any step fails.")
    _add_notebook(p)
    p.add_argument("-p", "--param", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"),
                   help="override a parameter (repeatable); the value is checked against the default's type")
    p.add_argument("--params", metavar="FILE", help="YAML file of parameter values")
    p.add_argument("-j", "--jobs", type=int, metavar="N", help="steps to run at once (default: CPU count)")
    p.add_argument("--no-cache", action="store_true", help="execute every step even if a cached result exists")
    p.add_argument("--resume", type=int, metavar="RUN_ID",
                   help="re-run only the failed, skipped or interrupted steps of RUN_ID")
    p.add_argument("--timeout", type=float, metavar="SECONDS", help="per-cell execution timeout")
    p.add_argument("--target", choices=("local", "kubeflow"), default="local",
                   help="where to run: here (default) or on a Kubeflow Pipelines server")
    p.add_argument("--host", metavar="URL", help="Kubeflow Pipelines API endpoint (with --target kubeflow)")
    p.add_argument("--image", metavar="REPOSITORY", help="with --target kubeflow: pods run prebuilt images (one per "
                   "distinct lock, tagged REPOSITORY:<lock id>, built from kfp/images/) and install nothing "
                   "(default: same.yaml environment.image)")
    p.add_argument("--bundle-uri", metavar="URI", help="with --target kubeflow and no image: where pods import the "
                   "bundle (kfp/bundle.tar.gz) from, e.g. minio://mlpipeline/same-nb/x.tar.gz, gs://…, s3://…")
    p.add_argument("--experiment", metavar="NAME", help="KFP experiment (default: Default)")
    p.add_argument("--namespace", metavar="NS", help="KFP namespace (multi-user installs)")
    p.add_argument("--existing-token", metavar="TOKEN", help="bearer token for the KFP API (never stored)")
    p.add_argument("--wait", action="store_true", help="with --target kubeflow: wait until the run finishes")
    p.add_argument("--isolated", action="store_true",
                   help="run each step's kernel in a clean venv built from its lockfile (proves the lock)")
    p.add_argument("--kernel", choices=("fork", "fresh"),
                   help="how each step's kernel starts: forked from a process that imported the pipeline's "
                        "modules once (default on Linux) or as a new process (default elsewhere and with --isolated)")
    p.add_argument("--sweep", action="append", metavar="NAME=V1,V2,...",
                   help="run once per value (repeatable: the grid of every combination); values are typed like "
                        "the parameter's default, as -p values are; commas inside [...] or quotes stay. Steps "
                        "that no swept parameter reaches run once and are shared by every run")
    p.add_argument("--params-grid", metavar="FILE",
                   help="YAML file mapping parameters to lists of values to sweep, e.g. `C: [0.1, 0.5, 1.0]`")
    p.add_argument("--sweep-id", metavar="ID",
                   help="with --sweep or --params-grid: the sweep's id (letters, digits, '.', '_', '-'; "
                   "default: the date, time and 6 random hex digits); refused if the store has that sweep already")
    p.add_argument("-q", "--quiet", action="store_true", help="print only the summary")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("runs", help="list recorded runs, newest first",
                       description="List the runs recorded in the store (.same/same.db beside the notebook or "
                                   "in DIR, or $SAME_NB_DB).")
    p.add_argument("notebook", nargs="?", help="only the runs of this notebook (its folder's store)")
    p.add_argument("--dir", default=".", help=DIR_HELP)
    p.add_argument("--limit", type=int, default=20, help="how many runs (default 20)")
    p.add_argument("--offset", type=int, default=0, help="skip this many of the newest runs")
    p.add_argument("--metrics", action="store_true", help="add a column per logged metric (last value per run)")
    p.add_argument("--drift", action="store_true",
                   help="only the runs whose step inputs (DataFrames, Series, arrays) drifted from a baseline run "
                        "by PSI or changed schema, each with its worst column")
    p.add_argument("--baseline", type=int, metavar="RUN",
                   help="with --drift: compare with this run (default: each run's previous successful run of "
                        "its notebook)")
    p.add_argument("--threshold", type=float, default=0.1, metavar="PSI",
                   help="with --drift: the PSI that counts as drift (default 0.1, a moderate shift)")
    p.add_argument("--sweep", metavar="ID", help="the runs of one sweep (`run --sweep`): swept values, metrics, status")
    p.add_argument("--best", metavar="METRIC", help="with --sweep: mark the best run by this metric (lowest for "
                   "names like loss, error, rmse, time; highest otherwise)")
    way = p.add_mutually_exclusive_group()
    way.add_argument("--minimize", action="store_true", help="with --best: lowest is best")
    way.add_argument("--maximize", action="store_true", help="with --best: highest is best")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_runs)

    p = sub.add_parser("show", help="show one run: steps, durations, cache hits, artifacts and errors",
                       description="Show a recorded run in detail.")
    p.add_argument("run", type=int, help="run id (see `same-nb runs`)")
    p.add_argument("--dir", default=".", help=DIR_HELP)
    p.add_argument("--notebook", metavar="NB", help=NOTEBOOK_HELP)
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_show)

    p = sub.add_parser("trace", help="where did this file or value come from? upstream lineage across runs",
                       description="Trace a file path, an artifact sha256 (8+ hex digits) or RUN:STEP:VARIABLE "
                                   "upstream: the step run that produced it (run, time, code hash, packages, "
                                   "parameters) and, recursively, its inputs: files, datasets, variables and "
                                   "parameters. Files changed since they were recorded are flagged.")
    p.add_argument("target", help="path, sha256 or RUN:STEP:VARIABLE")
    p.add_argument("--dir", default=".", help=DIR_HELP)
    p.add_argument("--notebook", metavar="NB", help=NOTEBOOK_HELP)
    fmt = p.add_mutually_exclusive_group()
    fmt.add_argument("--json", action="store_true", help="machine-readable output")
    fmt.add_argument("--dot", action="store_true", help="graphviz DOT output (pipe to `dot -Tsvg`)")
    p.set_defaults(func=cmd_trace)

    p = sub.add_parser("compare", help="what differs between two or more runs",
                       description="Compare runs: step code, parameters, package versions, input data "
                                   "hashes, metrics and output hashes. Two runs show `old → new`; more show "
                                   "the values in the order given, separated by `|`. Then data drift from the "
                                   "first run: for each DataFrame, Series or array a step passes on in both, "
                                   "schema changes and the columns whose PSI (population stability index over "
                                   "deciles, from the profiles saved with each artifact) is 0.1 or more.")
    p.add_argument("runs", type=int, nargs="+", metavar="RUN",
                   help="two or more run ids, earliest first (see `same-nb runs`)")
    p.add_argument("--dir", default=".", help=DIR_HELP)
    p.add_argument("--notebook", metavar="NB", help=NOTEBOOK_HELP)
    p.add_argument("--all-columns", action="store_true", help="show the drift of every column, stable ones too")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_compare)

    p = sub.add_parser("rerun", help="reproduce a run from its recorded notebook and parameters",
                       description="Run again with the recorded parameters and the recorded notebook source "
                                   "(kept by hash in the store), without the cache, and report whether each "
                                   "output is byte-identical to the recorded one.")
    p.add_argument("run", type=int, help="run id to reproduce (see `same-nb runs`)")
    p.add_argument("--dir", default=".", help=DIR_HELP)
    p.add_argument("--notebook", metavar="NB", help=NOTEBOOK_HELP)
    p.add_argument("-j", "--jobs", type=int, metavar="N", help="steps to run at once")
    p.add_argument("-q", "--quiet", action="store_true", help="print only the result")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_rerun)

    p = sub.add_parser("forget", help="drop the effects earlier runs taught same-nb about a notebook",
                       description="A run that sees a change the analysis missed (an input changed through an "
                                   "alias, two steps using one file unordered) fails and remembers it, so the "
                                   "next run carries it (`inspect` shows 'learned from run N'). This drops "
                                   "those learned effects: all of them, or those from one run.")
    p.add_argument("notebook", help="path to the .ipynb file")
    p.add_argument("--run", type=int, metavar="N", help="only the effects learned from run N")
    p.set_defaults(func=cmd_forget)
    return parser


def _unwritable(exc: OSError, args) -> SameError | None:
    """A folder same-nb cannot write in (read-only, not yours) or a full disk: one line naming the
    folder instead of a traceback. Other OS errors keep their traceback."""
    import errno
    import os

    if exc.errno not in (errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOSPC, errno.EDQUOT) or not exc.filename:
        return None
    path = os.path.abspath(os.fsdecode(exc.filename))
    reason = os.strerror(exc.errno).lower()
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return SameError(f"{reason} while writing this file: free some space on its device, then run again",
                         path=path)
    if os.path.exists(path):
        return SameError(f"cannot open it: {reason}", path=path)
    folder = os.path.dirname(path)
    hint = {"run": "same-nb keeps its runs and cache in .same/ beside the notebook: copy the notebook to a "
                   "folder you can write to",
            "rerun": "same-nb keeps its runs in .same/ beside the notebook: run from a folder you can write to",
            "compile": "write the bundle elsewhere with -o DIR", "lock": "write the locks elsewhere with -o DIR"}
    more = hint.get(getattr(args, "command", None) or "", "")
    return SameError(f"cannot write in this folder ({reason} creating {os.path.basename(path)})"
                     + (f"; {more}" if more else ""), path=folder)


def main(argv: list[str] | None = None) -> int:
    from same_nb.lean import skip_slow_optional_imports

    skip_slow_optional_imports()
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        try:
            return args.func(args)
        except OSError as exc:
            error = _unwritable(exc, args)
            if error is None:
                raise
            raise error from None
    except SameError as exc:
        if getattr(args, "json", False):
            print(json.dumps({"ok": False, "error": exc.to_dict()}))
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
