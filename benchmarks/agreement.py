"""The fast path and the plain transcription of the book's rule, seed by seed.

    python -m benchmarks.agreement DATA_DIR [--hidden 100] [--learning-rate 0.3]
        [--seeds 0 1 2 3 4] [--epochs 1] [--records N]

Both train from the same seeded start on the same records. They compute the same rule with
their sums in another order, so their weights differ by rounding only; how far that
rounding carries depends on the learning rate (at 0.1 the weights after a full MNIST epoch
agree to ~1e-13, at 0.3 the two trajectories part ways over 60,000 updates). To show
that this is the rule's own sensitivity and not the fast path's, a third run is the
reference again from a start with 1e-14 added to one weight (``wih[5, 400]``): it parts
ways with the reference as far. What must agree is the accuracy distribution over seeds:
prints one JSON line per seed (performance of each run, largest weight differences to
the reference) and a summary line (mean and std of each).
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from benchmarks.train_speed import find
from mynn.config import NetworkConfig
from mynn.csvfile import read_csv
from mynn.encoding import scale_inputs
from mynn.network import Network
from mynn.train import fit


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("data_dir", type=Path)
    ap.add_argument("--hidden", type=int, default=100)
    ap.add_argument("--learning-rate", type=float, default=0.3)
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3, 4])
    ap.add_argument("--records", type=int, default=None, help="train on the first N records")
    args = ap.parse_args(argv)

    train = read_csv(find(args.data_dir, "mnist_train"))
    test = read_csv(find(args.data_dir, "mnist_test"))
    pixels, labels = train.pixels[: args.records], train.labels[: args.records]
    X_test = scale_inputs(test.pixels)
    scores: dict[str, list[float]] = {"reference": [], "fast": [], "perturbed": []}
    for seed in args.seeds:
        cfg = NetworkConfig(hidden_nodes=args.hidden, learning_rate=args.learning_rate,
                            epochs=args.epochs, seed=seed)
        ref, _ = fit(cfg, pixels, labels, impl="reference")
        fast, _ = fit(cfg, pixels, labels, impl="fast")
        start = Network.initial(cfg)
        start.wih[5, 400] += 1e-14
        perturbed, _ = fit(cfg, pixels, labels, impl="reference", network=start)
        row = {"seed": seed}
        for name, net in (("reference", ref), ("fast", fast), ("perturbed", perturbed)):
            row[name] = net.performance(X_test, test.labels)
            scores[name].append(row[name])
        for name, net in (("fast", fast), ("perturbed", perturbed)):
            row[f"max_abs_diff_wih_{name}"] = float(np.max(np.abs(ref.wih - net.wih)))
            row[f"max_abs_diff_who_{name}"] = float(np.max(np.abs(ref.who - net.who)))
        print(json.dumps(row), flush=True)
    print(json.dumps({"hidden_nodes": args.hidden, "learning_rate": args.learning_rate,
                      "epochs": args.epochs, "seeds": len(args.seeds),
                      **{f"{k}_{stat}": round(float(f(v)), 4) for k, v in scores.items()
                         for stat, f in (("mean", np.mean), ("std", np.std))}}), flush=True)


if __name__ == "__main__":
    main()
