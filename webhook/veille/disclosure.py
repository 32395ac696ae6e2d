"""Small-count protection of published tables, as public statisticians do it.

A table is a set of cells (counts) tied by additive relations (``total = sum of parts``: the
communes of an EPCI, the communes of a département, the sub-kinds of a type). Then:

1. **Primary suppression**: every count from 1 to ``max_small`` (10) is hidden, shown "< 11".
   Zeros are shown: a hidden cell is never zero.
2. **Secondary suppression** (complements, shown "secret"): a relation must not let an observer
   who knows the published cells and the rule (a "< 11" cell is between 1 and 10, a secret one
   is at least 11) work out a hidden cell. A relation is unsafe when

   - it has exactly one hidden member (the total minus the visible parts gives it), or
   - the bounds of its hidden members pin one of them to a single value (two hidden cells known
     to sum to 2 are both 1; a "< 11" cell beside a secret one, summing to 12, is 1), or
   - its total is visible and its hidden parts sum to between 1 and ``max_small`` (a small
     count recomputed for a group of cells).

   An unsafe relation gets one more hidden member — its smallest visible non-zero part, else its
   total — until it is safe; a new hidden cell re-checks every relation it belongs to.
3. **Audit of the whole table**: the relations together must not determine a hidden cell
   either (e.g. a cell that bridges two groups of hidden cells). Every connected group of hidden
   cells is solved as a linear system; a hidden cell whose value is fixed by the system
   (its unit vector lies in the row space of the relations) gets a complement in one of its
   relations, and steps 2-3 run again.

What is not covered (documented in README, "Cellule de veille"): bounds obtained by combining
several relations at once (linear programming), and differences between releases (each
published week is computed once from complete weeks, so a week's cells do not change between two
releases unless a ticket is marked as a duplicate).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

PRIMARY = "primary"
COMPLEMENT = "complement"
# a zero hidden among the small counts of a relation whose non-zero parts would otherwise give
# themselves away by their number (ten parts of at least 1 under a total of at most 10)
ZERO = "zero"

Key = tuple[str, ...]


@dataclass(frozen=True)
class Relation:
    total: Key
    parts: tuple[Key, ...]
    # zero parts that belong to no other relation: the last resort of secondary suppression
    zeros: tuple[Key, ...] = ()


@dataclass
class Protection:
    """The values of a table and which of them are hidden (and why)."""

    values: Mapping[Key, int]
    hidden: dict[Key, str]
    max_small: int

    def is_hidden(self, key: Key) -> bool:
        return key in self.hidden

    def shown(self, key: Key) -> int | str:
        """The published value: the count, or the label of a hidden cell."""
        status = self.hidden.get(key)
        if status in (PRIMARY, ZERO):
            return f"< {self.max_small + 1}"
        if status == COMPLEMENT:
            return "secret"
        return int(self.values.get(key, 0))


def _bounds(status: str, max_small: int, low: float = 1.0) -> tuple[float, float]:
    if status == ZERO:
        return 0.0, float(max_small)
    return (low, float(max_small)) if status == PRIMARY else (float(max_small + 1), math.inf)


def relation_unsafe(
    relation: Relation, values: Mapping[Key, int], hidden: Mapping[Key, str], max_small: int
) -> bool:
    """Whether the relation lets a hidden member be worked out (see the module docstring)."""
    # members as (key, coefficient) in  sum(parts) - total = 0
    members = [(p, 1) for p in relation.parts] + [(relation.total, -1)]
    unknown = [(k, a) for k, a in members if k in hidden]
    if not unknown:
        return False
    if len(unknown) == 1:
        return True
    known = -sum(a * values.get(k, 0) for k, a in members if k not in hidden)
    if relation.total not in hidden:
        hidden_parts = values.get(relation.total, 0) - sum(
            values.get(p, 0) for p in relation.parts if p not in hidden
        )
        if 1 <= hidden_parts <= max_small:
            return True
    # once a zero hides among them, no "< 11" of the relation is known to be at least 1
    low = 0.0 if any(hidden[k] == ZERO for k, _ in unknown) else 1.0
    bounds = [_bounds(hidden[k], max_small, low) for k, _ in unknown]
    # range of a*x for each unknown
    terms = [
        (lo, hi) if a > 0 else (-hi, -lo) for (lo, hi), (_, a) in zip(bounds, unknown, strict=True)
    ]
    lo_sum = sum(t[0] for t in terms)
    hi_sum = sum(t[1] for t in terms)
    for index, ((_, a), (lo_m, hi_m)) in enumerate(zip(unknown, bounds, strict=True)):
        t_lo, t_hi = terms[index]
        others_lo = lo_sum - t_lo if math.isfinite(t_lo) else _sum_except(terms, index, 0)
        others_hi = hi_sum - t_hi if math.isfinite(t_hi) else _sum_except(terms, index, 1)
        # a * x = known - others
        low, high = known - others_hi, known - others_lo
        if a < 0:
            low, high = -high, -low
        low, high = max(low, lo_m), min(high, hi_m)
        if low >= high:
            return True
    return False


def _sum_except(terms: Sequence[tuple[float, float]], index: int, side: int) -> float:
    return sum(t[side] for i, t in enumerate(terms) if i != index)


class _Table:
    def __init__(
        self, values: Mapping[Key, int], relations: Iterable[Relation], max_small: int
    ) -> None:
        self.values = values
        self.max_small = max_small
        self.relations: list[Relation] = []
        for relation in relations:
            # zero cells are published and add nothing: keep the non-zero members only
            parts = tuple(sorted(p for p in set(relation.parts) if values.get(p, 0)))
            zeros = tuple(sorted(p for p in set(relation.zeros) if not values.get(p, 0)))
            if values.get(relation.total, 0) or parts:
                self.relations.append(Relation(relation.total, parts, zeros))
        self.by_cell: dict[Key, list[int]] = {}
        for index, relation in enumerate(self.relations):
            for key in (relation.total, *relation.parts):
                self.by_cell.setdefault(key, []).append(index)
        self.hidden: dict[Key, str] = {k: PRIMARY for k, v in values.items() if 1 <= v <= max_small}

    def _complement_for(self, index: int) -> tuple[Key, str] | None:
        relation = self.relations[index]
        visible = [(self.values[p], p) for p in relation.parts if p not in self.hidden]
        if visible:
            return min(visible)[1], COMPLEMENT
        if relation.total not in self.hidden and self.values.get(relation.total, 0):
            return relation.total, COMPLEMENT
        for zero in relation.zeros:
            if zero not in self.hidden:
                # the zero joins the relation's parts (value 0), hidden like a small count
                self.relations[index] = Relation(
                    relation.total, (*relation.parts, zero), relation.zeros
                )
                self.by_cell.setdefault(zero, []).append(index)
                return zero, ZERO
        return None

    def secondary(self, pending: Iterable[int]) -> None:
        queue = deque(pending)
        queued = set(queue)
        while queue:
            index = queue.popleft()
            queued.discard(index)
            relation = self.relations[index]
            if not relation_unsafe(relation, self.values, self.hidden, self.max_small):
                continue
            chosen = self._complement_for(index)
            if chosen is None:
                continue  # every member that could be hidden is hidden already
            key, status = chosen
            self.hidden[key] = status
            for other in (index, *self.by_cell.get(key, ())):
                if other not in queued:
                    queue.append(other)
                    queued.add(other)

    def components(self) -> list[tuple[list[Key], list[int]]]:
        """Groups of hidden cells linked by relations, with the relations that involve them."""
        parent: dict[Key, Key] = {k: k for k in self.hidden}

        def find(key: Key) -> Key:
            while parent[key] != key:
                parent[key] = parent[parent[key]]
                key = parent[key]
            return key

        for relation in self.relations:
            members = [k for k in (relation.total, *relation.parts) if k in self.hidden]
            for other in members[1:]:
                a, b = find(members[0]), find(other)
                if a != b:
                    parent[max(a, b)] = min(a, b)
        cells: dict[Key, list[Key]] = {}
        for key in sorted(self.hidden):
            cells.setdefault(find(key), []).append(key)
        rows: dict[Key, set[int]] = {}
        for key in self.hidden:
            rows.setdefault(find(key), set()).update(self.by_cell.get(key, ()))
        return [(cells[root], sorted(rows.get(root, ()))) for root in sorted(cells)]

    def determined(self, shortcut: bool = True) -> list[tuple[Key, list[int]]]:
        """Hidden cells whose value the relations fix (linear algebra, per component), each
        with the relations that fix it (those of a combination that gives it), then the other
        relations of its component. ``shortcut``: skip the components that are safe trees (see
        ``_is_safe_tree``); the audit solves every component."""
        found: list[tuple[Key, list[int]]] = []
        for cells, rows in self.components():
            if not rows or (shortcut and self._is_safe_tree(cells, rows)):
                continue
            column = {k: j for j, k in enumerate(cells)}
            matrix = np.zeros((len(rows), len(cells)))
            for i, index in enumerate(rows):
                relation = self.relations[index]
                for part in relation.parts:
                    if part in column:
                        matrix[i, column[part]] += 1.0
                if relation.total in column:
                    matrix[i, column[relation.total]] -= 1.0
            u, singular, vt = np.linalg.svd(matrix, full_matrices=False)
            if not singular.size:
                continue
            rank = int(np.sum(singular > 1e-9 * max(1.0, float(singular[0]))))
            if rank == 0:
                continue
            # e_j lies in the row space iff its projection on it has norm 1
            norms = np.sum(vt[:rank] ** 2, axis=0)
            for j in np.nonzero(norms > 1 - 1e-9)[0]:
                # the combination of relations that gives cell j: A^T w = e_j
                weights = u[:, :rank] @ (vt[:rank, j] / singular[:rank])
                involved = [rows[i] for i in np.nonzero(np.abs(weights) > 1e-9)[0]]
                found.append((cells[j], involved + [r for r in rows if r not in involved]))
        return found

    def _is_safe_tree(self, cells: list[Key], rows: list[int]) -> bool:
        """A component whose cells and relations form a tree, every relation with two hidden
        members or more, fixes no cell: a change of one cell can always be balanced by another
        hidden member of each of its relations, and the balancing never comes back (no cycle).
        Then the linear algebra is not needed (most components of a table are such trees)."""
        edges = 0
        for index in rows:
            relation = self.relations[index]
            hidden = sum(1 for k in (relation.total, *relation.parts) if k in self.hidden)
            if hidden < 2:
                return False
            edges += hidden
        return edges == len(cells) + len(rows) - 1

    def repair(self, key: Key, rows: list[int]) -> bool:
        """Hide one more cell so that ``key`` is no longer fixed. Candidates: the visible
        non-zero members of the first relations of ``rows`` that have some (the relations that
        fix it come first). Preferred: a candidate whose other relations already hold hidden
        cells — it closes a cycle of hidden cells, which a linear combination cannot undo —,
        then the smallest."""
        for index in rows:
            relation = self.relations[index]
            candidates = [
                (-self._ties(member, index), self.values[member], member)
                for member in (*relation.parts, relation.total)
                if member not in self.hidden and self.values.get(member, 0)
            ]
            if candidates:
                chosen = min(candidates)[2]
                self.hidden[chosen] = COMPLEMENT
                self.secondary(self.by_cell.get(chosen, ()))
                return True
        return False

    def _ties(self, key: Key, through: int) -> int:
        """How many relations of ``key``, other than ``through``, hold a hidden cell."""
        return sum(
            1
            for index in self.by_cell.get(key, ())
            if index != through
            and any(
                k in self.hidden
                for k in (self.relations[index].total, *self.relations[index].parts)
            )
        )


def protect(
    values: Mapping[Key, int], relations: Iterable[Relation], *, max_small: int = 10
) -> Protection:
    """Primary and secondary suppression of a table (see the module docstring)."""
    table = _Table(values, relations, max_small)
    table.secondary(range(len(table.relations)))
    while True:
        repaired = False
        for key, rows in table.determined():
            # every fixed cell gets its complement in this round (a cell hidden by an earlier
            # repair of the round may already free it: the next round checks again)
            if key in table.hidden and table.repair(key, rows):
                repaired = True
        if not repaired:
            break
    return Protection(values=values, hidden=table.hidden, max_small=max_small)


def audit(
    values: Mapping[Key, int],
    relations: Iterable[Relation],
    hidden: Mapping[Key, str],
    max_small: int,
) -> list[str]:
    """What an observer could work out from a published table (empty: nothing). For tests and
    for ``bench-veille``'s check."""
    table = _Table(values, relations, max_small)
    table.hidden = dict(hidden)
    for index, relation in enumerate(table.relations):
        extra = tuple(z for z in relation.zeros if hidden.get(z) == ZERO)
        if extra:
            table.relations[index] = Relation(
                relation.total, (*relation.parts, *extra), relation.zeros
            )
            for zero in extra:
                table.by_cell.setdefault(zero, []).append(index)
    problems = [
        f"small count shown: {k}"
        for k, v in values.items()
        if 1 <= v <= max_small and k not in hidden
    ]
    problems += [
        f"unsafe relation: {r.total}"
        for r in table.relations
        if relation_unsafe(r, values, table.hidden, max_small)
    ]
    problems += [f"determined: {k}" for k, _ in table.determined(shortcut=False)]
    return problems
