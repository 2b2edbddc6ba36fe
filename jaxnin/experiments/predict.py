"""Seed 002's test demo for any finished run: load its best checkpoint and predict.

    python -m jaxnin.experiments.predict RUN_DIR [--count 20] [--data-dir DIR]

Prints `predicted: "X", actual: "Y"` for the first N test images, with class names, and writes
RUN_DIR/predictions.png: the images titled with both labels, wrong predictions in red.
"""
import argparse
import sys
from pathlib import Path

import jax
import numpy as np

from jaxnin.cli import ArgumentParser, run_main
from jaxnin.data.pipeline import preprocess
from jaxnin.report.plots import prediction_grid
from jaxnin.train.run_dir import add_run_flags, restore_checkpoint, run_config, run_data

# Seed 002 reloads the best-accuracy model; runs that only track loss fall back to it.
CHECKPOINT_PREFERENCE = ("best_acc", "best_loss", "latest")


def main(argv) -> int:
    args = _parser().parse_args(argv)
    run_dir = Path(args.run_dir)
    config = run_config(run_dir)
    data = run_data(config, args.data_dir)
    state, kind, epoch, _ = restore_checkpoint(run_dir, config, data, CHECKPOINT_PREFERENCE,
                                                   args.seed)
    count = min(args.count, len(data.test_labels))
    images, actual = data.test_images[:count], data.test_labels[:count]
    logits = state.apply_fn({"params": state.params}, preprocess(images, config.resize))
    predicted = np.asarray(jax.device_get(logits)).argmax(-1)
    print(f"{run_dir}: {kind} checkpoint from epoch {epoch}")
    for pred, true in zip(predicted, actual):
        print(f'predicted: "{data.class_names[pred]}", actual: "{data.class_names[true]}"')
    out = Path(args.out) if args.out else run_dir / "predictions.png"
    prediction_grid(images, predicted, actual, data.class_names, out)
    print(f"{int(np.sum(predicted == actual))}/{count} right; grid written to {out}")
    return 0


def _parser():
    parser = ArgumentParser(prog="python -m jaxnin.experiments.predict",
                                     description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_run_flags(parser, "use")
    parser.add_argument("--count", type=int, default=20, help="how many test images [20]")
    parser.add_argument("--out", help="PNG path [RUN_DIR/predictions.png]")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    return parser


if __name__ == "__main__":
    sys.exit(run_main(main))
