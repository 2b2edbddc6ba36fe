"""Seed 001: d2l's NiN on Fashion-MNIST, the main job.

    python -m jaxnin.experiments.fashion_nin [--data-dir DIR] [flags]

Defaults are the seed's: NiN with two 1x1 convs per block, xavier-uniform weights, plain SGD
at lr 0.1, batch 128, 10 epochs, images resized to 224. d2l reports
`loss 0.317, train acc 0.884, test acc 0.885`; experiments/fashion_nin/ records what this
recipe measures.
"""
import sys

from jaxnin.experiments.recipe import Recipe
from jaxnin.models.nin import HEADS
from jaxnin.train.config import TrainConfig

DEFAULTS = TrainConfig(model="nin", dataset="fashion_mnist", epochs=10, batch_size=128,
                       optimizer="sgd", lr=0.1, resize=224)


def run_name(config: TrainConfig, in_channels: int, num_classes: int) -> str:
    """Seed 000's folder naming: NiN_in{F}_out{C}_lr{lr}_ep{E}."""
    return f"NiN_in{in_channels}_out{num_classes}_lr{config.lr:g}_ep{config.epochs}"


def add_model_flags(parser) -> None:
    parser.add_argument("--num-1x1", type=int, help="1x1 convs per NiN block [2]")
    parser.add_argument("--head", choices=HEADS, help="last block: direct 384->classes as the "
                        "seed, or graded [direct]")


def model_options(args) -> dict:
    return {k: v for k, v in (("num_1x1", args.num_1x1), ("head", args.head)) if v is not None}


RECIPE = Recipe(prog="jaxnin.experiments.fashion_nin", description=__doc__, defaults=DEFAULTS,
                run_name=run_name, add_model_flags=add_model_flags, model_options=model_options)

if __name__ == "__main__":
    sys.exit(RECIPE.main())
