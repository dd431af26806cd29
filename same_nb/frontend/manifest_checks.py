"""same.yaml's ``checks``: data-validity thresholds a run is held to, against a baseline run.

    checks:
      baseline: previous      # the newest earlier successful run of the notebook (default), or a run id
      schema: fail            # a column added/removed or a dtype changed: off | warn (default) | fail
      drift:
        psi_warn: 0.1         # a column whose PSI from the baseline exceeds this warns ...
        psi_fail: 0.25        # ... and this fails the run (exit 1), naming step, variable and column
        variables: [df]       # only these variables (default: every DataFrame, Series and array output)

PSI is store/drift.py's statistic. Only numbers above 0 are thresholds, and psi_warn must not exceed
psi_fail: a warning that can never show is a mistake in the file, not a setting.
"""
from __future__ import annotations

import math
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, model_validator
from pydantic_core import PydanticCustomError


def _check_threshold(value: Any) -> Any:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < math.inf:
        raise PydanticCustomError("bad_threshold", f"{str(value)[:40]!r} is not a PSI threshold: a number above 0 "
                                  "(0.1 is a moderate shift, 0.25 a significant one)")
    return float(value)


def _check_variable(value: str) -> str:
    if not value.isidentifier():
        raise PydanticCustomError("bad_variable", f"{value[:60]!r} is not a Python variable name")
    return value


def _check_baseline(value: Any) -> Any:
    if value == "previous" or (isinstance(value, int) and not isinstance(value, bool) and value > 0):
        return value
    raise PydanticCustomError("bad_baseline", f"{str(value)[:40]!r} is not a baseline: 'previous' (the last "
                              "successful run of the notebook) or a run id (a whole number above 0)")


def _off(value: Any) -> Any:
    return "off" if value is False else value     # YAML 1.1 reads a bare `off` (or `no`) as false


Threshold = Annotated[Any, AfterValidator(_check_threshold)]


class _Checks(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, defer_build=True)


class DriftCheck(_Checks):
    psi_warn: Threshold | None = None
    psi_fail: Threshold | None = None
    variables: list[Annotated[str, AfterValidator(_check_variable)]] | None = None

    @model_validator(mode="after")
    def _ordered(self) -> "DriftCheck":
        if self.psi_warn is None and self.psi_fail is None:
            raise PydanticCustomError("no_threshold", "set psi_warn, psi_fail or both (e.g. psi_warn: 0.1, "
                                      "psi_fail: 0.25)")
        if self.psi_warn is not None and self.psi_fail is not None and self.psi_warn > self.psi_fail:
            raise PydanticCustomError("threshold_order", f"psi_warn {self.psi_warn:g} is above psi_fail "
                                      f"{self.psi_fail:g}: the warning could never show")
        return self


class Checks(_Checks):
    baseline: Annotated[Any, AfterValidator(_check_baseline)] = "previous"
    schema_: Annotated[Literal["off", "warn", "fail"], BeforeValidator(_off)] = Field("warn", alias="schema")
    drift: DriftCheck | None = None

    def to_config(self) -> dict:
        """The plain form the runner keeps in its compiled config (``local/prepared.py``)."""
        return {"baseline": self.baseline, "schema": self.schema_,
                "drift": self.drift.model_dump() if self.drift else None}
