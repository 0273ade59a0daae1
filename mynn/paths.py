"""Every path the project uses comes from here.

Nothing is read from the working directory: the defaults are anchored at the project
folder (the parent of this package), and each can be overridden by one environment
variable, read when a function is called (never at import time).
"""
from __future__ import annotations

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def data_dir() -> Path:
    """The shipped, immutable copy of MNIST in the book's CSV format (``data/mnist``)."""
    return PROJECT_ROOT / "data" / "mnist"


def cache_dir() -> Path:
    """Where downloads and parsed arrays are cached (``MYNN_CACHE_DIR``, default ``.cache/``)."""
    return Path(os.environ.get("MYNN_CACHE_DIR", PROJECT_ROOT / ".cache")).resolve()


def runs_dir() -> Path:
    """Where checkpoints and run outputs are written (``MYNN_RUNS_DIR``, default ``.runs/``)."""
    return Path(os.environ.get("MYNN_RUNS_DIR", PROJECT_ROOT / ".runs")).resolve()
