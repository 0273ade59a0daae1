"""When a new model replaces the champion: the promotion rules and their one decision function.

The rules' names and the bounds of ``alpha`` are defined here once; the flows' forms, the CLI
and the registry take them from here. Both models are scored record by record on the same test
records; the decision needs only those two boolean arrays (numpy and scipy only).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

import numpy as np

from mynn.stats import McNemar, mcnemar

Promotion = Literal["mcnemar", "at-least"]
RULES: tuple[str, ...] = get_args(Promotion)
DEFAULT_RULE: Promotion = "mcnemar"
RULES_HELP = ("mcnemar: the new model is right on more test records than the champion and McNemar's "
              "one-sided mid-p is below alpha; at-least: its performance is at least the champion's")
#: ``alpha`` lies strictly between these two (the significance level of the mcnemar rule).
ALPHA_GT, ALPHA_LT = 0.0, 1.0
DEFAULT_ALPHA = 0.05


def check_rule(rule: str) -> str:
    if rule not in RULES:
        raise ValueError(f"promotion must be one of {RULES}, not {rule!r}")
    return rule


def check_alpha(alpha: object) -> float:
    """``alpha`` as a float, or ValueError (also for nan, booleans and strings)."""
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not ALPHA_GT < float(alpha) < ALPHA_LT:
        raise ValueError(f"alpha must be a number in ({ALPHA_GT:g}, {ALPHA_LT:g}), not {alpha!r}")
    return float(alpha)


@dataclass(frozen=True)
class Decision:
    """Whether the new model replaces the champion, and why (``reason`` reads as a sentence)."""

    promoted: bool
    reason: str
    champion_performance: float
    test: McNemar


def decide(rule: str, alpha: float, new_correct: np.ndarray, old_correct: np.ndarray, versus: str) -> Decision:
    """Apply ``rule`` to per-record correctness (m,) bool of the new model and the champion.

    ``versus`` names the champion and the test set in the reason, e.g. "champion v3 on the
    same 10000 test records (ab12...)"."""
    check_rule(rule)
    alpha = check_alpha(alpha)
    test = mcnemar(new_correct, old_correct)
    new_n, old_n = int(np.count_nonzero(new_correct)), int(np.count_nonzero(old_correct))
    new_perf, old_perf = float(np.mean(new_correct)), float(np.mean(old_correct))
    counts = f"b={test.b}, c={test.c}, McNemar mid-p {test.p_value:.4g}"
    if rule == "at-least":
        promoted = new_perf >= old_perf
        reason = (f"performance {new_perf:.4f} {'>=' if promoted else '<'} {old_perf:.4f} of {versus} "
                  f"(rule at-least; {counts})")
    elif new_n <= old_n:
        promoted = False
        reason = f"right on {new_n} records, not more than the {old_n} of {versus} ({counts})"
    else:
        promoted = test.p_value < alpha
        reason = f"right on {new_n} records vs {old_n} of {versus}; {counts} {'<' if promoted else '>='} alpha {alpha:g}"
    return Decision(promoted, reason, old_perf, test)
