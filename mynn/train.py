"""Training: the book's per-record rule (fast and exact), its history and callbacks.

``fit`` trains a :class:`~mynn.network.Network` on uint8 MNIST arrays and returns the
network and its per-epoch history. The default path for the book's rule (batch size 1) is
the compiled kernel of :mod:`mynn.kernels` (sparse in the pixels, exact); ``impl="reference"`` runs the plain
transcription of the book's formulas in :mod:`mynn.reference`. Mini-batches (an option)
use a vectorised numpy step.
"""
from __future__ import annotations

import threading
import time
import weakref
from dataclasses import asdict, dataclass
from typing import Callable, Literal, TypeVar

import numpy as np
from scipy.special import expit
from threadpoolctl import threadpool_limits

from mynn import reference, validation
from mynn.config import NetworkConfig
from mynn.encoding import INPUT_OFFSET, make_targets, pixel_part_table, scale_inputs
from mynn.network import Network


_V = TypeVar("_V")
_DERIVED: dict[tuple[int, str, str], tuple[weakref.ref, object]] = {}
_DERIVED_LOCK = threading.Lock()


def _derived(array: np.ndarray, kind: str, dtype: np.dtype, make: Callable[[], _V]) -> _V:
    """``make()``, computed once per read-only ``array`` and kept while the array lives:
    trainings on one dataset (a sweep's threads share one, :func:`mynn.prepare.shared_loads`)
    share its sparse and scaled inputs instead of each building them (about 0.4 s for full
    MNIST). A :class:`~mynn.dataset.Dataset`'s arrays are read-only views nothing else holds a
    writable handle to; a writable array's inputs are built every time."""
    if array.flags.writeable:
        return make()
    key = (id(array), kind, np.dtype(dtype).str)
    with _DERIVED_LOCK:
        hit = _DERIVED.get(key)
        if hit is not None and hit[0]() is array:
            return hit[1]  # type: ignore[return-value]
        value = make()  # under the lock: one thread builds, the others wait for it
        _DERIVED[key] = (weakref.ref(array, lambda _, key=key: _DERIVED.pop(key, None)), value)
        return value


def warm_kernels() -> None:
    """Import numba and load the compiled kernels (:func:`mynn.kernels.warm`, about 1.5 s)."""
    from mynn.kernels import warm

    warm()


def warm_kernels_in_background() -> threading.Thread:
    """:func:`warm_kernels` in a daemon thread, started: a flow calls it when it begins, so the
    first epoch does not wait."""
    thread = threading.Thread(target=warm_kernels, name="mynn-warm-kernels", daemon=True)
    thread.start()
    return thread


def _read_only(array: np.ndarray) -> np.ndarray:
    array.flags.writeable = False
    return array


class TrainingDivergedError(RuntimeError):
    """The weights or the error became NaN or infinite; names the epoch."""

    def __init__(self, epoch: int, detail: str):
        super().__init__(f"training diverged in epoch {epoch}: {detail}")
        self.epoch = epoch


@dataclass(frozen=True)
class EpochStats:
    """What one epoch produced.

    Attributes:
        epoch: 1-based epoch number.
        train_mse: mean over the epoch's records of mean((t - o)**2) over the 10 outputs,
            each record's outputs taken just before its own update (a running training error).
        performance: the book's score on the test records after the epoch, or None.
        seconds: wall time of the epoch's training (evaluation excluded).
        records_per_s: training records per second in this epoch.
        validation_performance: the book's score on the held-out validation records after the
            epoch (``config.validation_records > 0``), or None.
    """

    epoch: int
    train_mse: float
    performance: float | None
    seconds: float
    records_per_s: float
    validation_performance: float | None = None

    def to_dict(self) -> dict:
        return asdict(self)


#: Called after every epoch; returning True (only True) stops training after that epoch (a pruner).
Callback = Callable[[EpochStats, Network], "bool | None"]


def best_epoch(history: list[dict] | list[EpochStats]) -> int | None:
    """The epoch of the best validation score (the first of equal ones), or None without one."""
    scores = [(h["validation_performance"] if isinstance(h, dict) else h.validation_performance, h["epoch"]
               if isinstance(h, dict) else h.epoch) for h in history]
    scores = [(v, e) for v, e in scores if v is not None]
    return max(scores, key=lambda s: (s[0], -s[1]))[1] if scores else None


def split_for_validation(pixels: np.ndarray, labels: np.ndarray, config: NetworkConfig):
    """((train pixels, labels), (validation pixels, labels)) of ``config``'s split
    (:func:`mynn.validation.split`); the pixel subsets of a read-only array are made once."""
    train_idx, held = validation.split(len(pixels), config.validation_records, config.seed)
    parts = _derived(pixels, f"split:{config.validation_records}:{config.seed}", np.uint8,
                     lambda: (_read_only(pixels[train_idx]), _read_only(pixels[held])))
    return (parts[0], labels[train_idx]), (parts[1], labels[held])


@dataclass
class _SparseInputs:
    """The fast path's view of the training inputs: ``x = 0.01 + y``, ``y`` stored sparse.

    Built from the uint8 pixels once per :func:`fit` (in its first epoch, so the first
    epoch's time includes it); see :mod:`mynn.kernels`.
    """

    indptr: np.ndarray  # (n + 1,) int64: record k's non-zeros are indptr[k]:indptr[k + 1]
    indices: np.ndarray  # (nnz,) int32 pixel index of each non-zero y
    values: np.ndarray  # (nnz,) its y = pixel / 255 * 0.99, in the network's dtype
    ysum: np.ndarray  # (n,) sum of each record's y
    xsum: np.ndarray  # (n,) sum of each record's x = ysum + 784 * 0.01

    @classmethod
    def of(cls, pixels: np.ndarray, dtype: np.dtype) -> "_SparseInputs":
        from mynn.kernels import sparse_inputs  # compiled on first use, not at import

        table = pixel_part_table(dtype)  # (256,) pixel -> y
        indptr, indices, values, ysum = sparse_inputs(np.ascontiguousarray(pixels), table)
        return cls(indptr, indices, values, ysum, ysum + dtype.type(pixels.shape[1] * INPUT_OFFSET))


def _epoch_fast(net: Network, data: _SparseInputs, T: np.ndarray) -> float:
    """One epoch of the book's rule on sparse inputs; returns the summed squared error.

    Within the epoch ``wih = W' + c 1^T`` (see :mod:`mynn.kernels`). The epoch starts from
    ``net.wih`` with ``c = 0`` and ends by writing ``W' + c 1^T`` back, so a run resumed
    from the weights after any epoch continues exactly as an uninterrupted one.
    """
    from mynn.kernels import train_epoch  # compiled on first use, not at import

    wT = np.ascontiguousarray(net.wih.T)  # (784, H): row p holds pixel p's weights
    u = wT.sum(axis=0)  # (H,) W' 1
    c = np.zeros(wT.shape[1], dtype=wT.dtype)  # (H,)
    sse = train_epoch(data.indptr, data.indices, data.values, data.xsum, data.ysum, T, wT,
                      net.who, u, c, net.config.learning_rate, net.config.backprop == "exact",
                      INPUT_OFFSET)
    net.wih[...] = (wT + c).T  # (784, H) + (H,) -> (H, 784)
    return sse


def _epoch_minibatch(net: Network, X: np.ndarray, T: np.ndarray) -> float:
    """One epoch of mini-batch updates (an option): all records of a batch see the same weights.

    The update is the sum of the batch's per-record updates of the book's rule, divided by
    the batch size when ``batch_reduction == "mean"``.
    """
    cfg = net.config
    lr = cfg.learning_rate
    sse = 0.0
    for start in range(0, X.shape[0], cfg.batch_size):
        x, t = X[start:start + cfg.batch_size], T[start:start + cfg.batch_size]  # (b, 784), (b, 10)
        h = expit(x @ net.wih.T)  # (b, H)
        o = expit(h @ net.who.T)  # (b, 10)
        e_o = t - o
        sse += float(np.sum(e_o * e_o))
        grad_o = e_o * o * (1.0 - o)
        e_h = (grad_o if cfg.backprop == "exact" else e_o) @ net.who  # (b, 10) @ (10, H) -> (b, H)
        scale = lr / len(x) if cfg.batch_reduction == "mean" else lr
        net.who += scale * (grad_o.T @ h)  # (10, b) @ (b, H)
        net.wih += scale * ((e_h * h * (1.0 - h)).T @ x)  # (H, b) @ (b, 784)
    return sse


def fit(
    config: NetworkConfig,
    train_pixels: np.ndarray,
    train_labels: np.ndarray,
    test: tuple[np.ndarray, np.ndarray] | None = None,
    *,
    callback: Callback | None = None,
    network: Network | None = None,
    start_epoch: int = 0,
    impl: Literal["fast", "reference"] = "fast",
    best: tuple[int, float, Network] | None = None,
) -> tuple[Network, list[EpochStats]]:
    """Train for ``config.epochs`` epochs over the records in file order.

    With ``config.validation_records = k`` the k records of :func:`mynn.validation.split` are
    held out: training runs over the others, in file order, and each epoch's
    ``validation_performance`` is their score. With ``config.patience = P`` training stops once
    P epochs in a row brought no better validation score, and the returned network is the best
    epoch's (:func:`best_epoch`): bit-identical to a run of that many epochs.

    Args:
        config: the network and training options.
        train_pixels: (n, 784) uint8 raw pixels; train_labels: (n,) labels 0..9.
        test: optional (pixels (m, 784) uint8, labels (m,)) scored after every epoch.
        callback: called after every epoch with its :class:`EpochStats` and the network
            (for logging and checkpoints); it must not modify the network.
        network: resume from these weights (a checkpoint) instead of the seeded start;
            its config must equal ``config``.
        start_epoch: epochs already done by ``network`` (training continues at +1).
        impl: "fast" (compiled sparse kernel) or "reference" (plain transcription), for
            batch size 1.
        best: when resuming with early stopping, (epoch, validation score, network) of the best
            epoch so far (the caller keeps it, e.g. as that epoch's checkpoint).

    Returns:
        (network, history): the trained network (the best epoch's, with patience) and one
        :class:`EpochStats` per epoch run.

    Evaluating after an epoch only reads the weights, so the network after epoch e of a
    longer run is identical to one trained for e epochs.
    """
    if network is None:
        if start_epoch:
            raise ValueError("fit: start_epoch needs the network it refers to")
        net = Network.initial(config)
    else:
        if network.config != config:
            raise ValueError(f"fit: network was made with {network.config}, not {config}")
        net = network.copy()
    if not 0 <= start_epoch <= config.epochs:
        raise ValueError(f"fit: start_epoch {start_epoch} outside 0..{config.epochs}")
    if len(train_pixels) != len(train_labels) or len(train_pixels) == 0:
        raise ValueError("fit: need as many labels as pixel rows, and at least one record")
    pixels, labels = np.asarray(train_pixels, np.uint8), np.asarray(train_labels, np.uint8)  # (n, 784), (n,)
    X_val = val_labels = None
    if config.validation_records:  # (n - k, 784) trained on, (k, 784) held out
        (pixels, labels), (val_pixels, val_labels) = split_for_validation(pixels, labels, config)
        X_val = _derived(val_pixels, "scaled", config.dtype, lambda: _read_only(scale_inputs(val_pixels, config.dtype)))
    T = make_targets(labels, config.dtype)  # (n, 10)
    fast = config.batch_size == 1 and impl == "fast"
    X = None if fast else scale_inputs(pixels, config.dtype)  # (n, 784), dense
    X_test = None
    if test is not None:  # (m, 784)
        test_pixels = np.asarray(test[0], np.uint8)
        X_test = _derived(test_pixels, "scaled", config.dtype, lambda: _read_only(scale_inputs(test_pixels, config.dtype)))
    sparse: _SparseInputs | None = None  # the fast path's inputs, made in the first epoch
    history: list[EpochStats] = []
    if config.patience and start_epoch and best is None:
        raise ValueError("fit: resuming with early stopping needs the best epoch so far (best=...)")
    best_at, best_score, best_net = best if best is not None else (0, -np.inf, None)
    stopped = bool(config.patience) and start_epoch - best_at >= config.patience
    with threadpool_limits(limits=1):  # one BLAS thread: more only slow this loop down
        for epoch in range(start_epoch + 1, config.epochs + 1):
            if stopped:
                break
            t0 = time.perf_counter()
            if config.batch_size > 1:
                sse = _epoch_minibatch(net, X, T)
            elif impl == "reference":
                sse = reference.train_epoch(net.wih, net.who, X, T, config.learning_rate,
                                            exact=config.backprop == "exact")
            elif impl == "fast":
                if sparse is None:
                    sparse = _derived(pixels, "sparse", net.wih.dtype, lambda: _SparseInputs.of(pixels, net.wih.dtype))
                sse = _epoch_fast(net, sparse, T)
            else:
                raise ValueError(f"fit: impl must be 'fast' or 'reference', not {impl!r}")
            seconds = time.perf_counter() - t0
            if not (np.isfinite(sse) and np.isfinite(net.wih).all() and np.isfinite(net.who).all()):
                raise TrainingDivergedError(epoch, "NaN or inf in the weights or the error "
                                                   f"(learning rate {config.learning_rate:g})")
            perf = net.performance(X_test, test[1]) if test is not None else None
            val = net.performance(X_val, val_labels) if X_val is not None else None
            stats = EpochStats(epoch, float(sse) / (len(T) * 10), perf, seconds, len(T) / seconds, val)
            history.append(stats)
            if val is not None and val > best_score:
                best_at, best_score, best_net = epoch, val, (net.copy() if config.patience else None)
            stopped = bool(config.patience) and epoch - best_at >= config.patience
            if callback is not None and callback(stats, net) is True:  # (True, not any truthy value)
                break
    if config.patience and best_net is not None and best_at != (history[-1].epoch if history else start_epoch):
        return best_net, history
    return net, history

