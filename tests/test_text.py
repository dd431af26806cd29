"""Bytes as every view shows them: decimal units, three significant digits."""
from __future__ import annotations

import pytest

from same_nb.text import bytes_text


@pytest.mark.parametrize(("value", "text"), [
    (None, "-"), (0, "0 B"), (999, "999 B"), (1000, "1 kB"), (1500, "1.5 kB"), (120_000_000, "120 MB"),
    (290_400_000, "290 MB"), (999_600_000, "1 GB"), (2_400_000_000, "2.4 GB"), (5e15, "5000 TB"),
])
def test_bytes_text(value, text):
    assert bytes_text(value) == text

