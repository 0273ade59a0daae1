"""The book's training rule transcribed plainly, record by record (the speed baseline).

This is the book's ``train`` method with the CSV already parsed: one forward pass, the
errors, and two outer-product updates per record. :mod:`mynn.train` uses it for
``impl="reference"`` and the benchmark compares the fast path against it.
"""
from __future__ import annotations

import numpy as np
from scipy.special import expit


def train_epoch(wih: np.ndarray, who: np.ndarray, X: np.ndarray, T: np.ndarray, lr: float,
                exact: bool = False) -> float:
    """One epoch over (n, 784) inputs X and (n, 10) targets T; updates wih (H, 784) and
    who (10, H) in place and returns the summed squared error seen before each update."""
    sse = 0.0
    for x, t in zip(X, T):
        h = expit(wih @ x)  # (H, 784) @ (784,) -> (H,)
        o = expit(who @ h)  # (10, H) @ (H,) -> (10,)
        e_o = t - o
        sse += float(e_o @ e_o)
        e_h = who.T @ (e_o * o * (1.0 - o) if exact else e_o)  # (H, 10) @ (10,) -> (H,)
        who += lr * np.outer(e_o * o * (1.0 - o), h)  # (10, H)
        wih += lr * np.outer(e_h * h * (1.0 - h), x)  # (H, 784)
    return sse
