"""`fit` in a process of its own, for tests/test_sharding.py: its devices are whatever XLA_FLAGS
and the distributed flags make them.

python tests/sharded_fit.py DATA.npz CONFIG.json WORKDIR [--coordinator HOST:PORT ...]
"""
import json
import sys

import numpy as np

from jaxnin.cli import ArgumentParser, run_main
from jaxnin.data.dataset import ImageDataset
from jaxnin.train.config import TrainConfig
from jaxnin.cli import add_distributed_flags, initialize_from_flags


def main(argv) -> int:
    parser = ArgumentParser(prog="sharded_fit")
    parser.add_argument("data")
    parser.add_argument("config")
    parser.add_argument("workdir")
    add_distributed_flags(parser)
    args = parser.parse_args(argv)
    initialize_from_flags(args)  # before anything touches a device

    from jaxnin.run import fit  # noqa: E402 -- imports jax's backends lazily anyway

    arrays = np.load(args.data)
    data = ImageDataset("fashion_mnist", *(arrays[k] for k in (
        "train_images", "train_labels", "test_images", "test_labels")), tuple("0123456789"),
        "synthetic")
    config = TrainConfig.from_json(json.loads(open(args.config).read()))
    fit(config, data, args.workdir)
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
