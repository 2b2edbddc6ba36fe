"""Seed 004: VGG on Fashion-MNIST at 224x224.

    python -m jaxnin.experiments.fashion_vgg [--data-dir DIR] [--config A|B|D|E] [flags]

Defaults are the seed's: VGG-11 (config A), one input channel, Adam lr 1e-3, cross-entropy,
3 epochs, images resized to 224, and the seed's head without dropout (--dropout 0.5 gives
torchvision's).

Batch size: the seed used 4 only because 8 did not fit its 4 GB GTX 1050 (an hour per epoch).
The default here is 128, d2l's batch for VGG and the main job's: large enough to keep a GPU
busy, small enough for Adam at lr 1e-3 to take 468 steps an epoch. Its peak memory on a GPU
has not been measured yet (no GPU was lent when this recipe was written); lower
--batch-size if it does not fit.

Test accuracy counts every test image once; the seed divided by batches x batch size, which is
wrong whenever the last batch is short.

For a CPU smoke run: --resize 32 --width-divisor 8 --limit-train 1024 --limit-test 500.
"""
import dataclasses
import sys

from jaxnin.experiments.recipe import Recipe
from jaxnin.models import VGG, VGG_CONFIGS
from jaxnin.train.config import TrainConfig, option

DEPTHS = {"A": 11, "B": 13, "D": 16, "E": 19}
DEFAULTS = TrainConfig(model="vgg11", dataset="fashion_mnist", epochs=3, batch_size=128,
                       optimizer="adam", lr=1e-3, resize=224, model_options={"dropout": 0.0})


def run_name(config: TrainConfig, in_channels: int, num_classes: int) -> str:
    return (f"VGG{config.model[3:]}_in{in_channels}_out{num_classes}_lr{config.lr:g}"
            f"_ep{config.epochs}")


@dataclasses.dataclass(frozen=True)
class VGGOptions:
    config: str = option("A", "A=VGG-11, B=13, D=16, E=19", choices=tuple(sorted(VGG_CONFIGS)))
    width_divisor: int = option(VGG.width_divisor, "divide conv channels (d2l's slim VGG, for "
                                "CPU runs)")
    dropout: float = option(VGG.dropout, "after each hidden Dense (the seed's is 0)")


RECIPE = Recipe(prog="jaxnin.experiments.fashion_vgg", description=__doc__, defaults=DEFAULTS,
                run_name=run_name, model_flags=VGGOptions,
                model_chooser=("config", lambda config: f"vgg{DEPTHS[config]}"))

if __name__ == "__main__":
    sys.exit(RECIPE.main())
