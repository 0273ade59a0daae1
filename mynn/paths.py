"""Every path the project uses comes from here.

Nothing is read from the working directory. Run from a source checkout (``make setup``, an
editable install) the defaults are anchored at the checkout; installed as a package (``pip
install .``) they are in ``$XDG_DATA_HOME/mynn`` (``~/.local/share/mynn``), and the shipped MNIST
comes with the package (``mynn_data``). Each can be overridden by one environment variable,
read when a function is called (never at import time).
"""
from __future__ import annotations

import os
import importlib.util
from pathlib import Path

#: The folder above the package: a source checkout's root when mynn runs from one.
PROJECT_ROOT = Path(__file__).resolve().parent.parent


def checkout() -> Path | None:
    """The source checkout mynn runs from, or None for an installed package."""
    return PROJECT_ROOT if (PROJECT_ROOT / "pyproject.toml").is_file() else None


def home() -> Path:
    """Where the defaults below live: the checkout, else ``$XDG_DATA_HOME/mynn``."""
    root = checkout()
    if root is not None:
        return root
    return Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share").resolve() / "mynn"


def data_dir() -> Path:
    """The shipped, immutable copy of MNIST in the book's CSV format (``data/mnist`` of the
    checkout, or the installed package's copy)."""
    root = checkout()
    if root is not None:
        return root / "data" / "mnist"
    spec = importlib.util.find_spec("mynn_data")  # a folder of data files (no __init__.py)
    for location in (spec.submodule_search_locations or []) if spec else []:
        if (Path(location) / "mnist").is_dir():
            return Path(location) / "mnist"
    raise FileNotFoundError("the shipped MNIST (package mynn_data) is not installed with mynn")


def cache_dir() -> Path:
    """Where downloads and parsed arrays are cached (``MYNN_CACHE_DIR``, default ``.cache/``)."""
    return Path(os.environ.get("MYNN_CACHE_DIR", home() / ".cache")).resolve()


def runs_dir() -> Path:
    """Where checkpoints and run outputs are written (``MYNN_RUNS_DIR``, default ``.runs/``)."""
    return Path(os.environ.get("MYNN_RUNS_DIR", home() / ".runs")).resolve()
