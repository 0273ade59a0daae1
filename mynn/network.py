"""The book's three-layer network: weights, batched query, save and load.

Shapes: ``wih`` (H, 784), ``who`` (10, H); a batch of inputs ``X`` is (n, 784) scaled to
[0.01, 1.00] (see :func:`mynn.encoding.scale_inputs`); outputs are (n, 10).
"""
from __future__ import annotations

import json
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.special import expit

from mynn.config import NetworkConfig
from mynn.files import AtomicWrite

INPUT_NODES = 784
OUTPUT_NODES = 10


class WeightsFileError(ValueError):
    """A weights file that cannot be trusted; the message names the file."""


_MAX_CONFIG_BYTES = 1 << 16  # the config is a short JSON string


def _npy_header(zf: zipfile.ZipFile, member: str) -> tuple[tuple[int, ...], np.dtype]:
    """(shape, dtype) declared by a ``.npy`` member's header, read without reading its data."""
    with zf.open(member) as f:
        version = np.lib.format.read_magic(f)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
        elif version in ((2, 0), (3, 0)):
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
        else:
            raise ValueError(f"{member}: unsupported .npy format version {version}")
    if fortran:
        raise ValueError(f"{member}: Fortran-ordered arrays are not written by Network.save")
    if dtype.hasobject:
        raise ValueError(f"{member}: Object arrays cannot be loaded when allow_pickle=False")
    return tuple(shape), dtype


def _npy_read(zf: zipfile.ZipFile, member: str) -> np.ndarray:
    """A ``.npy`` member's array, without pickle (its header was checked first)."""
    with zf.open(member) as f:
        return np.lib.format.read_array(f, allow_pickle=False)


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
        config_json = np.array(json.dumps(self.config.to_dict(), sort_keys=True))
        with AtomicWrite(path) as tmp, open(tmp, "wb") as fh:
            np.savez(fh, wih=self.wih, who=self.who, config=config_json)
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> "Network":
        """Read a file written by :meth:`save`, refusing anything that is not plain arrays.

        Checks: a zip archive of exactly ``config.npy``, ``wih.npy``, ``who.npy``; no pickled
        objects (``allow_pickle=False``); the config (a JSON string); then, from each array's
        ``.npy`` header *before* its data is read, shapes (H, 784) and (10, H) matching the
        config and the config's dtype, so a small file declaring a huge array costs nothing;
        finally, finite values. Every error is a :class:`WeightsFileError` naming the file.
        """
        path = Path(path)

        def fail(why: str) -> WeightsFileError:
            return WeightsFileError(f"{path}: {why}")

        try:
            with zipfile.ZipFile(path) as zf:
                names = set(zf.namelist())
                if names != {"wih.npy", "who.npy", "config.npy"}:
                    found = sorted(n.removesuffix(".npy") for n in names)
                    raise fail(f"expected arrays wih, who, config; found {found}")
                shape, dtype = _npy_header(zf, "config.npy")
                if dtype.kind != "U" or shape != () or dtype.itemsize > _MAX_CONFIG_BYTES:
                    raise fail(f"config entry is {dtype} {shape}, expected a JSON string")
                cfg_arr = _npy_read(zf, "config.npy")
                try:
                    config = NetworkConfig.from_dict(json.loads(str(cfg_arr)))
                except (ValueError, TypeError) as exc:
                    raise fail(f"invalid config: {exc}") from None
                h = config.hidden_nodes
                want = np.dtype(config.dtype)
                arrays = {}
                for name, expected in (("wih", (h, INPUT_NODES)), ("who", (OUTPUT_NODES, h))):
                    shape, dtype = _npy_header(zf, f"{name}.npy")
                    if shape != expected:
                        raise fail(f"{name} has shape {shape}, expected {expected} for H={h}")
                    if dtype != want:
                        raise fail(f"{name} has dtype {dtype}, expected {want}")
                    arrays[name] = _npy_read(zf, f"{name}.npy")
        except WeightsFileError:
            raise
        except FileNotFoundError:
            raise fail("no such file") from None
        except ValueError as exc:  # object arrays need pickle: refused; a malformed header
            raise fail(f"refused ({exc})") from None
        except (OSError, zipfile.BadZipFile, EOFError, KeyError) as exc:
            raise fail(f"not a readable .npz archive ({exc.__class__.__name__}: {exc})") from None
        for name, expected in (("wih", (h, INPUT_NODES)), ("who", (OUTPUT_NODES, h))):
            arr = arrays[name]
            if arr.shape != expected:  # (read_array follows the header; checked all the same)
                raise fail(f"{name} has shape {arr.shape} once read, expected {expected}")
            if not np.isfinite(arr).all():
                bad = int(np.size(arr) - np.count_nonzero(np.isfinite(arr)))
                raise fail(f"{name} has {bad} non-finite value(s) (NaN or inf)")
        return cls(config, np.ascontiguousarray(arrays["wih"]), np.ascontiguousarray(arrays["who"]))
