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
from jaxnin.errors import JaxninError
from jaxnin.report.plots import prediction_grid
from jaxnin.train.run_dir import add_run_flags, restore_checkpoint, run_config, run_data

# Seed 002 reloads the best-accuracy model; runs that only track loss fall back to it.
CHECKPOINT_PREFERENCE = ("best_acc", "best_loss", "latest")
# The grid stays a readable picture (and a small file): every line is printed, at most this
# many images are drawn.
GRID_MAX = 100


def main(argv) -> int:
    args = _parser().parse_args(argv)
    if args.count < 1:
        raise JaxninError(f"--count must be at least 1, got {args.count}")
    run_dir = Path(args.run_dir)
    config = run_config(run_dir)
    data = run_data(config, args.data_dir)
    state, kind, epoch, _ = restore_checkpoint(run_dir, config, data, CHECKPOINT_PREFERENCE,
                                                   args.seed)
    count = min(args.count, len(data.test_labels))
    images, actual = data.test_images[:count], data.test_labels[:count]
    predicted = predict(state, images, config.resize, config.eval_batch_size)
    print(f"{run_dir}: {kind} checkpoint from epoch {epoch}")
    for pred, true in zip(predicted, actual):
        print(f'predicted: "{data.class_names[pred]}", actual: "{data.class_names[true]}"')
    out = Path(args.out) if args.out else run_dir / "predictions.png"
    drawn = min(count, GRID_MAX)
    prediction_grid(images[:drawn], predicted[:drawn], actual[:drawn], data.class_names, out)
    shown = f"the first {drawn} drawn" if drawn < count else "grid"
    print(f"{int(np.sum(predicted == actual))}/{count} right; {shown} written to {out}")
    return 0


def predict(state, images: np.ndarray, resize: int | None, batch_size: int) -> np.ndarray:
    """The predicted class of each image, a batch at a time (a whole test set fits no device
    at 224x224 in one go)."""
    classes = []
    for start in range(0, len(images), batch_size):
        batch = preprocess(images[start:start + batch_size], resize)
        logits = state.apply_fn({"params": state.params}, batch)
        classes.append(np.asarray(jax.device_get(logits)).argmax(-1))
    return np.concatenate(classes)


def _parser():
    parser = ArgumentParser(prog="python -m jaxnin.experiments.predict",
                                     description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_run_flags(parser, "use")
    parser.add_argument("--count", type=int, default=20, help="how many test images to predict "
                        f"and print (at most {GRID_MAX} are drawn) [20]")
    parser.add_argument("--out", help="PNG path [RUN_DIR/predictions.png]")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    return parser


if __name__ == "__main__":
    sys.exit(run_main(main))
