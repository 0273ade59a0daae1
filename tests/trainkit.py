"""Helpers of the training tests: a reference training outside any run, and bit-equality."""
from __future__ import annotations

from mynn.arrays import load_npy
from mynn.config import NetworkConfig
from mynn.network import Network
from mynn.prepare import PreparedData
from mynn.train import fit


def fit_in_process(config: NetworkConfig, data: PreparedData) -> Network:
    """``config`` trained by mynn.train.fit on the prepared training set, no tracking."""
    train = load_npy(data.train.directory)
    net, _ = fit(config, train.pixels, train.labels)
    return net


def same_bits(a: Network, b: Network) -> bool:
    return (a.config == b.config and a.wih.dtype == b.wih.dtype and a.who.dtype == b.who.dtype
            and a.wih.tobytes() == b.wih.tobytes() and a.who.tobytes() == b.who.tobytes())
