"""Seed 002's test demo for any finished run: load its best checkpoint and predict.

    python -m jaxnin.experiments.predict RUN_DIR [--count 20] [--data-dir DIR]

Prints `predicted: "X", actual: "Y"` for the first N test images, with class names, and writes
RUN_DIR/predictions.png: the images titled with both labels, wrong predictions in red.
"""
import argparse
import json
import sys
from pathlib import Path

import jax
import numpy as np

from jaxnin.cli import ArgumentParser, run_main
from jaxnin.data.pipeline import preprocess, to_device
from jaxnin.data import load_data
from jaxnin.errors import JaxninError
from jaxnin.report.plots import prediction_grid
from jaxnin.train.checkpoint import CheckpointStore
from jaxnin.train.config import TrainConfig
from jaxnin.train.loop import initial_state

# Seed 002 reloads the best-accuracy model; runs that only track loss fall back to it.
CHECKPOINT_PREFERENCE = ("best_acc", "best_loss", "latest")


def main(argv) -> int:
    args = _parser().parse_args(argv)
    run_dir = Path(args.run_dir)
    config = _run_config(run_dir)
    data = load_data(config.dataset, args.data_dir or config.data_dir, config.data_options)
    state, kind, epoch = restore_best(run_dir, config, data)
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


def restore_best(run_dir: Path, config: TrainConfig, data):
    """(state, checkpoint kind, epoch) of the most preferred checkpoint the run has."""
    fresh, _ = initial_state(config, data, to_device(data.train_images, data.train_labels,
                                                     config.limit_train))
    store = CheckpointStore(run_dir / "checkpoints", config.best)
    try:
        for kind in CHECKPOINT_PREFERENCE:
            if kind in config.best or kind == "latest":
                restored = store.restore(kind, fresh)
                if restored is not None:
                    return restored[0], kind, restored[1]["epoch"]
    finally:
        store.close()
    raise JaxninError(f"{run_dir} has no checkpoint yet: let its run finish an epoch first")


def _run_config(run_dir: Path) -> TrainConfig:
    path = run_dir / "run.json"
    try:
        return TrainConfig.from_json(json.loads(path.read_text())["config"])
    except FileNotFoundError:
        raise JaxninError(f"{path} not found: RUN_DIR must be a jaxnin run's workdir") from None
    except (json.JSONDecodeError, KeyError, TypeError) as err:
        raise JaxninError(f"{path} is not a jaxnin run record ({err})") from None


def _parser():
    parser = ArgumentParser(prog="python -m jaxnin.experiments.predict",
                                     description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_dir", help="a finished run's workdir (it holds run.json)")
    parser.add_argument("--count", type=int, default=20, help="how many test images [20]")
    parser.add_argument("--data-dir", help="where the dataset's files are, if not as in the run")
    parser.add_argument("--out", help="PNG path [RUN_DIR/predictions.png]")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    return parser


if __name__ == "__main__":
    sys.exit(run_main(main))
