"""How times and numbers read in the live table, the summary, `show` and `runs`."""
from __future__ import annotations

import pytest

from same_nb.local.progress import number_text, seconds_text, step_time_text


@pytest.mark.parametrize("value, text", [
    (0.1 + 0.2, "0.3"), (0.6, "0.6"), (1.0, "1"), (3, "3"), (0.123456, "0.1235"), (12.3456, "12.35"),
    (1234.5678, "1234.6"), (2e-5, "2.000e-05"), (-0.1 - 0.2, "-0.3"), (1e12 + 0.5, "1.000e+12"),
    (float("nan"), "nan"), ("text", "text"), (True, "True"),
])
def test_numbers_are_rounded_for_tables(value, text):
    assert number_text(value) == text


@pytest.mark.parametrize("value, text", [
    (0.41234, "0.412 s"), (0.4, "0.4 s"), (0.0001, "0 s"), (6.8123, "6.81 s"), (6.8, "6.8 s"), (42.06, "42.1 s"),
    (312.4, "312 s"), (100.0, "100 s"),
])
def test_seconds_keep_about_three_significant_digits(value, text):
    assert seconds_text(value) == text


def test_step_time_names_the_kernel_wait_beside_the_compute():
    assert step_time_text(7.3, 0.41, 6.8) == "0.41 s (+ 6.8 s kernel)"
    assert step_time_text(0.5, 0.41, 0.01) == "0.41 s"              # a warm kernel: nothing to say
    assert step_time_text(0.02, None, None) == "0.02 s"             # a cache hit: no compute of its own
    assert step_time_text(None) == "-"
