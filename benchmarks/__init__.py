"""Benchmarks, run as modules from the repository root (each imports the installed package,
and another benchmark as ``benchmarks.<name>``), e.g. ``python -m benchmarks.train_speed data/mnist``."""
