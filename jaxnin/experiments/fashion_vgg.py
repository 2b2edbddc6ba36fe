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
import sys

from jaxnin.experiments.recipe import command_of
from jaxnin.recipes import recipe
from jaxnin.train.config import TrainConfig

DEPTHS = {"A": 11, "B": 13, "D": 16, "E": 19}
DEFAULTS = recipe("fashion_vgg")


def run_name(config: TrainConfig, in_channels: int, num_classes: int) -> str:
    return (f"VGG{config.model[3:]}_in{in_channels}_out{num_classes}_lr{config.lr:g}"
            f"_ep{config.epochs}")


RECIPE = command_of("fashion_vgg", description=__doc__, run_name=run_name,
                    shown=("model", "config", "lr", "epochs"),  # config: the depth, again
                    model_chooser=("config", lambda config: f"vgg{DEPTHS[config]}"))

if __name__ == "__main__":
    sys.exit(RECIPE.main())
