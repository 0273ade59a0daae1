"""Compiled inner loop of the exact per-record rule (numba, compiled on first use).

The book's input is ``x = 0.01 + y`` with ``y = pixel / 255 * 0.99``, and ``y`` is zero
wherever the pixel is: 81 % of MNIST's pixels, so a record has about 150 non-zero ``y``.
The rule touches ``wih`` twice per record, ``wih @ x`` and ``wih += d (x) x``; both split
into a sparse part through ``y`` and a part through the constant 0.01 that reaches every
column. Holding the input weights as ``wih = W' + c 1^T`` (``c``: (H,)) with the row sums
``u = W' 1`` kept alongside:

    wih @ x        = W' @ y + 0.01 * u + sum(x) * c          (only y's non-zeros of W')
    wih += d (x) x:  W'[:, nz] += d (x) y[nz];  c += 0.01 * d;  u += sum(y) * d

Nothing is approximated: this is the book's rule with its sums taken in another order, so
it agrees with a plain transcription up to floating-point rounding (tests: 1e-9), at about
2 * 150 * H instead of 4 * 784 * H multiply-adds per record for MNIST.
"""
from __future__ import annotations

import math

import numba
import numpy as np


# reassoc/contract let LLVM vectorise the dot products; no approximate functions (afn).
# The result is deterministic for a given machine and build, as required.
_FLAGS = {"reassoc", "contract", "nsz"}


@numba.njit(cache=True, nogil=True)
def sparse_inputs(pixels, table):
    """The non-zero inputs of each record, in pixel order (compressed sparse rows).

    Args:
        pixels: (n, 784) uint8.
        table: (256,) pixel value -> ``y`` (``table[0]`` is 0); its dtype is the result's.

    Returns:
        (indptr (n + 1,) int64, indices (nnz,) int32, values (nnz,), ysum (n,)): record k's
        non-zero pixels are ``indices[indptr[k]:indptr[k + 1]]`` with ``y`` values
        ``values[...]``; ``ysum[k]`` is the sum of its ``y``.
    """
    n, n_pix = pixels.shape
    indptr = np.zeros(n + 1, dtype=np.int64)
    for k in range(n):
        count = 0
        for p in range(n_pix):
            if pixels[k, p] != 0:
                count += 1
        indptr[k + 1] = indptr[k] + count
    indices = np.empty(indptr[n], dtype=np.int32)
    values = np.empty(indptr[n], dtype=table.dtype)
    ysum = np.empty(n, dtype=table.dtype)
    for k in range(n):
        j = indptr[k]
        s = 0.0
        for p in range(n_pix):
            v = pixels[k, p]
            if v != 0:
                indices[j] = p
                values[j] = table[v]
                s += table[v]
                j += 1
        ysum[k] = s
    return indptr, indices, values, ysum


@numba.njit(cache=True, nogil=True, fastmath=_FLAGS)
def train_epoch(indptr, indices, values, xsum, ysum, T, wT, who, u, c, lr, exact, offset):
    """One epoch of the book's rule over n records, one record at a time, in place.

    Args:
        indptr, indices, values: the records' non-zero ``y`` (see :func:`sparse_inputs`).
        xsum, ysum: (n,) row sums of ``x`` and of ``y``.
        T: (n, 10) targets.
        wT: (784, H) ``W'`` transposed (row p: pixel p's weights), updated in place.
        who: (10, H) output weights, updated in place.
        u: (H,) ``W' @ 1``, updated in place.
        c: (H,) the part of every column of ``wih`` not in ``W'``, updated in place.
        lr: learning rate.
        exact: False for the book's hidden error ``who.T @ e_o``; True for the exact
            gradient ``who.T @ (e_o * o * (1 - o))``.
        offset: the constant part of every input, ``x = offset + y`` (the book's 0.01).

    Returns:
        The sum over the records of ``sum((t - o) ** 2)`` (before each record's update).
    """
    n = T.shape[0]
    n_out, H = who.shape
    a = np.empty(H, dtype=wT.dtype)
    h = np.empty(H, dtype=wT.dtype)
    d = np.empty(H, dtype=wT.dtype)
    o = np.empty(n_out, dtype=wT.dtype)
    e_src = np.empty(n_out, dtype=wT.dtype)
    grad_o = np.empty(n_out, dtype=wT.dtype)
    sse = 0.0
    for k in range(n):
        j0, j1 = indptr[k], indptr[k + 1]
        # a = wih @ x, (H, 784) @ (784,) -> (H,): the constant part, then y's non-zeros,
        # four pixels at a time (one pass over a per four rows of wT).
        xs = xsum[k]
        for m in range(H):
            a[m] = offset * u[m] + xs * c[m]
        j = j0
        while j + 4 <= j1:
            p0, p1, p2, p3 = indices[j], indices[j + 1], indices[j + 2], indices[j + 3]
            v0, v1, v2, v3 = values[j], values[j + 1], values[j + 2], values[j + 3]
            for m in range(H):
                a[m] += v0 * wT[p0, m] + v1 * wT[p1, m] + v2 * wT[p2, m] + v3 * wT[p3, m]
            j += 4
        while j < j1:
            p, v = indices[j], values[j]
            for m in range(H):
                a[m] += v * wT[p, m]
            j += 1
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
            d[m] = 0.0
        for i in range(n_out):
            e = e_src[i]
            for m in range(H):
                d[m] += who[i, m] * e
        for m in range(H):  # d = lr * e_h * h * (1 - h): wih += d (x) x
            d[m] = lr * (d[m] * h[m] * (1.0 - h[m]))
        for i in range(n_out):  # who += lr * outer(e_o * o * (1 - o), h)
            g = grad_o[i]
            for m in range(H):
                who[i, m] += g * h[m]
        for j in range(j0, j1):  # W'[:, p] += d * y_p for y's non-zeros
            p, v = indices[j], values[j]
            for m in range(H):
                wT[p, m] += v * d[m]
        ys = ysum[k]
        for m in range(H):  # the constant part: every column gets offset * d
            c[m] += offset * d[m]
            u[m] += ys * d[m]
    return sse


def warm() -> None:
    """Load both kernels for float64 networks (from numba's cache, or compile them) by calling
    them on a one-record problem with the argument types :mod:`mynn.train` passes. A process's
    first call of a numba function costs about 1 s of loading; called from a background thread
    while a command is still talking to its servers, the first training does not pay it."""
    pixels = np.zeros((1, 784), np.uint8)  # (1, 784), read-only like a loaded dataset's
    pixels.flags.writeable = False
    indptr, indices, values, ysum = sparse_inputs(pixels, np.zeros(256))  # table: (256,) float64
    wT, who = np.zeros((784, 1)), np.zeros((10, 1))  # (784, H=1), (10, H)
    train_epoch(indptr, indices, values, ysum + 7.84, ysum, np.zeros((1, 10)), wT, who, np.zeros(1), np.zeros(1),
                0.1, False, 0.01)

