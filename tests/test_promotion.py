"""mynn.promotion: the rules' one decision function, checked against hand-computed cases, and the
one source of the rules' names and alpha's bounds (the CLI and the flows' forms use it)."""
from __future__ import annotations

import math
import typing

import numpy as np
import pytest

from mynn import promotion
from mynn.promotion import check_alpha, check_rule, decide


def correct(right: int, total: int, offset: int = 0) -> np.ndarray:
    """(total,) bool: records offset..offset+right-1 right (cyclically)."""
    out = np.zeros(total, bool)
    out[[(offset + i) % total for i in range(right)]] = True
    return out


def test_mcnemar_promotes_when_clearly_better_at_alpha():
    new, old = correct(8, 10), correct(3, 10)  # b = 5 (records 3..7), c = 0
    d = decide("mcnemar", 0.05, new, old, "champion v1")
    # n = 5 discordant, all for the new model: mid-p = 0.5 * P(X = 5) = 0.5 / 32
    assert (d.test.b, d.test.c) == (5, 0)
    assert d.test.p_value == pytest.approx(0.5 / 32)
    assert d.promoted and d.champion_performance == pytest.approx(0.3)
    assert "right on 8 records vs 3 of champion v1" in d.reason and "< alpha 0.05" in d.reason
    stricter = decide("mcnemar", 0.01, new, old, "champion v1")
    assert not stricter.promoted and ">= alpha 0.01" in stricter.reason


def test_mcnemar_never_promotes_a_model_right_on_no_more_records():
    new, old = correct(5, 10), correct(5, 10, offset=5)  # b = c = 5: mid-p 0.5
    d = decide("mcnemar", 0.99, new, old, "champion v2")
    assert not d.promoted
    assert d.reason.startswith("right on 5 records, not more than the 5 of champion v2")


def test_at_least_promotes_on_equal_performance_and_not_below():
    same = decide("at-least", 0.05, correct(5, 10), correct(5, 10, offset=5), "v")
    assert same.promoted and "performance 0.5000 >= 0.5000" in same.reason and "rule at-least" in same.reason
    worse = decide("at-least", 0.05, correct(4, 10), correct(5, 10), "v")
    assert not worse.promoted and "0.4000 < 0.5000" in worse.reason


@pytest.mark.parametrize("alpha", [0, 1, 1.5, -0.1, math.nan, True, "0.05", None])
def test_alpha_outside_its_bounds_is_refused(alpha):
    with pytest.raises(ValueError, match=r"alpha must be a number in \(0, 1\)"):
        check_alpha(alpha)


def test_alpha_inside_its_bounds_is_a_float():
    assert check_alpha(0.05) == 0.05 and isinstance(check_alpha(1e-9), float)


def test_an_unknown_rule_is_refused_naming_the_rules():
    with pytest.raises(ValueError, match="'mcnemar', 'at-least'"):
        check_rule("best")


def test_the_cli_and_the_flow_forms_take_the_rules_and_bounds_from_here():
    from flows.cli import build_parser
    from flows.params import Alpha, Promotion
    from flows.train_flow import train_flow

    assert typing.get_args(Promotion) == promotion.RULES == ("mcnemar", "at-least")
    train = build_parser()._subparsers._group_actions[0].choices["train"]
    choices = {a.dest: a.choices for a in train._actions}
    assert tuple(choices["promotion"]) == promotion.RULES
    schema = train_flow.parameters.model_dump()["properties"]
    assert schema["alpha"]["exclusiveMinimum"] == promotion.ALPHA_GT
    assert schema["alpha"]["exclusiveMaximum"] == promotion.ALPHA_LT
    assert schema["promotion"]["enum"] == list(promotion.RULES)
    del Alpha
