"""Training speed: the book's rule transcribed plainly vs the fast path, side by side.

    python -m benchmarks.train_speed DATA_DIR [--impl reference fast] [--hidden 100 200]
        [--dtype float64 float32] [--records N] [--epochs E]

DATA_DIR holds mnist_train.csv[.gz] and mnist_test.csv[.gz]. Prints one JSON object per
run: impl, hidden_nodes, dtype, learning_rate, seed, records, epochs, records_per_s
(first epoch, everything in it: the fast path builds its sparse view of the inputs
there), performance (on the whole test set after the last epoch), fraction_of_bound (of
the issue's dense arithmetic bound: 4 * 784 * H flop per record at the machine's dense
float64 peak, --peak-gflops, default 55 as measured here; twice that for float32), and
with --epochs > 1 records_per_s_later_epochs (the mean of epochs 2..).

The fast path skips the zero pixels (81 % of MNIST's), so it can pass the dense bound; for
it the row also has flop_per_record, what it computes (4 * nnz * H + 66 * H with nnz the
mean number of non-zero pixels), and gflops, the rate at which it does so.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from mynn.config import NetworkConfig
from mynn.csvfile import read_csv
from mynn.train import fit


def find(data_dir: Path, stem: str) -> Path:
    for name in (f"{stem}.csv.gz", f"{stem}.csv"):
        if (data_dir / name).exists():
            return data_dir / name
    raise SystemExit(f"{data_dir}: neither {stem}.csv.gz nor {stem}.csv")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("data_dir", type=Path)
    ap.add_argument("--impl", nargs="+", default=["reference", "fast"], choices=["reference", "fast"])
    ap.add_argument("--hidden", nargs="+", type=int, default=[100, 200])
    ap.add_argument("--dtype", nargs="+", default=["float64", "float32"], choices=["float64", "float32"])
    ap.add_argument("--records", type=int, default=None, help="train on the first N records")
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--learning-rate", type=float, default=0.1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--peak-gflops", type=float, default=55.0)
    args = ap.parse_args(argv)

    train = read_csv(find(args.data_dir, "mnist_train"))
    test = read_csv(find(args.data_dir, "mnist_test"))
    pixels, labels = train.pixels[: args.records], train.labels[: args.records]
    # compile the kernel (both dtypes) before timing anything
    for dtype in args.dtype:
        fit(NetworkConfig(hidden_nodes=4, epochs=1, dtype=dtype), pixels[:8], labels[:8])
    for hidden in args.hidden:
        for dtype in args.dtype:
            for impl in args.impl:
                cfg = NetworkConfig(hidden_nodes=hidden, learning_rate=args.learning_rate,
                                    epochs=args.epochs, seed=args.seed, dtype=dtype)
                _, history = fit(cfg, pixels, labels, test=(test.pixels, test.labels),
                                 impl=impl)
                rate = history[0].records_per_s
                peak = args.peak_gflops * (2 if dtype == "float32" else 1)
                bound = peak * 1e9 / (4 * 784 * hidden)
                row = {"impl": impl, "hidden_nodes": hidden, "dtype": dtype,
                       "learning_rate": args.learning_rate, "seed": args.seed,
                       "records": int(len(pixels)), "epochs": args.epochs,
                       "records_per_s": round(rate), "performance": history[-1].performance,
                       "fraction_of_bound": round(rate / bound, 3)}
                if impl == "fast":
                    nnz = np.count_nonzero(pixels) / len(pixels)
                    flop = 4 * nnz * hidden + 66 * hidden
                    row["flop_per_record"] = round(flop)
                    row["gflops"] = round(rate * flop / 1e9, 1)
                if len(history) > 1:
                    row["records_per_s_later_epochs"] = round(
                        sum(h.records_per_s for h in history[1:]) / (len(history) - 1))
                print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
