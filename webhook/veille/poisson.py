"""Poisson upper tail P(X >= k) for X ~ Poisson(lam), in pure Python (no scipy).

P(X >= k) is the regularised lower incomplete gamma function P(k, lam); it is computed by its
series when lam < k + 1 and by Lentz's continued fraction for its complement otherwise
(Numerical Recipes, §6.2), in log space: accurate for the small expectations of a commune and the
large ones of a département.
"""

from __future__ import annotations

import math

_EPS = 1e-15
_TINY = 1e-300
_MAX_ITER = 100_000


def _series(a: float, x: float) -> float:
    """P(a, x) by its series (x < a + 1)."""
    term = total = 1.0 / a
    n = a
    for _ in range(_MAX_ITER):
        n += 1
        term *= x / n
        total += term
        if abs(term) < abs(total) * _EPS:
            break
    return total * math.exp(-x + a * math.log(x) - math.lgamma(a))


def _continued_fraction(a: float, x: float) -> float:
    """Q(a, x) = 1 - P(a, x) by Lentz's method (x >= a + 1)."""
    b = x + 1 - a
    c = 1 / _TINY
    d = 1 / b
    h = d
    for i in range(1, _MAX_ITER):
        an = -i * (i - a)
        b += 2
        d = an * d + b
        d = _TINY if abs(d) < _TINY else d
        c = b + an / c
        c = _TINY if abs(c) < _TINY else c
        d = 1 / d
        delta = d * c
        h *= delta
        if abs(delta - 1) < _EPS:
            break
    return math.exp(-x + a * math.log(x) - math.lgamma(a)) * h


def upper_tail(k: int, lam: float) -> float:
    """P(X >= k) for X ~ Poisson(lam)."""
    if k <= 0:
        return 1.0
    if lam <= 0:
        return 0.0
    if lam < k + 1:
        value = _series(float(k), lam)
    else:
        value = 1.0 - _continued_fraction(float(k), lam)
    return min(1.0, max(0.0, value))
