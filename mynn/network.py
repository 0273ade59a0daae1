"""The book's three-layer network: weights, batched query, save and load.

Shapes: ``wih`` (H, 784), ``who`` (10, H); a batch of inputs ``X`` is (n, 784) scaled to
[0.01, 1.00] (see :func:`mynn.data.scale_inputs`); outputs are (n, 10).
"""
from __future__ import annotations

import json
import os
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.special import expit

from mynn.config import NetworkConfig

INPUT_NODES = 784
OUTPUT_NODES = 10


class WeightsFileError(ValueError):
    """A weights file that cannot be trusted; the message names the file."""


@dataclass
class Network:
    """Weights of the network and the config they were made with.

    Attributes:
        config: the :class:`NetworkConfig` (H, lr, seed, dtype, options).
        wih: (H, 784) input -> hidden weights.
        who: (10, H) hidden -> output weights.
    """

    config: NetworkConfig
    wih: np.ndarray
    who: np.ndarray

    @classmethod
    def initial(cls, config: NetworkConfig) -> "Network":
        """The book's initial weights, drawn from ``numpy.random.default_rng(config.seed)``.

        wih ~ Normal(0, H**-0.5), shape (H, 784); who ~ Normal(0, 10**-0.5), shape (10, H).
        The draw is always float64 (then cast), so float32 runs start from the same weights.
        """
        rng = np.random.default_rng(config.seed)
        h = config.hidden_nodes
        wih = rng.normal(0.0, h ** -0.5, size=(h, INPUT_NODES))
        who = rng.normal(0.0, OUTPUT_NODES ** -0.5, size=(OUTPUT_NODES, h))
        dtype = np.dtype(config.dtype)
        return cls(config, np.ascontiguousarray(wih, dtype), np.ascontiguousarray(who, dtype))

    def copy(self) -> "Network":
        return Network(self.config, self.wih.copy(), self.who.copy())

    def hidden(self, inputs: np.ndarray) -> np.ndarray:
        """Hidden outputs: (n, 784) @ (784, H) -> (n, H), sigmoid."""
        return expit(np.asarray(inputs, self.wih.dtype) @ self.wih.T)

    def query(self, inputs: np.ndarray) -> np.ndarray:
        """Outputs for a batch in one vectorised pass: (n, 784) -> (n, 10).

        A single record (784,) gives (10,).
        """
        x = np.asarray(inputs, self.wih.dtype)
        single = x.ndim == 1
        x = np.atleast_2d(x)
        if x.shape[1] != INPUT_NODES:
            raise ValueError(f"query: inputs have {x.shape[1]} columns, expected {INPUT_NODES}")
        out = expit(expit(x @ self.wih.T) @ self.who.T)  # (n,784)@(784,H) -> (n,H) @(H,10) -> (n,10)
        return out[0] if single else out

    def predict(self, inputs: np.ndarray) -> np.ndarray:
        """Digits (n,) int64: argmax of the outputs."""
        return np.argmax(self.query(np.atleast_2d(inputs)), axis=1)

    def performance(self, inputs: np.ndarray, labels: np.ndarray) -> float:
        """The book's score: the fraction of records whose argmax equals the label."""
        return float(np.mean(self.predict(inputs) == np.asarray(labels)))

    # ---- persistence -------------------------------------------------------------------
    def save(self, path: str | os.PathLike) -> Path:
        """Write ``wih``, ``who`` and the config (as JSON text) to an ``.npz``, atomically.

        The file is written under a temporary name in the same folder and renamed, so a
        crash or a full disk never leaves a partial file under ``path`` (nor the temporary
        one); a failed write raises an ``OSError`` (same errno) naming ``path``.
        """
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        config_json = np.array(json.dumps(self.config.to_dict(), sort_keys=True))
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as fh:
                np.savez(fh, wih=self.wih, who=self.who, config=config_json)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        except BaseException as exc:
            Path(tmp).unlink(missing_ok=True)
            if isinstance(exc, OSError):  # a full disk, a file size limit: name the file
                raise (OSError(f"{path}: {exc}") if exc.errno is None
                       else OSError(exc.errno, f"{path}: {exc.strerror or exc}")) from exc
            raise
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> "Network":
        """Read a file written by :meth:`save`, refusing anything that is not plain arrays.

        Checks: no pickled objects (``allow_pickle=False``), the three expected entries,
        a valid config, shapes (H, 784) and (10, H) matching it, the config's dtype, and
        finite values. Every error is a :class:`WeightsFileError` naming the file.
        """
        path = Path(path)

        def fail(why: str) -> WeightsFileError:
            return WeightsFileError(f"{path}: {why}")

        try:
            with np.load(path, allow_pickle=False) as npz:
                names = set(npz.files)
                if names != {"wih", "who", "config"}:
                    raise fail(f"expected arrays wih, who, config; found {sorted(names)}")
                arrays = {name: npz[name] for name in ("wih", "who", "config")}
        except WeightsFileError:
            raise
        except FileNotFoundError:
            raise fail("no such file") from None
        except ValueError as exc:  # object arrays need pickle: refused
            raise fail(f"refused ({exc})") from None
        except (OSError, zipfile.BadZipFile, EOFError) as exc:
            raise fail(f"not a readable .npz archive ({exc.__class__.__name__}: {exc})") from None
        cfg_arr = arrays["config"]
        if cfg_arr.dtype.kind != "U" or cfg_arr.shape != ():
            raise fail(f"config entry is {cfg_arr.dtype} {cfg_arr.shape}, expected a JSON string")
        try:
            config = NetworkConfig.from_dict(json.loads(str(cfg_arr)))
        except (ValueError, TypeError) as exc:
            raise fail(f"invalid config: {exc}") from None
        h = config.hidden_nodes
        dtype = np.dtype(config.dtype)
        for name, shape in (("wih", (h, INPUT_NODES)), ("who", (OUTPUT_NODES, h))):
            arr = arrays[name]
            if arr.shape != shape:
                raise fail(f"{name} has shape {arr.shape}, expected {shape} for H={h}")
            if arr.dtype != dtype:
                raise fail(f"{name} has dtype {arr.dtype}, expected {dtype}")
            if not np.isfinite(arr).all():
                bad = int(np.size(arr) - np.count_nonzero(np.isfinite(arr)))
                raise fail(f"{name} has {bad} non-finite value(s) (NaN or inf)")
        return cls(config, np.ascontiguousarray(arrays["wih"]), np.ascontiguousarray(arrays["who"]))
