"""The book's two headline runs on full MNIST, with the fast exact path.

    python -m benchmarks.book_runs DATA_DIR [--seed S]

DATA_DIR holds mnist_train.csv[.gz] and mnist_test.csv[.gz] (e.g. data/mnist). Prints one
JSON object per run: the book's first full run (H=100, lr 0.3, 1 epoch; the book reports
0.9473) and its final code (H=200, lr 0.1, 5 epochs; 0.9751), with the performance score,
the training time and the parse time.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from benchmarks.train_speed import find
from mynn.config import NetworkConfig
from mynn.csvfile import read_csv
from mynn.train import fit

RUNS = [  # (hidden, learning rate, epochs, the book's number)
    (100, 0.3, 1, 0.9473),
    (200, 0.1, 5, 0.9751),
]


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("data_dir", type=Path)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    train = read_csv(find(args.data_dir, "mnist_train"))
    test = read_csv(find(args.data_dir, "mnist_test"))
    parse_s = time.perf_counter() - t0
    for hidden, lr, epochs, book in RUNS:
        cfg = NetworkConfig(hidden_nodes=hidden, learning_rate=lr, epochs=epochs, seed=args.seed)
        t1 = time.perf_counter()
        _, history = fit(cfg, train.pixels, train.labels, test=(test.pixels, test.labels))
        print(json.dumps({"hidden_nodes": hidden, "learning_rate": lr, "epochs": epochs, "seed": args.seed,
                          "performance": history[-1].performance, "book": book,
                          "per_epoch": [h.performance for h in history],
                          "training_seconds": round(sum(h.seconds for h in history), 2),
                          "wall_seconds": round(time.perf_counter() - t1, 2),
                          "parse_seconds": round(parse_s, 2)}), flush=True)


if __name__ == "__main__":
    main()
