"""The Poisson upper tail against an exact sum (80-digit decimals), small and large means."""

from __future__ import annotations

from decimal import Decimal, getcontext

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from webhook.veille.poisson import upper_tail


def exact(k: int, lam: float) -> float:
    getcontext().prec = 80
    mean = Decimal(lam)
    term = (-mean).exp()
    total = Decimal(0)
    for i in range(k):
        total += term
        term = term * mean / (i + 1)
    return float(1 - total)


@pytest.mark.parametrize(
    ("k", "lam", "expected"),
    [
        (0, 0.2, 1.0),
        (3, 0.2, 0.0011484812448621),
        (4, 0.2, 5.684024075815662e-05),
        (6, 0.2, 7.490854474986894e-08),
        (12, 2.0, 1.3646151596e-06),
        (1000, 1000.0, 0.504205244180),
    ],
    ids=["zero", "three-floor", "four-floor", "six-floor", "twelve-of-two", "large"],
)
def test_known_values(k: int, lam: float, expected: float) -> None:
    assert upper_tail(k, lam) == pytest.approx(expected, rel=1e-4)


@settings(max_examples=200, deadline=None)
@given(k=st.integers(min_value=1, max_value=400), lam=st.floats(min_value=0.01, max_value=300))
def test_matches_the_exact_sum(k: int, lam: float) -> None:
    value = exact(k, lam)
    if value > 1e-250:
        assert upper_tail(k, lam) == pytest.approx(value, rel=1e-9, abs=1e-15)


@settings(max_examples=100, deadline=None)
@given(k=st.integers(min_value=1, max_value=200), lam=st.floats(min_value=0.01, max_value=100))
def test_decreases_with_the_count(k: int, lam: float) -> None:
    assert upper_tail(k + 1, lam) <= upper_tail(k, lam)
