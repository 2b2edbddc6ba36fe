"""Seed 001: d2l's NiN on Fashion-MNIST, the main job.

    python -m jaxnin.experiments.fashion_nin [--data-dir DIR] [flags]

Defaults are the seed's: NiN with two 1x1 convs per block, xavier-uniform weights, plain SGD
at lr 0.1, batch 128, 10 epochs, images resized to 224. d2l reports
`loss 0.317, train acc 0.884, test acc 0.885`; experiments/fashion_nin/ records what this
recipe measures.
"""
import sys

from jaxnin.experiments.recipe import command_of
from jaxnin.recipes import recipe
from jaxnin.train.config import TrainConfig

DEFAULTS = recipe("fashion_nin")


def run_name(config: TrainConfig, in_channels: int, num_classes: int) -> str:
    """Seed 000's folder naming: NiN_in{F}_out{C}_lr{lr}_ep{E}."""
    return f"NiN_in{in_channels}_out{num_classes}_lr{config.lr:g}_ep{config.epochs}"


RECIPE = command_of("fashion_nin", description=__doc__, run_name=run_name)

if __name__ == "__main__":
    sys.exit(RECIPE.main())
