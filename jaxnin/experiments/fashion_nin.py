"""Seed 001: d2l's NiN on Fashion-MNIST, the main job.

    python -m jaxnin.experiments.fashion_nin [--data-dir DIR] [flags]

Defaults are the seed's: NiN with two 1x1 convs per block, xavier-uniform weights, plain SGD
at lr 0.1, batch 128, 10 epochs, images resized to 224. d2l reports
`loss 0.317, train acc 0.884, test acc 0.885`; experiments/fashion_nin/ records what this
recipe measures.
"""
import dataclasses
import sys

from jaxnin.experiments.recipe import Recipe
from jaxnin.models.nin import HEADS, NiN
from jaxnin.train.config import TrainConfig, option

DEFAULTS = TrainConfig(model="nin", dataset="fashion_mnist", epochs=10, batch_size=128,
                       optimizer="sgd", lr=0.1, resize=224)


def run_name(config: TrainConfig, in_channels: int, num_classes: int) -> str:
    """Seed 000's folder naming: NiN_in{F}_out{C}_lr{lr}_ep{E}."""
    return f"NiN_in{in_channels}_out{num_classes}_lr{config.lr:g}_ep{config.epochs}"


@dataclasses.dataclass(frozen=True)
class NiNOptions:
    """NiN's command-line options (fields of jaxnin.models.NiN); video_nin takes them too."""
    num_1x1: int = option(NiN.num_1x1, "1x1 convs per NiN block")
    head: str = option(NiN.head, "last block: direct 384->classes as the seed, or graded",
                       choices=HEADS)
    head_bias: float = option(NiN.head_bias, "initial bias of the last block's convs (0 as "
                              "the seed; > 0 starts every class channel alive)")
    linear_logits: bool = option(NiN.linear_logits, "leave out the last block's final ReLU, "
                                 "so that no class channel can die (not the seed's net)")


RECIPE = Recipe(prog="jaxnin.experiments.fashion_nin", description=__doc__, defaults=DEFAULTS,
                run_name=run_name, model_flags=NiNOptions)

if __name__ == "__main__":
    sys.exit(RECIPE.main())
