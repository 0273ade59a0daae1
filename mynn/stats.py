"""Statistics for comparing two classifiers on the same test records (numpy and scipy only).

McNemar's test looks only at the *discordant* records, where exactly one of the two models
is right; records both get right (or both get wrong) say nothing about which is better.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from fractions import Fraction
from math import comb


@dataclass(frozen=True)
class McNemar:
    """McNemar's exact test that a new model is better than an old one on paired records.

    Attributes:
        b: records the new model gets right and the old one wrong.
        c: records the old model gets right and the new one wrong.
        n: the discordant records, ``b + c``.
        p_value: one-sided **mid-p**: ``P(X >= b) - 0.5 * P(X = b)`` for
            ``X ~ Binomial(n, 1/2)`` (1.0 when ``n == 0``).
        exact_p: the plain one-sided exact p, ``P(X >= b)`` (1.0 when ``n == 0``), as
            ``scipy.stats.binomtest(b, n, 0.5, alternative="greater").pvalue``.
    """

    b: int
    c: int
    n: int
    p_value: float
    exact_p: float

    def to_dict(self) -> dict:
        return asdict(self)


def _correctness(name: str, values: np.ndarray) -> np.ndarray:
    arr = np.asarray(values)
    if arr.dtype != np.bool_:
        raise TypeError(f"mcnemar: {name} must be a boolean array (per-record correctness), not {arr.dtype}")
    if arr.ndim != 1:
        raise ValueError(f"mcnemar: {name} must be one-dimensional (m,), not {arr.shape}")
    return arr


def mcnemar(new_correct: np.ndarray, old_correct: np.ndarray) -> McNemar:
    """McNemar's exact test, one-sided: is the new model better than the old one?

    ``new_correct`` and ``old_correct`` are boolean arrays (m,): whether each model got
    record i right, on the *same* m records in the same order. With

        b = #(new right, old wrong),   c = #(old right, new wrong),   n = b + c,

    under the null hypothesis (both models equally good) each discordant record is equally
    likely to favour either model, so ``b ~ Binomial(n, 1/2)`` given n. The one-sided
    exact p-value is ``P(X >= b)``; the **mid-p** value, returned as ``p_value``, counts
    only half the probability of the observed value,

        p_value = P(X >= b) - 0.5 * P(X = b) = P(X > b) + 0.5 * P(X = b),

    which is less conservative than the exact test (its size is closer to the nominal
    level). Both are 1.0 when there are no discordant records (n = 0). For b = c the
    mid-p value is exactly 0.5, and ``p(b, c) + p(c, b) == 1``.
    """
    new = _correctness("new_correct", new_correct)
    old = _correctness("old_correct", old_correct)
    if new.shape != old.shape:
        raise ValueError(f"mcnemar: new_correct {new.shape} and old_correct {old.shape} differ in length")
    b = int(np.count_nonzero(new & ~old))
    c = int(np.count_nonzero(old & ~new))
    n = b + c
    if n == 0:
        return McNemar(b, c, 0, 1.0, 1.0)
    above, at = _upper_tail(b, n)
    mid = float(Fraction(2 * above + at, 2 ** (n + 1)))  # (P(X > b) + P(X = b) / 2), exact then rounded once
    exact = float(Fraction(above + at, 2 ** n))  # P(X >= b)
    return McNemar(b, c, n, mid, exact)


def _upper_tail(b: int, n: int) -> tuple[int, int]:
    """``(sum of C(n, k) for k > b, C(n, b))``: Binomial(n, 1/2) probabilities times 2**n, as
    exact integers (no scipy.stats: its import alone costs the command most of a second)."""
    at = comb(n, b)
    above, term = 0, at
    for k in range(b, n):
        term = term * (n - k) // (k + 1)  # C(n, k + 1)
        above += term
    return above, at


@dataclass(frozen=True)
class Spread:
    """Repeated observations of one number (e.g. one config over seeds)."""

    n: int
    mean: float
    std: float  # sample standard deviation (ddof=1); 0.0 for a single observation
    min: float
    max: float

    def to_dict(self) -> dict:
        return asdict(self)


def spread(values) -> Spread:
    """n, mean, std (ddof=1), min and max of a non-empty sequence of numbers."""
    a = np.asarray(values, dtype=float)
    if a.ndim != 1 or a.size == 0:
        raise ValueError(f"spread: needs a non-empty 1-d sequence of numbers, got shape {a.shape}")
    return Spread(int(a.size), float(a.mean()), float(a.std(ddof=1)) if a.size > 1 else 0.0,
                  float(a.min()), float(a.max()))
