"""The learned-effects file: recorded once per effect, loaded per notebook, forgotten on request."""
from __future__ import annotations

import pytest

from same_nb.errors import SameError
from same_nb.store.learned import describe, forget_learned, learned_path, load_learned, record_learned

MUTATION = {"kind": "mutation", "step": "alias", "name": "a", "how": "in place", "run": 1}
ORDER = {"kind": "order", "before": "w", "after": "r", "why": "file f.txt", "run": 2}


def test_record_load_and_forget(tmp_path):
    nb = tmp_path / "nb.ipynb"
    other = tmp_path / "other.ipynb"
    assert load_learned(nb) == []
    assert record_learned(nb, [MUTATION, ORDER]) == [MUTATION, ORDER]
    assert record_learned(nb, [dict(MUTATION, run=5)]) == []        # the same effect is kept once
    record_learned(other, [ORDER])
    assert load_learned(nb) == [MUTATION, ORDER] and load_learned(other) == [ORDER]
    assert forget_learned(nb, run=2) == [ORDER]
    assert load_learned(nb) == [MUTATION]
    assert forget_learned(nb) == [MUTATION] and load_learned(nb) == [] and load_learned(other) == [ORDER]
    assert "changes 'a'" in describe(MUTATION) and "after 'w'" in describe(ORDER)


def test_a_damaged_file_is_a_clear_error(tmp_path):
    nb = tmp_path / "nb.ipynb"
    path = learned_path(nb)
    path.parent.mkdir()
    path.write_text("{not json")
    with pytest.raises(SameError, match="delete the file"):
        load_learned(nb)
    path.write_text("[1, 2]")
    with pytest.raises(SameError, match="not what same-nb writes"):
        load_learned(nb)
