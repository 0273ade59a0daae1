"""The MLflow model flavour of a mynn network: plain arrays in, digits out, no pickle.

The model directory holds ``data/weights.npz`` (loaded with ``allow_pickle=False`` through
:meth:`mynn.network.Network.load`, which checks the arrays' headers, shapes, dtypes and
finiteness) and no code: MLflow's ``python_function`` flavour imports this module,
:func:`_load_pyfunc`, from the installed ``mynn`` package, so ``mlflow.pyfunc.load_model`` and
``mlflow models serve`` (``--env-manager local``, or an image with mynn installed) work
without unpickling anything and without running code from the model folder.

(MLflow itself runs whatever code a model folder's ``MLmodel`` names: only load model
folders you trust. This project's own loading of registered versions reads the weights
file directly and never imports a model folder; see :mod:`tracking.registry`.)

Input: raw pixel rows, 0..255, as a DataFrame, an ndarray or a list of rows, shape (n, 784).
Output: a DataFrame with ``digit`` and ``output_0`` .. ``output_9`` (the ten output values).
"""
from __future__ import annotations

import shutil
import tempfile
import threading
from pathlib import Path
from typing import Any

import numpy as np

from mynn.encoding import scale_inputs
from mynn.network import INPUT_NODES, Network

WEIGHTS_FILE = "weights.npz"
OUTPUT_COLUMNS = ["digit"] + [f"output_{i}" for i in range(10)]
_PACKAGES_MAP_LOCK = threading.Lock()


def warm_requirements_map() -> None:
    """Make MLflow's map of installed distributions, once per process. MLflow builds it the first
    time a model is saved, by listing every file of every distribution (about 1 s); it has no
    lock, so threads saving models at once each built it, slowing one another (3.4 s each in a
    sweep's first two trainings). One thread builds it here; the others wait for it."""
    from mlflow.utils import requirements_utils

    init = getattr(requirements_utils, "_init_modules_to_packages_map", None)  # private: may go away
    if init is not None:
        with _PACKAGES_MAP_LOCK:
            init()


class MynnPyfunc:
    """What ``mlflow.pyfunc`` wraps: predicts digits from raw 0..255 pixel rows."""

    def __init__(self, network: Network):
        self.network = network

    def predict(self, model_input: Any, params: dict | None = None):
        import pandas as pd

        rows = np.asarray(model_input.to_numpy() if hasattr(model_input, "to_numpy") else model_input,
                          dtype=np.float64)
        if rows.ndim == 1:
            rows = rows[None, :]
        if rows.ndim != 2 or rows.shape[1] != INPUT_NODES:
            raise _bad_input(f"mynn model: expected rows of {INPUT_NODES} pixel values, got shape {rows.shape}")
        if not np.isfinite(rows).all() or rows.min(initial=0) < 0 or rows.max(initial=0) > 255 \
                or not np.array_equal(rows, np.round(rows)):
            bad = np.argwhere(~(np.isfinite(rows) & (rows >= 0) & (rows <= 255) & (rows == np.round(rows))))[0]
            raise _bad_input(f"mynn model: row {bad[0]}, pixel {bad[1]} is {rows[tuple(bad)]!r}: pixel values must "
                             "be whole numbers in 0..255")
        # (whole numbers in 0..255, checked above: exactly representable as uint8)
        outputs = self.network.query(scale_inputs(rows.astype(np.uint8), self.network.config.dtype))  # -> (n, 10)
        frame = pd.DataFrame(outputs.astype(np.float64), columns=OUTPUT_COLUMNS[1:])
        frame.insert(0, "digit", np.argmax(outputs, axis=1).astype(np.int64))
        return frame


def _bad_input(message: str) -> Exception:
    """An error MLflow's scoring server answers with HTTP 400 and this message, without a
    stack trace (any other exception becomes a generic message with a trace)."""
    from mlflow.exceptions import MlflowException
    from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE

    return MlflowException(message, error_code=INVALID_PARAMETER_VALUE)


def _load_pyfunc(data_path: str) -> MynnPyfunc:
    """MLflow's entry point (``loader_module``): ``data_path`` is the model's data folder."""
    return MynnPyfunc(Network.load(Path(data_path) / WEIGHTS_FILE))


def signature_and_example(example_pixels: np.ndarray):
    """Model signature (a (-1, 784) float64 tensor in; ``digit`` (long) and ten double outputs
    out) and an example. Written out, not inferred: inference from an integer column makes
    MLflow warn about missing values, which a digit never is."""
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, Schema, TensorSpec

    example = np.asarray(example_pixels[:2], dtype=np.float64)  # (2, 784) raw 0..255
    inputs = Schema([TensorSpec(np.dtype(np.float64), (-1, INPUT_NODES))])
    outputs = Schema([ColSpec("long", "digit")] + [ColSpec("double", c) for c in OUTPUT_COLUMNS[1:]])
    return ModelSignature(inputs=inputs, outputs=outputs), example


def save_model(network_path: str | Path, path: str | Path, example_pixels: np.ndarray, mlflow_model=None) -> Path:
    """Write an MLflow model directory for the weights at ``network_path`` into ``path``
    (``mlflow_model``: the ``mlflow.models.Model`` whose metadata to write, e.g. its model_id)."""
    import mlflow.pyfunc

    path = Path(path)
    Network.load(network_path)  # refuse anything that is not clean arrays before packaging it
    warm_requirements_map()
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        data.mkdir()
        shutil.copyfile(network_path, data / WEIGHTS_FILE)
        signature, example = signature_and_example(example_pixels)
        mlflow.pyfunc.save_model(
            path=str(path),
            loader_module="tracking.flavour",
            data_path=str(data),
            signature=signature,
            input_example=example,
            pip_requirements=_requirements(),
            mlflow_model=mlflow_model,
        )
    return path


def _requirements() -> list[str]:
    from importlib.metadata import version

    # what inference imports (tracking.flavour, mynn.network, mynn.encoding): not numba or
    # threadpoolctl, which only training uses; the mynn package itself must be installed to serve
    return [f"{name}=={version(name)}" for name in ("numpy", "scipy", "pandas")]
