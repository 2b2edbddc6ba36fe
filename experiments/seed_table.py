"""The lever x seed table of `--seeds K` runs, in Markdown, from their history.json files.

    python experiments/seed_table.py [--reach 0.90] NAME=RUN_DIR [NAME=RUN_DIR ...]

Each cell is a seed's best test accuracy over the epochs, with its dead classes at the end
when there are any; the last columns are mean ± std (over seeds, ddof 0), the minimum, and how
many seeds reach `--reach`.
"""
import argparse
import json
import sys
from pathlib import Path

import numpy as np


def per_seed(history: list[dict]) -> tuple[np.ndarray, list[int]]:
    """(best test accuracy of each seed, each seed's dead classes in the last epoch)."""
    accuracy = np.array([r["per_seed"]["test_acc"] for r in history])  # epochs x seeds
    dead = history[-1]["per_seed"].get("dead_classes", [0] * accuracy.shape[1])
    return accuracy.max(axis=0), dead


def row(name: str, history: list[dict], reach: float) -> str:
    best, dead = per_seed(history)
    cells = [f"{b:.3f}" + (f" ({d} dead)" if d else "") for b, d in zip(best, dead)]
    summary = [f"{best.mean():.3f} ± {best.std():.3f}", f"{best.min():.3f}",
               f"{int((best >= reach).sum())}/{best.size}"]
    return "| " + " | ".join([name, *cells, *summary]) + " |"


def table(runs: dict[str, list[dict]], reach: float) -> str:
    seeds = len(next(iter(runs.values()))[-1]["per_seed"]["test_acc"])
    header = ["lever", *(f"seed {i}" for i in range(seeds)), "mean ± std", "min",
              f"≥ {reach:.2f}"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + [row(name, history, reach) for name, history in runs.items()])


def main(argv) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", metavar="NAME=RUN_DIR")
    parser.add_argument("--reach", type=float, default=0.90, help="the figure to count")
    args = parser.parse_args(argv)
    runs = {}
    for spec in args.runs:
        name, _, folder = spec.rpartition("=")
        runs[name or folder] = json.loads((Path(folder) / "history.json").read_text())
    print(table(runs, args.reach))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
