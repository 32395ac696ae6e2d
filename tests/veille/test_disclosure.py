"""Small-count protection: no count from 1 to 10 is shown, and no hidden cell can be worked out
from the published cells and totals — checked by an independent audit (bounds per relation,
linear algebra over the whole table) on hand-made and random hierarchical tables."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from webhook.veille.disclosure import COMPLEMENT, PRIMARY, ZERO, Key, Relation, audit, protect


def k(*parts: str) -> Key:
    return tuple(parts)


def test_a_single_small_cell_gets_a_complement_in_its_row() -> None:
    values = {k("t"): 57, k("a"): 3, k("b"): 20, k("c"): 34}
    relations = [Relation(k("t"), (k("a"), k("b"), k("c")))]
    protection = protect(values, relations)
    # 57 - 20 - 34 would give 3 back: the smallest other part is hidden too
    assert protection.hidden == {k("a"): PRIMARY, k("b"): COMPLEMENT}
    assert protection.shown(k("a")) == "< 11"
    assert protection.shown(k("b")) == "secret"
    assert protection.shown(k("c")) == 34 and protection.shown(k("t")) == 57
    assert audit(values, relations, protection.hidden, 10) == []


def test_two_ones_beside_a_total_are_not_left_alone() -> None:
    # the hidden parts would sum to 2: both are 1
    values = {k("t"): 42, k("a"): 1, k("b"): 1, k("c"): 40}
    relations = [Relation(k("t"), (k("a"), k("b"), k("c")))]
    protection = protect(values, relations)
    assert protection.hidden[k("c")] == COMPLEMENT
    assert audit(values, relations, protection.hidden, 10) == []


def test_a_small_total_is_hidden_and_zeros_are_shown() -> None:
    values = {k("t"): 4, k("a"): 4, k("b"): 0}
    relations = [Relation(k("t"), (k("a"), k("b")))]
    protection = protect(values, relations)
    assert protection.hidden == {k("t"): PRIMARY, k("a"): PRIMARY}
    assert protection.shown(k("b")) == 0


def test_ten_ones_under_a_small_total_hide_a_zero_beside_them() -> None:
    # ten communes with one report each, their EPCI's total 10: all "< 11", yet the total is at
    # least 10 (ten parts of at least 1) — so it is 10 and each part is 1. A zero commune of the
    # EPCI is hidden among them: the parts are no longer known to be ten.
    ones = tuple(k("commune", f"c{i}") for i in range(10))
    zeros = tuple(k("commune", f"z{i}") for i in range(3))
    values = {k("epci"): 10, **{c: 1 for c in ones}, **{z: 0 for z in zeros}}
    relations = [Relation(k("epci"), ones + zeros, zeros=ones + zeros)]
    assert audit(values, [Relation(k("epci"), ones)], {c: PRIMARY for c in (*ones, k("epci"))}, 10)
    protection = protect(values, relations)
    assert protection.hidden[k("commune", "z0")] == ZERO
    assert protection.shown(k("commune", "z0")) == "< 11"
    assert protection.shown(k("commune", "z1")) == 0
    assert audit(values, relations, protection.hidden, 10) == []


def test_a_cell_fixed_by_two_relations_together_is_protected() -> None:
    # area × sub-kind: each row and column has two hidden cells, yet "x" bridges two blocks
    values = {}
    relations = []
    grid = {
        ("r1", "c1"): 5, ("r1", "c2"): 6, ("r1", "c3"): 30,
        ("r2", "c1"): 7, ("r2", "c2"): 8, ("r2", "c3"): 31,
        ("r3", "c3"): 9, ("r3", "c4"): 4, ("r3", "c1"): 40,
        ("r4", "c3"): 3, ("r4", "c4"): 2, ("r4", "c1"): 41,
    }  # fmt: skip
    rows = sorted({r for r, _ in grid})
    cols = sorted({c for _, c in grid})
    for (r, c), v in grid.items():
        values[k(r, c)] = v
    for r in rows:
        values[k(r, "T")] = sum(v for (rr, _), v in grid.items() if rr == r)
        relations.append(Relation(k(r, "T"), tuple(k(r, c) for c in cols if (r, c) in grid)))
    for c in cols:
        values[k("T", c)] = sum(v for (_, cc), v in grid.items() if cc == c)
        relations.append(Relation(k("T", c), tuple(k(r, c) for r in rows if (r, c) in grid)))
    protection = protect(values, relations)
    assert audit(values, relations, protection.hidden, 10) == []


def hierarchical_table(
    rnd: random.Random, communes: int, groups: int, subtypes: int, scale: float
) -> tuple[dict[Key, int], list[Relation]]:
    """Communes in EPCIs in a département × sub-kinds of a type, like a week of the veille."""
    group_of = {f"c{i}": f"e{i % groups}" for i in range(communes)}
    values: dict[Key, int] = {}
    for commune in group_of:
        for s in range(subtypes):
            present = rnd.random() < 0.5
            values[k("commune", commune, f"s{s}")] = (
                int(rnd.expovariate(1 / scale)) if present else 0
            )
    areas = [("commune", c) for c in group_of] + [("epci", f"e{g}") for g in range(groups)]
    for g in range(groups):
        for s in range(subtypes):
            values[k("epci", f"e{g}", f"s{s}")] = sum(
                values[k("commune", c, f"s{s}")] for c in group_of if group_of[c] == f"e{g}"
            )
    for s in range(subtypes):
        values[k("dep", "D", f"s{s}")] = sum(
            values[k("epci", f"e{g}", f"s{s}")] for g in range(groups)
        )
    areas.append(("dep", "D"))
    for area in areas:
        values[k(*area, "T")] = sum(values[k(*area, f"s{s}")] for s in range(subtypes))
    relations = []
    for s in [f"s{i}" for i in range(subtypes)] + ["T"]:
        relations.append(
            Relation(k("dep", "D", s), tuple(k("epci", f"e{g}", s) for g in range(groups)))
        )
        for g in range(groups):
            members = tuple(k("commune", c, s) for c in group_of if group_of[c] == f"e{g}")
            # commune cells are in no other relation: a zero may hide among them
            relations.append(Relation(k("epci", f"e{g}", s), members, zeros=members))
    for area in areas:
        relations.append(Relation(k(*area, "T"), tuple(k(*area, f"s{s}") for s in range(subtypes))))
    return values, relations


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(min_value=0, max_value=10**6),
    communes=st.integers(min_value=2, max_value=40),
    groups=st.integers(min_value=1, max_value=5),
    subtypes=st.integers(min_value=1, max_value=6),
    scale=st.sampled_from([0.7, 2.0, 5.0, 15.0, 60.0]),
)
def test_random_tables_leak_nothing(
    seed: int, communes: int, groups: int, subtypes: int, scale: float
) -> None:
    values, relations = hierarchical_table(random.Random(seed), communes, groups, subtypes, scale)
    protection = protect(values, relations)
    assert audit(values, relations, protection.hidden, 10) == []
    for key, value in values.items():
        shown = protection.shown(key)
        if 1 <= value <= 10:
            assert shown == "< 11"
        elif protection.hidden.get(key) == ZERO:
            assert value == 0 and shown == "< 11"
        elif shown != "secret":
            assert shown == value
    # what is hidden is never zero, and a hidden complement is never a small count
    assert all(values[key] > 10 for key, why in protection.hidden.items() if why == COMPLEMENT)


def test_the_audit_catches_an_unprotected_table() -> None:
    values = {k("t"): 57, k("a"): 3, k("b"): 20, k("c"): 34}
    relations = [Relation(k("t"), (k("a"), k("b"), k("c")))]
    problems = audit(values, relations, {k("a"): PRIMARY}, 10)
    assert problems and any("unsafe" in p or "determined" in p for p in problems)
    assert "small count shown: ('a',)" in audit(values, relations, {}, 10)


@pytest.mark.parametrize("scale", [1.0, 4.0])
def test_a_departement_sized_week_is_protected(scale: float) -> None:
    values, relations = hierarchical_table(random.Random(7), 198, 12, 8, scale)
    protection = protect(values, relations)
    assert audit(values, relations, protection.hidden, 10) == []
