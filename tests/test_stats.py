"""mynn.stats.mcnemar: McNemar's exact test, one-sided, mid-p and plain exact p."""
from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from mynn.stats import McNemar, mcnemar, spread


def paired(b: int, c: int, both: int = 0, neither: int = 0, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Correctness arrays with b (new only), c (old only), both and neither records, shuffled."""
    new = np.array([True] * b + [False] * c + [True] * both + [False] * neither)
    old = np.array([False] * b + [True] * c + [True] * both + [False] * neither)
    order = np.random.default_rng(seed).permutation(len(new))
    return new[order], old[order]


@pytest.mark.parametrize(("b", "c", "mid_p", "exact_p"), [
    # n = 12: P(X >= 10) = (66 + 12 + 1) / 4096, P(X = 10) = 66 / 4096
    (10, 2, (79 - 33) / 4096, 79 / 4096),
    # n = 10: P(X >= 3) = 1 - (1 + 10 + 45) / 1024 = 968 / 1024, P(X = 3) = 120 / 1024
    (3, 7, (968 - 60) / 1024, 968 / 1024),
    # n = 5, b = 5: P(X >= 5) = 1 / 32, P(X = 5) = 1 / 32
    (5, 0, 0.5 / 32, 1 / 32),
    # n = 5, b = 0: P(X >= 0) = 1, P(X = 0) = 1 / 32
    (0, 5, 1 - 0.5 / 32, 1.0),
    # b = c: mid-p is exactly 1/2; n = 4: P(X >= 2) = (6 + 4 + 1) / 16, P(X = 2) = 6 / 16
    (2, 2, 0.5, 11 / 16),
    (0, 0, 1.0, 1.0),  # no discordant records: no evidence at all
])
def test_against_hand_computed_values(b, c, mid_p, exact_p):
    new, old = paired(b, c, both=7, neither=4)

    result = mcnemar(new, old)

    assert isinstance(result, McNemar)
    assert (result.b, result.c, result.n) == (b, c, b + c)
    assert result.p_value == pytest.approx(mid_p, rel=1e-12, abs=1e-15)
    assert result.exact_p == pytest.approx(exact_p, rel=1e-12, abs=1e-15)


def test_concordant_records_do_not_matter():
    a = mcnemar(*paired(10, 2))
    b = mcnemar(*paired(10, 2, both=500, neither=300, seed=3))
    assert a == b


@pytest.mark.parametrize(("b", "c"), [(1, 0), (0, 1), (10, 2), (3, 7), (25, 10), (60, 40), (200, 170)])
def test_exact_p_is_scipy_binomtest_and_mid_p_is_smaller(b, c):
    result = mcnemar(*paired(b, c, both=3))

    expected = stats.binomtest(b, b + c, 0.5, alternative="greater").pvalue
    assert result.exact_p == pytest.approx(expected, rel=1e-12)
    # the mid-p value subtracts half the probability of the observed b, which is > 0
    assert result.p_value < result.exact_p
    assert result.exact_p - result.p_value == pytest.approx(0.5 * stats.binom.pmf(b, b + c, 0.5), rel=1e-9)
    assert 0.0 < result.p_value < 1.0


@pytest.mark.parametrize(("b", "c"), [(0, 0), (1, 0), (10, 2), (3, 7), (4, 4), (33, 50)])
def test_swapping_the_models_gives_the_complementary_mid_p(b, c):
    new, old = paired(b, c, both=5, neither=2)

    forward, backward = mcnemar(new, old), mcnemar(old, new)

    assert (backward.b, backward.c) == (forward.c, forward.b)
    if b + c:
        # P(X >= b) - P(X = b)/2 + P(X >= c) - P(X = c)/2 = 1, since X and n - X have the same law
        assert forward.p_value + backward.p_value == pytest.approx(1.0, abs=1e-12)
    else:
        assert forward.p_value == backward.p_value == 1.0
    if b == c:
        assert forward == McNemar(c, b, b + c, forward.p_value, forward.exact_p) == backward


def test_more_discordant_evidence_gives_a_smaller_p_value():
    ps = [mcnemar(*paired(2 * k, k)).p_value for k in (1, 2, 5, 10, 20)]
    assert ps == sorted(ps, reverse=True) and ps[-1] < 0.01 < ps[0]


def test_refuses_arrays_that_are_not_paired_booleans():
    new, old = paired(3, 2)
    with pytest.raises(ValueError, match="differ"):
        mcnemar(new, old[:-1])
    with pytest.raises(TypeError, match="boolean"):
        mcnemar(new.astype(int), old)
    with pytest.raises(ValueError, match="one-dimensional"):
        mcnemar(new[None, :], old[None, :])


# ------------------------------------------------------------------------------------ spread


def test_spread_against_hand_computed_values():
    s = spread([0.9, 0.92, 0.94])
    assert (s.n, s.min, s.max) == (3, 0.9, 0.94)
    assert s.mean == pytest.approx(0.92)
    assert s.std == pytest.approx(0.02)  # sqrt(((-0.02)**2 + 0 + 0.02**2) / (3 - 1))


def test_spread_of_one_value_has_no_std_and_of_none_is_refused():
    assert spread([0.5]).to_dict() == {"n": 1, "mean": 0.5, "std": 0.0, "min": 0.5, "max": 0.5}
    with pytest.raises(ValueError, match="non-empty"):
        spread([])
