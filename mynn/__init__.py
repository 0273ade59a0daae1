"""mynn: the network of "Make Your Own Neural Network", exact and fast, with a strict data path.

numpy and scipy only (numba compiles the inner loop, threadpoolctl pins BLAS threads).
"""
from mynn.config import NetworkConfig
from mynn.network import Network, WeightsFileError
from mynn.train import EpochStats, TrainingDivergedError, fit

__all__ = ["NetworkConfig", "Network", "WeightsFileError", "EpochStats", "TrainingDivergedError", "fit"]
