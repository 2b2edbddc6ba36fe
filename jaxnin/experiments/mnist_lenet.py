"""Seed 002: LeNet-5 on MNIST.

    python -m jaxnin.experiments.mnist_lenet [--data-dir DIR] [--steplr | --tuned] [flags]

Defaults are the seed as its code runs: LeNet-5 with sigmoids after conv1 and conv2 and no
activation after conv3 or fc1, ToTensor scaling only (no resize, no normalisation), batch 16
from a shuffled train set, SGD lr 1e-3 with momentum 0.9 at a constant lr, 50 epochs. The seed
creates StepLR(step_size=10, gamma=0.1) but never calls its step(), so its lr never decays.
Like the seed it keeps the best-test-accuracy checkpoint, beside the best-loss and latest ones.

--steplr is the seed as its author meant it: the same, with the StepLR stepped once per epoch
(lr x 0.1 at epochs 10, 20, 30 and 40).

--tuned is the variant that reaches 0.99 (measured in experiments/mnist_lenet/): ReLU instead of
sigmoid, an activation after conv3 and fc1 too (as LeCun's original has), and Adam at lr 2e-3
with batch 64 and a cosine schedule over 20 epochs. With the seed's net, Adam alone plateaued
at 0.9895-0.9898: without activations after conv3 and fc1, those layers and the output
collapse into one linear map, too little capacity for 0.99.
"""
import sys

from jaxnin.experiments.recipe import command_of
from jaxnin.recipes import recipe
from jaxnin.train.config import TrainConfig

DEFAULTS, STEPLR, TUNED = (recipe(name) for name in (
    "mnist_lenet", "mnist_lenet.steplr", "mnist_lenet.tuned"))


def run_name(config: TrainConfig, in_channels: int, num_classes: int) -> str:
    # The schedule is in the name so that the default and --steplr never share a workdir.
    schedule = "" if config.schedule == "constant" else f"_{config.schedule}"
    return f"LeNet5_in{in_channels}_out{num_classes}_lr{config.lr:g}_ep{config.epochs}{schedule}"


RECIPE = command_of("mnist_lenet", description=__doc__, run_name=run_name,
                    shown=("lr", "epochs", "schedule"))

if __name__ == "__main__":
    sys.exit(RECIPE.main())
