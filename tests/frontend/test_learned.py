"""Learned effects applied to the IR: a learned mutation moves later readers to the mutating step, a
learned order is an after: edge; entries that no longer fit are skipped."""
from __future__ import annotations

from same_nb.frontend.learned import apply_learned
from same_nb.frontend.pipeline import build_pipeline


def test_a_learned_mutation_moves_later_readers(write_notebook):
    p = build_pipeline(write_notebook([(["parameters"], "opts = [1]"), (["step:make"], "a = [1, 2]"),
                                       (["step:alias"], "import operator\noperator.methodcaller('append', 3)(a)\no = opts"),
                                       (["step:use"], "n = len(a) + len(opts)")]))
    assert {i.name: i.producer for i in p.step("use").inputs} == {"a": "make", "opts": None}
    applied = apply_learned(p, [{"kind": "mutation", "step": "alias", "name": "a", "run": 3},
                                {"kind": "mutation", "step": "alias", "name": "opts", "run": 3},
                                {"kind": "mutation", "step": "gone", "name": "a", "run": 3},
                                {"kind": "mutation", "step": "use", "name": "nothing", "run": 3}])
    assert len(applied) == 2
    assert {i.name: (i.kind, i.producer) for i in p.step("use").inputs} == {
        "a": ("variable", "alias"), "opts": ("variable", "alias")}
    assert p.step("use").params == []
    assert p.step("alias").outputs == ["a", "opts"] and p.step("make").outputs == ["a"]
    assert {(e.src, e.dst, tuple(e.names)) for e in p.edges if e.kind == "data"} == {
        ("make", "alias", ("a",)), ("alias", "use", ("a", "opts"))}
    notes = [d for d in p.diagnostics if d.code == "learned-effect"]
    assert [d.severity for d in notes] == ["info", "info"] and "learned from run 3" in notes[0].message


def test_a_learned_order_is_an_after_edge_and_never_a_cycle(write_notebook):
    p = build_pipeline(write_notebook([(["step:w"], "name = 'f' + '.txt'\nopen(name, 'w').write('x')"),
                                       (["step:r"], "t = open('f' + '.txt').read()")]))
    applied = apply_learned(p, [{"kind": "order", "before": "w", "after": "r", "why": "file f.txt", "run": 1},
                                {"kind": "order", "before": "r", "after": "w", "why": "backwards", "run": 1}])
    assert len(applied) == 1
    [edge] = [e for e in p.edges if e.src == "w" and e.dst == "r"]
    assert edge.kind == "after" and edge.reasons() == ["learned from run 1: file f.txt"]
    assert p.step("r").after == ["w"]


def test_a_learned_change_through_a_value_saved_with_it_makes_the_step_carry_it(write_notebook):
    """`pair = [shared, shared]`: a step changing pair changes shared, which it did not read."""
    p = build_pipeline(write_notebook([(["step:a"], "shared = [0]\npair = [shared, shared]"),
                                       (["step:b"], "import operator\noperator.methodcaller('append', 1)(pair[0])"),
                                       (["step:c"], "n = len(shared)")]))
    assert {i.name: i.producer for i in p.step("c").inputs} == {"shared": "a"}
    applied = apply_learned(p, [{"kind": "mutation", "step": "b", "name": "shared", "how": "through 'pair'",
                                 "via": "pair", "run": 2}])
    assert len(applied) == 1
    assert {i.name: i.producer for i in p.step("b").inputs} == {"pair": "a", "shared": "a"}
    assert {i.name: i.producer for i in p.step("c").inputs} == {"shared": "b"}
    assert p.step("b").outputs == ["shared"]
