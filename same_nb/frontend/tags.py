"""The tag grammar, declared in one place: which cell tags mean what.

same-nb's own tags, plus Kale's and SAME's, each mapped onto one meaning:

  step:NAME / block:NAME (Kale) / same_step_N (SAME)  start a step (several on one cell: it runs in each)
  block: (Kale, empty)                                continue the current step
  parameters / pipeline-parameters (Kale)             the parameters cell
  injected-parameters (papermill)                     values papermill injected: the parameters' defaults
  skip                                                exclude the cell (and every tag on it but a step tag)
  after:NAME / prev:NAME (Kale)                       explicit dependency on step NAME
  imports / functions (Kale)                          prelude cell, prepended to every step
  pipeline-metrics (Kale)                             names (or Kale's `print(name)` lines) logged as metrics
  environment=NAME (SAME)                             the step runs in same.yaml's environment NAME

Any other tag (hide-input, Kale's limit:/label:/annotation:, SAME's cache=, …) is kept and ignored.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

STEP_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]{0,62}$")


@dataclass(frozen=True)
class TagRule:
    pattern: re.Pattern
    meaning: str        # step | continue | parameters | injected | skip | after | prelude | metrics | environment
    origin: str         # same-nb | kale | same | papermill
    example: str


RULES: tuple[TagRule, ...] = (
    TagRule(re.compile(r"^step:(?P<arg>.*)$"), "step", "same-nb", "step:train"),
    TagRule(re.compile(r"^parameters$"), "parameters", "same-nb", "parameters"),
    TagRule(re.compile(r"^skip$"), "skip", "same-nb", "skip"),
    TagRule(re.compile(r"^after:(?P<arg>.*)$"), "after", "same-nb", "after:load"),
    TagRule(re.compile(r"^block:\s*$"), "continue", "kale", "block:"),
    TagRule(re.compile(r"^block:(?P<arg>.*)$"), "step", "kale", "block:train"),
    TagRule(re.compile(r"^prev:(?P<arg>.*)$"), "after", "kale", "prev:load"),
    TagRule(re.compile(r"^pipeline-parameters$"), "parameters", "kale", "pipeline-parameters"),
    TagRule(re.compile(r"^(imports|functions)$"), "prelude", "kale", "imports"),
    TagRule(re.compile(r"^pipeline-metrics$"), "metrics", "kale", "pipeline-metrics"),
    TagRule(re.compile(r"^(?P<arg>same_step_\d+)$"), "step", "same", "same_step_0"),
    TagRule(re.compile(r"^environment=(?P<arg>.+)$"), "environment", "same", "environment=gpu"),
    TagRule(re.compile(r"^injected-parameters$"), "injected", "papermill", "injected-parameters"),
)


@dataclass(frozen=True)
class Tag:
    raw: str
    meaning: str
    arg: str | None
    origin: str


def parse_tag(raw: str) -> Tag | None:
    """The meaning of one tag, or None for tags same-nb ignores."""
    text = raw.strip()
    for rule in RULES:
        m = rule.pattern.match(text)
        if m:
            arg = m.groupdict().get("arg")
            return Tag(raw=raw, meaning=rule.meaning, arg=arg.strip() if arg is not None else None,
                       origin=rule.origin)
    return None


def parse_tags(tags: list[str]) -> list[Tag]:
    return [t for t in (parse_tag(x) for x in tags) if t is not None]


def valid_step_name(name: str) -> bool:
    return bool(STEP_NAME_RE.match(name))


def step_name_from_stem(stem: str) -> str:
    """A valid step name for an untagged notebook, derived from its file name."""
    name = re.sub(r"[^A-Za-z0-9_-]+", "_", stem).strip("_-") or "main"
    if not re.match(r"^[A-Za-z_]", name):
        name = f"nb_{name}"
    return name[:63]
