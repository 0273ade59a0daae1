"""Compiled inner loops of the exact per-record rule (numba, compiled on first use).

The per-record rule is sequential, but most of its arithmetic is not. Within a block of
B records the input weights are ``wih_k = W0 + sum_{j<k} D[j] (x) x_j`` (rank-1 updates not
yet applied), so the pre-activation of record k is

    wih_k @ x_k = (X_B @ W0.T)[k] + sum_{j<k} D[j] * (x_j . x_k)
                = P[k]            + sum_{j<k} D[j] * G[k, j]

``P`` and the Gram matrix ``G`` are two matrix products (BLAS-3), the block's updates are
one more (``W0 += D.T @ X_B``), and only the O(B*H + 30*H) remainder runs record by record
here. The result equals the book's rule up to floating-point reassociation.
"""
from __future__ import annotations

import math

import numba
import numpy as np


# reassoc/contract let LLVM vectorise the dot products; no approximate functions (afn).
# The result is deterministic for a given machine and build, as required.
_FLAGS = {"reassoc", "contract", "nsz"}


@numba.njit(cache=True, nogil=True, fastmath=_FLAGS)
def block_step(P, G, who, T, lr, exact, D):
    """Train on one block of B records, the book's rule, one record at a time.

    Args:
        P: (B, H) pre-activations ``X_B @ W0.T`` with W0 the input weights at block start.
        G: (B, B) Gram matrix ``X_B @ X_B.T``; only ``G[k, j]`` with j < k is read.
        who: (10, H) output weights, updated in place record by record.
        T: (B, 10) targets.
        lr: learning rate.
        exact: False for the book's hidden error ``who.T @ e_o``; True for the exact
            gradient ``who.T @ (e_o * o * (1 - o))``.
        D: (B, H) output: ``D[k] = lr * e_h * h * (1 - h)``; the block's update of wih is
            ``D.T @ X_B`` (H, B) @ (B, 784).

    Returns:
        The sum over the block of ``sum((t - o) ** 2)`` (before each record's update).
    """
    B, H = P.shape
    n_out = who.shape[0]
    a = np.empty(H, dtype=P.dtype)
    h = np.empty(H, dtype=P.dtype)
    o = np.empty(n_out, dtype=P.dtype)
    e_src = np.empty(n_out, dtype=P.dtype)
    e_h = np.empty(H, dtype=P.dtype)
    grad_o = np.empty(n_out, dtype=P.dtype)
    sse = 0.0
    for k in range(B):
        for m in range(H):
            a[m] = P[k, m]
        for j in range(k):  # pending rank-1 corrections: (H,) += scalar * (H,)
            g = G[k, j]
            for m in range(H):
                a[m] += g * D[j, m]
        for m in range(H):
            h[m] = 1.0 / (1.0 + math.exp(-a[m]))
        for i in range(n_out):  # (10, H) @ (H,) -> (10,)
            s = 0.0
            for m in range(H):
                s += who[i, m] * h[m]
            o[i] = 1.0 / (1.0 + math.exp(-s))
        for i in range(n_out):
            e = T[k, i] - o[i]
            slope = o[i] * (1.0 - o[i])
            e_src[i] = e * slope if exact else e
            grad_o[i] = lr * (e * slope)
        # The error sum in a loop of its own: a loop that also stores gets runtime overlap
        # checks that pick the vector or the scalar path by the arrays' addresses, and with
        # reassoc the two paths add in different orders (train_mse then varied by an ulp).
        for i in range(n_out):
            e = T[k, i] - o[i]
            sse += e * e
        for m in range(H):  # e_h = who.T @ e_src with who before this record's update
            e_h[m] = 0.0
        for i in range(n_out):
            e = e_src[i]
            for m in range(H):
                e_h[m] += who[i, m] * e
        for m in range(H):
            D[k, m] = lr * (e_h[m] * h[m] * (1.0 - h[m]))
        for i in range(n_out):  # who += lr * outer(e_o * o * (1 - o), h)
            g = grad_o[i]
            for m in range(H):
                who[i, m] += g * h[m]
    return sse
