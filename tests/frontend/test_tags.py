"""same_nb.frontend.tags: the tag grammar (same-nb's tags plus Kale's and SAME's, each with one meaning)."""
from __future__ import annotations

import pytest

from same_nb.frontend.tags import RULES, parse_tag, parse_tags, step_name_from_stem, valid_step_name


@pytest.mark.parametrize("raw, meaning, arg, origin", [
    ("step:train", "step", "train", "same-nb"),
    ("parameters", "parameters", None, "same-nb"),
    ("skip", "skip", None, "same-nb"),
    ("after:load", "after", "load", "same-nb"),
    ("block:train", "step", "train", "kale"),
    ("prev:load", "after", "load", "kale"),
    ("pipeline-parameters", "parameters", None, "kale"),
    ("imports", "prelude", None, "kale"),
    ("functions", "prelude", None, "kale"),
    ("pipeline-metrics", "metrics", None, "kale"),
    ("same_step_0", "step", "same_step_0", "same"),
    ("same_step_12", "step", "same_step_12", "same"),
    ("block:", "continue", None, "kale"),
    ("block: ", "continue", None, "kale"),
    ("environment=private_environment", "environment", "private_environment", "same"),
    ("injected-parameters", "injected", None, "papermill"),
])
def test_each_convention_maps_to_one_meaning(raw, meaning, arg, origin):
    tag = parse_tag(raw)
    assert (tag.raw, tag.meaning, tag.arg, tag.origin) == (raw, meaning, arg, origin)


def test_every_rule_example_parses_to_its_own_rule():
    for rule in RULES:
        tag = parse_tag(rule.example)
        assert (tag.meaning, tag.origin) == (rule.meaning, rule.origin), rule.example


def test_kale_and_same_spellings_mean_what_same_nb_spellings_mean():
    pairs = [("step:x", "block:x"), ("after:x", "prev:x"), ("parameters", "pipeline-parameters")]
    for ours, theirs in pairs:
        assert (parse_tag(ours).meaning, parse_tag(ours).arg) == (parse_tag(theirs).meaning, parse_tag(theirs).arg)


def test_whitespace_around_tag_and_argument_is_ignored():
    tag = parse_tag("  step: load ")
    assert (tag.meaning, tag.arg, tag.raw) == ("step", "load", "  step: load ")


@pytest.mark.parametrize("raw", ["hide-input", "limit:nvidia.com/gpu:1", "cache=P0D", "environment=",
                                 "Step:x", "steps:x", "parametersx",
                                 "skipped", "same_step_x", "same_step_", "", "after", "block"])
def test_other_tags_are_ignored_not_errors(raw):
    assert parse_tag(raw) is None


def test_parse_tags_keeps_known_tags_in_order():
    assert [t.meaning for t in parse_tags(["hide-input", "after:a", "step:b", "junk"])] == ["after", "step"]


@pytest.mark.parametrize("name, ok", [
    ("load", True), ("_private", True), ("train-2", True), ("a" * 63, True), ("Load_Data", True),
    ("a" * 64, False), ("", False), ("2load", False), ("-load", False), ("bad name", False),
    ("a/b", False), ("a.b", False), ("naïve", False), ("x!", False),
])
def test_valid_step_names(name, ok):
    assert valid_step_name(name) is ok


@pytest.mark.parametrize("stem, name", [
    ("train", "train"), ("my notebook (1)", "my_notebook_1"), ("2024-report", "nb_2024-report"),
    ("", "main"), ("---", "main"), ("über", "ber"), ("x" * 80, "x" * 63),
])
def test_step_name_from_file_stem_is_always_valid(stem, name):
    assert step_name_from_stem(stem) == name
    assert valid_step_name(step_name_from_stem(stem))
