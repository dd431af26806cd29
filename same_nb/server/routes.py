"""The REST API's routes: every handler of ``/same-nb/api/`` and its URL pattern, in one table."""
from __future__ import annotations

from same_nb.server.debug_api import DebugStepHandler
from same_nb.server.drift_api import DriftHandler
from same_nb.server.handlers import (
    ExecutedNotebookHandler,
    LineageHandler,
    MetricsHandler,
    RunsHandler,
    StepNotebookHandler,
)
from same_nb.server.inspect_api import InspectContentHandler
from same_nb.server.runs_api import CancelHandler, CompareHandler, LabeledRunHandler, StepLogHandler
from same_nb.server.sweeps_api import SWEEP_ID, SweepCancelHandler, SweepHandler, SweepsHandler


def handlers(base_url: str) -> list[tuple[str, type]]:
    api = base_url.rstrip("/") + "/same-nb/api"
    step = "([A-Za-z_][A-Za-z0-9_-]{0,62})"
    return [
        (f"{api}/inspect", InspectContentHandler),
        (f"{api}/runs", RunsHandler),
        (rf"{api}/runs/(\d+)", LabeledRunHandler),
        (rf"{api}/runs/(\d+)/cancel", CancelHandler),
        (rf"{api}/runs/(\d+)/steps/{step}/notebook", StepNotebookHandler),
        (rf"{api}/runs/(\d+)/steps/{step}/log", StepLogHandler),
        (rf"{api}/runs/(\d+)/steps/{step}/debug", DebugStepHandler),
        (f"{api}/compare", CompareHandler),
        (f"{api}/drift", DriftHandler),
        (f"{api}/sweeps", SweepsHandler),
        (rf"{api}/sweeps/{SWEEP_ID}", SweepHandler),
        (rf"{api}/sweeps/{SWEEP_ID}/cancel", SweepCancelHandler),
        (f"{api}/executed", ExecutedNotebookHandler),
        (f"{api}/lineage", LineageHandler),
        (f"{api}/metrics", MetricsHandler),
    ]
