"""The network's weights as pictures, logged per epoch with MLflow's ``log_image(key, step)``.

The run page's images then show, epoch by epoch, what the hidden nodes look for (each node's
784 input weights as a 28x28 tile, the book's "backwards query" idea applied to one layer) and
the output layer's weights. numpy only: MLflow turns the arrays into PNGs.
"""
from __future__ import annotations

import numpy as np
from mlflow import MlflowClient

from mynn.network import Network

TILES = 64  # hidden nodes shown (the first ones), as an 8x8 mosaic
HIDDEN_KEY, OUTPUT_KEY = "hidden_weights", "output_weights"


def _grey(values: np.ndarray) -> np.ndarray:
    """Weights to 0..255 grey, 0 at mid-grey, scaled by their largest magnitude: uint8, same shape."""
    scale = float(np.max(np.abs(values))) or 1.0
    return np.clip(np.rint(127.5 + 127.5 * values / scale), 0, 255).astype(np.uint8)


def hidden_weights_image(wih: np.ndarray, tiles: int = TILES) -> np.ndarray:
    """(H, 784) input->hidden weights -> a mosaic of the first ``tiles`` nodes' 28x28 weights,
    each tile scaled on its own, 1-pixel white gaps: uint8 (rows*29-1, cols*29-1)."""
    n = min(tiles, wih.shape[0])
    cols = int(np.ceil(np.sqrt(n)))
    rows = int(np.ceil(n / cols))
    out = np.full((rows * 29 - 1, cols * 29 - 1), 255, dtype=np.uint8)
    for i in range(n):
        r, c = divmod(i, cols)
        out[r * 29:r * 29 + 28, c * 29:c * 29 + 28] = _grey(wih[i].reshape(28, 28))  # (784,) -> (28, 28)
    return out


def output_weights_image(who: np.ndarray, cell: int = 8) -> np.ndarray:
    """(10, H) hidden->output weights -> one row of ``cell`` pixels per digit, each weight at least
    one pixel wide (wider for small H): uint8 (10*cell, H*width)."""
    width = max(1, 400 // who.shape[1])
    return np.repeat(np.repeat(_grey(who), cell, axis=0), width, axis=1)


def log_weight_images(client: MlflowClient, run_id: str, network: Network, epoch: int) -> None:
    """Both pictures of ``network``'s weights at step ``epoch`` of run ``run_id``."""
    client.log_image(run_id, hidden_weights_image(network.wih), key=HIDDEN_KEY, step=epoch)
    client.log_image(run_id, output_weights_image(network.who), key=OUTPUT_KEY, step=epoch)
